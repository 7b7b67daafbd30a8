"""Batch proof verification: a rollup batch's state transition, from its statement and proof.

The statement (circuits.rollup.batch.BatchInputs) carries the public facts; the proof shows
that applying them in order to the tree with the old root gives the new root
(circuits.rollup.batch says how). Before the STARK, the facts themselves are checked against
the market's rules that need no state: a score is at most 10^6 ppm, a rate at most 1000
thousandths, an index below 2^30, a reward below 2^30 and at most the emission, and a fact
scored 0 is paid nothing. Light: numpy and the verifier only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from circuits.field import P
from circuits.rollup.batch import EMA_SCALE, BatchAir, BatchFact, BatchInputs
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


BUNDLE_MAGIC = b"MJBPROOF"
BUNDLE_VERSION = 1
_FACT = struct.Struct("<IIIIQ7I")
_HEAD = struct.Struct("<QQQI16I")
MAX_FACTS = 1 << 24


class BundleFormatError(ValueError):
    """Bytes that are not a well-formed batch proof bundle."""


@dataclass(frozen=True)
class Bundle:
    """A batch proof as published: the batch header's hash, the statement and the STARK."""

    header_hash: bytes
    inputs: BatchInputs
    proof: bytes

    def encode(self) -> bytes:
        statement = self.inputs.encode()
        return b"".join([BUNDLE_MAGIC, bytes([BUNDLE_VERSION]), self.header_hash,
                         struct.pack("<I", len(statement)), statement, self.proof])


def decode_statement(data: bytes) -> BatchInputs:
    """Parse BatchInputs.encode() (BundleFormatError on anything malformed or trailing)."""
    if len(data) < _HEAD.size + 64:
        raise BundleFormatError("truncated batch statement")
    number, day, emission, n, *roots = _HEAD.unpack_from(data)
    if n > MAX_FACTS or len(data) != _HEAD.size + 64 + n * _FACT.size:
        raise BundleFormatError("batch statement length does not match its fact count")
    if any(r >= P for r in roots):
        raise BundleFormatError("a root element is not reduced")
    pos = _HEAD.size
    commitment, prev = data[pos:pos + 32], data[pos + 32:pos + 64]
    facts = []
    for i in range(n):
        index, score, rate, pad, reward, *key = _FACT.unpack_from(data, pos + 64 + i * _FACT.size)
        if pad or any(k >= P for k in key):
            raise BundleFormatError("malformed fact in batch statement")
        facts.append(BatchFact(index, tuple(key), score, rate, reward))
    return BatchInputs(number, day, emission, tuple(roots[:8]), tuple(roots[8:]), tuple(facts),
                       commitment, prev)


def decode_bundle(data: bytes) -> Bundle:
    """Parse a proof bundle (BundleFormatError on anything malformed)."""
    head = len(BUNDLE_MAGIC) + 1 + 32 + 4
    if len(data) < head or data[:len(BUNDLE_MAGIC)] != BUNDLE_MAGIC \
            or data[len(BUNDLE_MAGIC)] != BUNDLE_VERSION:
        raise BundleFormatError("not a memjit batch proof bundle (bad magic or version)")
    header_hash = data[len(BUNDLE_MAGIC) + 1:head - 4]
    (length,) = struct.unpack_from("<I", data, head - 4)
    if head + length > len(data):
        raise BundleFormatError("truncated batch proof bundle")
    return Bundle(header_hash, decode_statement(data[head:head + length]), data[head + length:])
