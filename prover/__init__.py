"""The memjit STARK prover: trace LDE, Merkle commitments, composition and DEEP polynomials, FRI.

It produces exactly what ``verifier`` accepts and depends on it, never the reverse.
"""

from prover.stark import ProverStats, prove

__all__ = ["ProverStats", "prove"]
