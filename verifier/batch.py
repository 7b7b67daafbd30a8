"""Batch proof verification: a rollup batch's state transition, from its statement and proof.

The statement (circuits.rollup.batch.BatchInputs) carries the public facts; the proof shows
that applying them in order to the tree with the old root gives the new root
(circuits.rollup.batch says how). Before the STARK, the facts themselves are checked against
the market's rules that need no state: a score is at most 10^6 ppm, a rate at most 1000
thousandths, an index below 2^30, a reward below 2^30 and at most the emission, and a fact
scored 0 is paid nothing. Light: numpy and the verifier only.
"""

from __future__ import annotations

from circuits.rollup.batch import EMA_SCALE, BatchAir, BatchInputs
from circuits.rollup.leaf import LIMB
from verifier.params import DEFAULT_MIN_SECURITY_BITS
from verifier.stark import Verdict, verify

MAX_SCORE = 1_000_000
MAX_INDEX = 1 << 30


def fact_problems(inputs: BatchInputs) -> list[str]:
    """Every public fact that breaks a stateless market rule (empty: all well-formed)."""
    out = []
    for i, f in enumerate(inputs.facts):
        if not 0 <= f.index < MAX_INDEX or len(f.key) != 7:
            out.append(f"fact {i}: index or key hash out of range")
        if not 0 <= f.score <= MAX_SCORE or not 0 <= f.rate <= EMA_SCALE:
            out.append(f"fact {i}: score or rate out of range")
        if not 0 <= f.reward < LIMB or f.reward > inputs.emission:
            out.append(f"fact {i}: reward {f.reward} above the emission or the limb")
        if f.score == 0 and f.reward:
            out.append(f"fact {i}: a call scored 0 is paid nothing")
    return out


def verify_batch(inputs: BatchInputs, proof: bytes,
                 min_security_bits: int = DEFAULT_MIN_SECURITY_BITS) -> Verdict:
    """Whether `proof` proves the batch `inputs` (never raises for a bad proof)."""
    problems = fact_problems(inputs)
    if problems:
        return Verdict(False, problems[0])
    return verify(BatchAir, inputs, proof, min_security_bits)
