"""Shared test configuration."""

import pytest
from hypothesis import settings

# Numba compiles kernels on first use (cached on disk afterwards): no per-example deadline.
settings.register_profile("memjit", deadline=None)
settings.load_profile("memjit")


@pytest.fixture(scope="session")
def executor():
    """One pool of two spawned prover processes for every test that has workers prove answers
    (the process start-up and numba's loading are paid once)."""
    from memjit.market.pool import prover_pool

    with prover_pool(2) as pool:
        yield pool
