"""Batch proof verification: a rollup batch's state transition, from its statement and proof.

The statement (circuits.rollup.batch.BatchInputs) carries the public facts; the proof shows
that applying them in order to the tree with the old root gives the new root
(circuits.rollup.batch says how). Before the STARK, the facts themselves are checked against
the market's rules that need no state: a score is at most 10^6 ppm, a rate at most 1000
thousandths, an index below 2^30, a reward below 2^30, and a fact scored 0 is paid nothing.
A version-2 fact's weight is proven by the STARK from the account's usefulness; its reward
must be exactly the market's payout of that weight, weight * min(E, W) // W over its
period's total weight W and emission E (memjit.market.formulas.payout), its weight rate the
EMA rate if it was scored above 0 (else 0). A version-1 fact's reward is only bounded by the
statement's emission. A stake fact (version 3: a bond, release or slash of a worker's locked
stake) moves an amount in 1..2^53 - 1 and carries no score, rate, reward, weight or prior; a
call fact moves no stake. Light: numpy and the verifier only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from circuits.field import P
from circuits.rollup.batch import (CALL, DAY_N, EMA_SCALE, MAX_SCALE, MAX_SINCE, SLASH,
                                   STAKE_VERSION, BatchAir, BatchFact, BatchInputs,
                                   fold_subroots)
from circuits.rollup.leaf import LIMB, MAX_AMOUNT
from verifier.params import DEFAULT_MIN_SECURITY_BITS
from verifier.stark import Verdict, verify

MAX_SCORE = 1_000_000
MAX_INDEX = 1 << 30


def payout(weight: int, total: int, emission: int) -> int:
    """A call's reward when its period closes: memjit.market.formulas.payout (the verifier may
    not import the market; tests/test_batch_air.py pins the two together)."""
    return weight * min(emission, total) // total if total > 0 else 0


def fact_problems(inputs: BatchInputs) -> list[str]:
    """Every public fact that breaks a stateless market rule (empty: all well-formed)."""
    out = []
    if not np.array_equal(fold_subroots([inputs.old_subroot, inputs.new_subroot]),
                          [inputs.old_root, inputs.new_root]):
        out.append("the statement's depth-30 subroots do not fold to its state roots")
    if not 1 <= inputs.ema_rate <= EMA_SCALE or not 0 <= DAY_N * inputs.base_reward < MAX_SCALE:
        out.append("the statement's EMA rate or base reward is out of range")
    for i, f in enumerate(inputs.facts):
        if not 0 <= f.index < MAX_INDEX or len(f.key) != 7:
            out.append(f"fact {i}: index or key hash out of range")
        if not 0 <= f.score <= MAX_SCORE or not 0 <= f.rate <= EMA_SCALE \
                or not 0 <= f.prior <= MAX_SCORE:
            out.append(f"fact {i}: score, rate or prior usefulness out of range")
        if f.score == 0 and f.reward:
            out.append(f"fact {i}: a call scored 0 is paid nothing")
        if f.version == STAKE_VERSION:
            if not CALL < f.kind <= SLASH or not 1 <= f.amount <= MAX_AMOUNT:
                out.append(f"fact {i}: stake fact kind {f.kind} or amount {f.amount} out of "
                           "range")
            if (f.score, f.rate, f.reward, f.wrate, f.since, f.weight, f.total, f.emission,
                    f.prior) != (0,) * 9:
                out.append(f"fact {i}: a stake fact has no score, rate, reward, weight or "
                           "prior")
            continue
        if (f.kind, f.amount) != (CALL, 0):
            out.append(f"fact {i}: a call fact moves no stake")
        if not 0 <= f.reward < LIMB:
            out.append(f"fact {i}: reward {f.reward} above the limb")
        if f.version == 1:
            if f.reward > inputs.emission or (f.wrate, f.since, f.weight, f.total,
                                              f.emission) != (0, 0, 0, 0, 0):
                out.append(f"fact {i}: a version-1 fact is weighed 0 and paid at most the "
                           "emission")
        elif f.version == 2:
            if f.wrate != (f.rate if f.score > 0 else 0) or not 0 <= f.since < MAX_SINCE \
                    or not 0 <= f.weight * inputs.ema_rate < 1 << 21 or f.weight > f.total:
                out.append(f"fact {i}: weight rate, seconds since last use or weight out of "
                           "range")
            elif f.reward != payout(f.weight, f.total, f.emission):
                out.append(f"fact {i}: reward {f.reward} is not the payout of weight "
                           f"{f.weight} ({payout(f.weight, f.total, f.emission)})")
        else:
            out.append(f"fact {i}: unknown fact version {f.version}")
    return out


def verify_batch(inputs: BatchInputs, proof: bytes,
                 min_security_bits: int = DEFAULT_MIN_SECURITY_BITS) -> Verdict:
    """Whether `proof` proves the batch `inputs` (never raises for a bad proof)."""
    problems = fact_problems(inputs)
    if problems:
        return Verdict(False, problems[0])
    return verify(BatchAir, inputs, proof, min_security_bits)


BUNDLE_MAGIC = b"MJBPROOF"
BUNDLE_VERSION = 5  # 3: the statement carries the depth-30 subroots; 4: a chain of segments;
# 5: stake facts (each fact's kind and amount)
_FACT = struct.Struct("<IIIIQ7IIIIQQQIQ")
_HEAD = struct.Struct("<QQQIIII32I")
_U32 = struct.Struct("<I")
MAX_FACTS = 1 << 24
MAX_SEGMENTS = 1 << 16


class BundleFormatError(ValueError):
    """Bytes that are not a well-formed batch proof bundle."""


@dataclass(frozen=True)
class Segment:
    """One STARK of a batch's chain: the statement of a consecutive range of the batch's facts
    (from fact `inputs.first`, from the root the previous segment ended at) and its proof."""

    inputs: BatchInputs
    proof: bytes


@dataclass(frozen=True)
class Bundle:
    """A batch proof as published: the batch header's hash and the chain of segments whose
    fact ranges make up the batch, in order (one segment for a batch that fits one STARK).

    Encoding (version 5, little-endian, no trailing bytes)::

        "MJBPROOF" u8 5 | header hash (32) | u32 segments
        | per segment: u32 length | statement (BatchInputs.encode) | u32 length | STARK
    """

    header_hash: bytes
    segments: tuple[Segment, ...]

    @property
    def facts(self) -> tuple[BatchFact, ...]:
        """Every segment's facts, in chain order."""
        return tuple(f for s in self.segments for f in s.inputs.facts)

    @property
    def new_root(self) -> tuple[int, ...]:
        """The root the last segment ends at."""
        return self.segments[-1].inputs.new_root

    @property
    def old_root(self) -> tuple[int, ...]:
        """The root the first segment starts from."""
        return self.segments[0].inputs.old_root

    def encode(self) -> bytes:
        out = [BUNDLE_MAGIC, bytes([BUNDLE_VERSION]), self.header_hash,
               _U32.pack(len(self.segments))]
        for seg in self.segments:
            statement = seg.inputs.encode()
            out += [_U32.pack(len(statement)), statement, _U32.pack(len(seg.proof)), seg.proof]
        return b"".join(out)


def decode_statement(data: bytes) -> BatchInputs:
    """Parse BatchInputs.encode() (BundleFormatError on anything malformed or trailing)."""
    if len(data) < _HEAD.size + 64:
        raise BundleFormatError("truncated batch statement")
    number, day, emission, base_reward, ema_rate, n, first, *roots = _HEAD.unpack_from(data)
    if n > MAX_FACTS or first > MAX_FACTS or len(data) != _HEAD.size + 64 + n * _FACT.size:
        raise BundleFormatError("batch statement length does not match its fact count")
    if any(r >= P for r in roots):
        raise BundleFormatError("a root element is not reduced")
    pos = _HEAD.size
    commitment, prev = data[pos:pos + 32], data[pos + 32:pos + 64]
    facts = []
    for i in range(n):
        (index, score, rate, version, reward, *rest) = _FACT.unpack_from(
            data, pos + 64 + i * _FACT.size)
        key, (wrate, since, prior, weight, total, emission_f, kind, amount) = rest[:7], rest[7:]
        if any(k >= P for k in key) or max(wrate, since, weight, prior, kind) >= P:
            raise BundleFormatError("malformed fact in batch statement")
        facts.append(BatchFact(index, tuple(key), score, rate, reward, version, wrate, since,
                               weight, total, emission_f, prior, kind, amount))
    return BatchInputs(number, day, emission, tuple(roots[:8]), tuple(roots[8:16]),
                       tuple(facts), commitment, prev, base_reward, ema_rate, first,
                       old_subroot=tuple(roots[16:24]), new_subroot=tuple(roots[24:]))


def bundle_version(data: bytes) -> int | None:
    """The format version of proof bundle bytes (None: not a proof bundle)."""
    if len(data) <= len(BUNDLE_MAGIC) or data[:len(BUNDLE_MAGIC)] != BUNDLE_MAGIC:
        return None
    return data[len(BUNDLE_MAGIC)]


def decode_bundle(data: bytes) -> Bundle:
    """Parse a proof bundle (BundleFormatError on anything malformed, truncated or trailing,
    or of another version: an older bundle's statement does not verify under this batch AIR,
    so its batch must be proven again: memjit.rollup.proving.BatchProver.drop_outdated)."""
    head = len(BUNDLE_MAGIC) + 1 + 32 + _U32.size
    version = bundle_version(data)
    if version is None:
        raise BundleFormatError("not a memjit batch proof bundle (bad magic or truncated)")
    if version != BUNDLE_VERSION:
        raise BundleFormatError(f"batch proof bundle version {version} is not the version this "
                                f"memjit reads ({BUNDLE_VERSION}: stake facts): the "
                                "batch must be proven again")
    if len(data) < head:
        raise BundleFormatError("truncated batch proof bundle")
    header_hash = data[len(BUNDLE_MAGIC) + 1:head - _U32.size]
    (count,) = _U32.unpack_from(data, head - _U32.size)
    if not 1 <= count <= MAX_SEGMENTS:
        raise BundleFormatError(f"a bundle holds 1..{MAX_SEGMENTS} segments, not {count}")
    pos, segments = head, []
    for _ in range(count):
        statement, pos = _length_prefixed(data, pos)
        proof, pos = _length_prefixed(data, pos)
        segments.append(Segment(decode_statement(statement), proof))
    if pos != len(data):
        raise BundleFormatError("trailing bytes after the batch proof bundle")
    return Bundle(header_hash, tuple(segments))


def _length_prefixed(data: bytes, pos: int) -> tuple[bytes, int]:
    """The u32-length-prefixed bytes at `pos` and the position after them."""
    if pos + _U32.size > len(data):
        raise BundleFormatError("truncated batch proof bundle")
    (length,) = _U32.unpack_from(data, pos)
    pos += _U32.size
    if pos + length > len(data):
        raise BundleFormatError("truncated batch proof bundle")
    return data[pos:pos + length], pos + length
