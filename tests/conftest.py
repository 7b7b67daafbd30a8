"""Shared test configuration."""

from hypothesis import settings

# Numba compiles kernels on first use (cached on disk afterwards): no per-example deadline.
settings.register_profile("memjit", deadline=None)
settings.load_profile("memjit")
