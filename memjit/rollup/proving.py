"""Commit, prove, execute: a committed batch is final once a STARK of its state transition is
recorded (as zkSync finalises a committed batch only with its validity proof).

The batch AIR proves the update of the Poseidon2 state (memjit.rollup.zkstate) by batch N,
from batch N's state root before to its state root after (the header's, and the previous
proven statement's new root).

A batch is proven as a chain of segments, as zkVMs split a long execution into continuations:
its facts in consecutive ranges of at most `segment_facts` (by default as many as one STARK of
SEGMENT_ROWS rows holds, by the batch AIR's own row count: `segment_capacity`), each proven
from the root the previous range ended at, one after another, so the prover's memory is that
of one segment whatever the batch size. A batch that fits one segment is one STARK.

A proof bundle (verifier.batch.Bundle: the header's hash and every segment's statement and
STARK) goes to the content store and its CID to the ledger's `batch_proofs`.
:func:`check_bundle` checks a bundle against a header alone (no ledger): the header hash; every
segment's number, day, previous hash, facts root and market rules; that the fact ranges are
consecutive from fact 0 and cover the header's fact count exactly; the chain of roots from the
header's state root before (the previous batch's proven root) to its state root after; the
minted total and every worker's score sum over all segments; then every segment's STARK
(verifier.batch).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from circuits.rollup.batch import BatchAir, BatchInputs, batch_trace, trace_length
from circuits.rollup.leaf import key_hashes
from memjit.errors import BadInput, Rejected
from memjit.market.facts import Fact
from memjit.market.ledger import Ledger
from memjit.market.formulas import RATE_STEP
from memjit.market.oracle import OracleConfig
from memjit.market.rewards import RewardConfig
from memjit.rollup.batcher import Batcher
from memjit.rollup.header import Header
from memjit.rollup.zkstate import GENESIS_ROOT, RollupState, day_of, root_bytes
from memjit.runtime.store import Store
from prover import prove
from prover.poseidon2 import air_columns
from verifier.batch import (BUNDLE_VERSION, Bundle, BundleFormatError, Segment, bundle_version,
                            decode_bundle, verify_batch)
from verifier.params import DEFAULT_MIN_SECURITY_BITS, DEFAULT_PARAMS, ProofParams
from verifier.stark import Verdict

SEGMENT_ROWS = 1 << 15
"""The most rows a segment's STARK has by default: it bounds a prover's memory whatever the
batch size (benchmarks/README.md gives the peak), and holds a 1,000-fact batch in one STARK
(1,057 facts at 31 rows per fact)."""


def segment_capacity(rows: int = SEGMENT_ROWS) -> int:
    """The most facts one STARK of at most `rows` rows holds (circuits.rollup.batch's
    trace_length: per-fact rows, padding, power of two)."""
    lo, hi = 0, rows
    while lo < hi:  # trace_length is non-decreasing in the fact count
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if trace_length(mid) <= rows else (lo, mid - 1)
    if lo == 0:
        raise ValueError(f"no fact fits a STARK of {rows} rows")
    return lo


def segment_ranges(count: int, per_segment: int) -> list[range]:
    """The consecutive fact ranges of a batch of `count` facts, at most `per_segment` each."""
    if per_segment < 1:
        raise ValueError("a segment holds at least one fact")
    return [range(lo, min(lo + per_segment, count)) for lo in range(0, count, per_segment)]


def prove_segment(inputs: BatchInputs, olds, news, siblings,
                  params: ProofParams = DEFAULT_PARAMS) -> Segment:
    """The STARK of one segment's statement, from its facts' witness (circuits.rollup.batch's
    batch_trace: old and new limbs and siblings, in fact order)."""
    main = batch_trace(inputs, olds, news, siblings, air_columns)
    return Segment(inputs, prove(BatchAir(inputs), main, params))


class BatchProver:
    """Proves committed batches in order and records their bundles (one home directory)."""

    def __init__(self, batcher: Batcher, rewards: RewardConfig = RewardConfig(),
                 params: ProofParams = DEFAULT_PARAMS,
                 min_security_bits: int = DEFAULT_MIN_SECURITY_BITS,
                 oracle: OracleConfig = OracleConfig(), segment_facts: int | None = None) -> None:
        self.batcher, self.params, self.min_security_bits = batcher, params, min_security_bits
        self.segment_facts = segment_capacity() if segment_facts is None else segment_facts
        if self.segment_facts < 1:
            raise BadInput("a batch proof segment holds at least one fact")
        self.ledger: Ledger = batcher.ledger
        self.store: Store = batcher.store
        self.rules = rules_of(rewards, oracle)

    def proven(self) -> int:
        """The last proven batch number (0: none)."""
        row = self.ledger.db.execute("SELECT max(number) FROM batch_proofs").fetchone()
        return row[0] or 0

    def bundle(self, number: int) -> Bundle:
        """Batch `number`'s recorded proof bundle (BadInput if it has none)."""
        row = self.ledger.db.execute("SELECT bundle_cid FROM batch_proofs WHERE number = ?",
                                     (number,)).fetchone()
        if row is None:
            raise BadInput(f"batch {number} has no proof yet")
        try:
            return decode_bundle(self.store.get(row[0]))
        except BundleFormatError as exc:
            raise Rejected(f"batch {number}'s proof bundle is malformed: {exc}") from None

    def drop_outdated(self) -> int:
        """Forget the recorded proofs if they are bundles of an older version (an older batch
        AIR or statement), so that prove_pending proves those batches again; returns how many
        were dropped. Proofs are recorded in order by one memjit, so the lowest-numbered one
        tells for all of them."""
        row = self.ledger.db.execute(
            "SELECT bundle_cid FROM batch_proofs ORDER BY number LIMIT 1").fetchone()
        if row is None or bundle_version(self.store.get(row[0])) == BUNDLE_VERSION:
            return 0
        with self.ledger.transaction() as db:
            return db.execute("DELETE FROM batch_proofs").rowcount

    def prove_pending(self) -> list[int]:
        """Prove every committed batch that has no proof yet (or only an outdated one:
        drop_outdated), in order; returns their numbers."""
        self.drop_outdated()
        records = self.batcher.records()
        done = self.proven()
        if done >= len(records):
            return []
        state = self.batcher.state(done)  # done < the last batch: a fresh replay
        out = []
        for rec in records[done:]:
            self._prove(rec.header, self.batcher.facts(rec.header.number), state)
            out.append(rec.header.number)
        return out

    def _prove(self, header: Header, facts: list[Fact], state: RollupState) -> None:
        """Prove batch `header` segment by segment from `state` (left at its new root)."""
        day = day_of(header.timestamp_ms)
        segments = []
        for part in segment_ranges(len(facts), self.segment_facts):
            old_root, old_subroot = state.root, state.subroot
            applied, olds, news, sibs = state.apply(facts[part.start:part.stop], day)
            inputs = BatchInputs(header.number, day, self.rules.emission, old_root, state.root,
                                 tuple(applied), header.facts_root, header.prev_hash,
                                 self.rules.base_reward, self.rules.ema_rate, part.start,
                                 old_subroot=old_subroot, new_subroot=state.subroot)
            segments.append(prove_segment(inputs, olds, news, sibs, self.params))
        bundle = Bundle(header.hash, tuple(segments))
        prev = self.bundle(header.number - 1).new_root if header.number > 1 else None
        verdict = check_bundle(header, bundle, prev, min_security_bits=0, rules=self.rules)
        if not verdict.valid:
            raise Rejected(f"batch {header.number}'s proof does not verify: {verdict.reason}")
        cid = self.store.put(bundle.encode())
        with self.ledger.transaction() as db:
            db.execute("INSERT INTO batch_proofs VALUES (?, ?, ?, ?)",
                       (header.number, cid, root_bytes(bundle.new_root), self.ledger.clock()))

    def verify(self, number: int) -> Verdict:
        """Check batch `number`'s bundle against its header (and the previous statement)."""
        header = self.batcher.record(number).header
        prev = self.bundle(number - 1).new_root if number > 1 else None
        return check_bundle(header, self.bundle(number), prev,
                            self.min_security_bits, rules=self.rules)


@dataclass(frozen=True)
class Rules:
    """The market parameters a batch statement must state: the emission (a version-1 fact's
    bound), the seed formula's base reward and the consensus EMA rate (thousandths)."""

    emission: int
    base_reward: int
    ema_rate: int


def rules_of(rewards: RewardConfig = RewardConfig(),
             oracle: OracleConfig = OracleConfig()) -> Rules:
    """The Rules of a market configuration (the defaults: the network's)."""
    return Rules(rewards.emission, rewards.base_reward, oracle.ema_ppm // RATE_STEP)


def check_bundle(header: Header, bundle: Bundle, prev_root: tuple[int, ...] | None,
                 min_security_bits: int, rules: Rules | None = None) -> Verdict:
    """Whether `bundle` proves batch `header` (no ledger) from `prev_root`, the previous batch's
    proven root (None for batch 1: the empty tree's): see the module doc. The weakest
    segment's verdict if every check passes."""
    rules = rules_of() if rules is None else rules
    problem = _chain_problem(header, bundle, prev_root, rules)
    if problem is not None:
        return Verdict(False, problem)
    weakest = None
    for i, seg in enumerate(bundle.segments):
        verdict = verify_batch(seg.inputs, seg.proof, min_security_bits)
        if not verdict.valid:
            return Verdict(False, f"segment {i}: {verdict.reason}")
        if weakest is None or verdict.security_bits < weakest.security_bits:
            weakest = verdict
    return weakest


def _chain_problem(header: Header, bundle: Bundle, prev_root: tuple[int, ...] | None,
                   rules: Rules) -> str | None:
    """Why the bundle's segments do not chain into batch `header` (None: they do); no STARK."""
    if bundle.header_hash != header.hash:
        return "the bundle names another header"
    if not bundle.segments:
        return "the bundle has no segment"
    if prev_root is None and header.state_root_before != GENESIS_ROOT:
        return "batch 1 does not start from the empty tree"
    if prev_root is not None and header.state_root_before != root_bytes(prev_root):
        return "the batch does not start from the previous batch's proven root"
    batch = (header.number, day_of(header.timestamp_ms), header.prev_hash, header.facts_root)
    market = (rules.emission, rules.base_reward, rules.ema_rate)
    root, subroot, covered = header.state_root_before, None, 0
    for i, seg in enumerate(bundle.segments):
        pi = seg.inputs
        if (pi.number, pi.day, pi.prev_commitment, pi.facts_commitment) != batch:
            return f"segment {i}: the statement's number, day, previous hash or facts root " \
                   "is not the header's"
        if (pi.emission, pi.base_reward, pi.ema_rate) != market:
            return f"segment {i}: the statement's emission, base reward or EMA rate is not " \
                   "the market's"
        if not pi.facts:
            return f"segment {i} proves no fact"
        if pi.first != covered:
            return f"segment {i} proves facts from {pi.first}, the chain is at fact {covered} " \
                   "(a segment missing, repeated or out of order)"
        if root_bytes(pi.old_root) != root or (i > 0 and pi.old_subroot != subroot):
            return "segment 0 does not start from the header's state root before" if i == 0 \
                else f"segment {i} does not start from the root segment {i - 1} ended at"
        root, subroot = root_bytes(pi.new_root), pi.new_subroot
        covered += len(pi.facts)
    if covered != header.fact_count:
        return f"the segments prove {covered} facts, the header has {header.fact_count}"
    if root != header.state_root_after:
        return "the last segment does not end at the header's state root after"
    try:
        tables = [seg.inputs.fact_table() for seg in bundle.segments]
    except struct.error:
        return "a statement's field does not fit its encoding"
    if sum(sum(t["reward"].tolist()) for t in tables) != header.minted:
        return "the statements' minted total is not the header's"
    if not _scores_match(header.scores, np.concatenate(tables)):
        return "the statements' scores are not the header's"
    return None


def _scores_match(scores: tuple[tuple[bytes, int], ...], facts: np.ndarray) -> bool:
    """Whether the facts' (a FACT_RECORD table) scores, summed per key hash, are the header's
    `scores` per worker id (hashed to its key hash); totals of 0 on either side left out."""
    keys, at = np.unique(_opaque(facts["key"]), return_inverse=True)
    totals = np.zeros(len(keys), dtype=np.uint64)  # < 2^56: u32 scores, < 2^24 facts
    np.add.at(totals, at, facts["score"].astype(np.uint64))
    scored = [(w, s) for w, s in scores if s]
    if len(scored) != np.count_nonzero(totals):
        return False
    if not scored:
        return True
    want = _opaque(key_hashes([w for w, _ in scored]))
    order, earned = np.argsort(want), totals > 0
    return bool(np.array_equal(keys[earned], want[order])
                and np.array_equal(totals[earned],
                                   np.array([s for _, s in scored], dtype=np.uint64)[order]))


def _opaque(keys: np.ndarray) -> np.ndarray:
    """Key hashes (n, 7) as n opaque 56-byte values: sorted and compared whole, in one call."""
    rows = np.ascontiguousarray(keys, dtype=np.uint64)
    return rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).reshape(-1)
