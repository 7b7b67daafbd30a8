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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from circuits.field import P
from circuits.rollup.batch import (CALL, DAY_N, EMA_SCALE, FACT_RECORD, FACT_STRUCT,
                                   MAX_SCALE, MAX_SINCE, SLASH, STAKE_VERSION, STATEMENT_HEAD,
                                   BatchAir, BatchFact, BatchInputs, fold_subroots)
from circuits.rollup.leaf import LIMB, MAX_AMOUNT
from verifier.params import DEFAULT_MIN_SECURITY_BITS
from verifier.stark import Verdict, verify

MAX_SCORE = 1_000_000
MAX_INDEX = 1 << 30


def payout(weight: int, total: int, emission: int) -> int:
    """A call's reward when its period closes: memjit.market.formulas.payout (the verifier may
    not import the market; tests/test_batch_air.py pins the two together)."""
    return weight * min(emission, total) // total if total > 0 else 0


_payouts = np.frompyfunc(payout, 3, 1)  # element-wise on Python ints: products pass 64 bits


def fact_problems(inputs: BatchInputs) -> list[str]:
    """Every public fact that breaks a stateless market rule (empty: all well-formed), fact by
    fact in order. The rules are checked column by column on the statement's encoded facts
    (BatchInputs.fact_table): a thousand facts cost a few numpy calls, not a Python loop."""
    out = []
    if not np.array_equal(fold_subroots([inputs.old_subroot, inputs.new_subroot]),
                          [inputs.old_root, inputs.new_root]):
        out.append("the statement's depth-30 subroots do not fold to its state roots")
    if not 1 <= inputs.ema_rate <= EMA_SCALE or not 0 <= DAY_N * inputs.base_reward < MAX_SCALE:
        out.append("the statement's EMA rate or base reward is out of range")
    try:
        t = inputs.fact_table()
    except struct.error:  # a negative field, one too wide for its slot, a key hash not 7 limbs
        return out + ["a field of the statement does not fit its encoding"]
    version, kind, amount, score, reward, rate, prior = (
        t[k] for k in ("version", "kind", "amount", "score", "reward", "rate", "prior"))
    wrate, since, weight, total, emission = (
        t[k] for k in ("wrate", "since", "weight", "total", "emission"))
    stake, call = version == STAKE_VERSION, version != STAKE_VERSION
    v1, v2 = version == 1, version == 2
    # weight < 2^21 first, so that weight * ema_rate cannot wrap
    weighed = (wrate == np.where(score > 0, rate, 0)) & (since < MAX_SINCE) & \
        (weight < 1 << 21) & (weight * np.uint64(inputs.ema_rate) < 1 << 21) & (weight <= total)
    paid = _payouts(weight.astype(object), total.astype(object), emission.astype(object))
    rules: list[tuple[np.ndarray, str | Callable[[int], str]]] = [  # (facts breaking it, why)
        (t["index"] >= MAX_INDEX, "index or key hash out of range"),
        ((score > MAX_SCORE) | (rate > EMA_SCALE) | (prior > MAX_SCORE),
         "score, rate or prior usefulness out of range"),
        ((score == 0) & (reward != 0), "a call scored 0 is paid nothing"),
        (stake & ((kind <= CALL) | (kind > SLASH) | (amount < 1) | (amount > MAX_AMOUNT)),
         lambda i: f"stake fact kind {kind[i]} or amount {amount[i]} out of range"),
        (stake & np.any([c != 0 for c in (score, rate, reward, wrate, since, weight, total,
                                          emission, prior)], axis=0),
         "a stake fact has no score, rate, reward, weight or prior"),
        (call & ((kind != CALL) | (amount != 0)), "a call fact moves no stake"),
        (call & (reward >= LIMB), lambda i: f"reward {reward[i]} above the limb"),
        (v1 & ((reward > inputs.emission)
               | np.any([c != 0 for c in (wrate, since, weight, total, emission)], axis=0)),
         "a version-1 fact is weighed 0 and paid at most the emission"),
        (v2 & ~weighed, "weight rate, seconds since last use or weight out of range"),
        (v2 & weighed & (reward.astype(object) != paid),
         lambda i: f"reward {reward[i]} is not the payout of weight {weight[i]} ({paid[i]})"),
        (call & ~v1 & ~v2, lambda i: f"unknown fact version {version[i]}"),
    ]
    broken = sorted((i, r) for r, (facts, _) in enumerate(rules)
                    for i in np.flatnonzero(facts).tolist())  # fact by fact, rule by rule
    return out + [f"fact {i}: {_said(rules[r][1], i)}" for i, r in broken]


def _said(why: str | Callable[[int], str], fact: int) -> str:
    """A rule's message for one fact (a string, or made from the fact's values)."""
    return why if isinstance(why, str) else why(fact)


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
_REDUCED = ("wrate", "since", "weight", "prior", "kind")  # fields the AIR reads as elements
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
    if len(data) < STATEMENT_HEAD.size + 64:
        raise BundleFormatError("truncated batch statement")
    number, day, emission, base_reward, ema_rate, n, first, *roots = \
        STATEMENT_HEAD.unpack_from(data)
    if n > MAX_FACTS or first > MAX_FACTS or \
            len(data) != STATEMENT_HEAD.size + 64 + n * FACT_STRUCT.size:
        raise BundleFormatError("batch statement length does not match its fact count")
    if any(r >= P for r in roots):
        raise BundleFormatError("a root element is not reduced")
    pos = STATEMENT_HEAD.size
    commitment, prev = data[pos:pos + 32], data[pos + 32:pos + 64]
    table = np.frombuffer(data, FACT_RECORD, offset=pos + 64)
    if (table["key"] >= P).any() or any((table[k] >= P).any() for k in _REDUCED):
        raise BundleFormatError("malformed fact in batch statement")
    facts = tuple(BatchFact(index, tuple(key), score, rate, reward, version, wrate, since,
                            weight, total, emission_f, prior, kind, amount)
                  for (index, score, rate, version, reward, key, wrate, since, prior, weight,
                       total, emission_f, kind, amount) in table.tolist())
    inputs = BatchInputs(number, day, emission, tuple(roots[:8]), tuple(roots[8:16]), facts,
                         commitment, prev, base_reward, ema_rate, first,
                         old_subroot=tuple(roots[16:24]), new_subroot=tuple(roots[24:]))
    inputs.keep_encoding(data)
    return inputs


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
