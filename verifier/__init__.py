"""The memjit verifier: the protocol's specification, small enough to embed in any node.

It depends only on ``circuits`` (field, AIR definitions), numpy and blake3 -- never on the
prover, the engine or wasmtime.
"""

from verifier.params import DEFAULT_MIN_SECURITY_BITS, DEFAULT_PARAMS, ProofParams
from verifier.stark import InvalidProof, Verdict, check, verify, verify_air

__all__ = ["DEFAULT_MIN_SECURITY_BITS", "DEFAULT_PARAMS", "InvalidProof", "ProofParams",
           "Verdict", "check", "verify", "verify_air"]
