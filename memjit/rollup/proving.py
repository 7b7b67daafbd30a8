"""Commit, prove, execute: a committed batch is final once a STARK of its state transition is
recorded (as zkSync finalises a committed batch only with its validity proof).

The batch AIR proves the update of the Poseidon2 state (memjit.rollup.zkstate) by batch N,
from batch N's state root before to its state root after (the header's, and the previous
proven statement's new root).

A proof bundle (verifier.batch.Bundle: the header's hash, the statement, the STARK) goes to
the content store and its CID to the ledger's `batch_proofs`. :func:`check_bundle` checks a
bundle against a header alone (no ledger): the header hash, number, previous hash, facts root,
both state roots, the minted total and every worker's score sum, then the STARK
(verifier.batch).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from circuits.rollup.batch import BatchAir, BatchInputs, batch_trace
from circuits.rollup.leaf import key_hash
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
from verifier.batch import (BUNDLE_VERSION, Bundle, BundleFormatError, bundle_version,
                            decode_bundle, verify_batch)
from verifier.params import DEFAULT_MIN_SECURITY_BITS, DEFAULT_PARAMS, ProofParams
from verifier.stark import Verdict


class BatchProver:
    """Proves committed batches in order and records their bundles (one home directory)."""

    def __init__(self, batcher: Batcher, rewards: RewardConfig = RewardConfig(),
                 params: ProofParams = DEFAULT_PARAMS,
                 min_security_bits: int = DEFAULT_MIN_SECURITY_BITS,
                 oracle: OracleConfig = OracleConfig()) -> None:
        self.batcher, self.params, self.min_security_bits = batcher, params, min_security_bits
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
        old_root, old_subroot, day = state.root, state.subroot, day_of(header.timestamp_ms)
        facts, olds, news, sibs = state.apply(facts, day)
        inputs = BatchInputs(header.number, day, self.rules.emission, old_root, state.root,
                             tuple(facts), header.facts_root, header.prev_hash,
                             self.rules.base_reward, self.rules.ema_rate,
                             old_subroot=old_subroot, new_subroot=state.subroot)
        air = BatchAir(inputs)
        proof = prove(air, batch_trace(inputs, olds, news, sibs, air_columns), self.params)
        bundle = Bundle(header.hash, inputs, proof)
        prev = self.bundle(header.number - 1).inputs if header.number > 1 else None
        verdict = check_bundle(header, bundle, prev, min_security_bits=0, rules=self.rules)
        if not verdict.valid:
            raise Rejected(f"batch {header.number}'s proof does not verify: {verdict.reason}")
        cid = self.store.put(bundle.encode())
        with self.ledger.transaction() as db:
            db.execute("INSERT INTO batch_proofs VALUES (?, ?, ?, ?)",
                       (header.number, cid, root_bytes(inputs.new_root), self.ledger.clock()))

    def verify(self, number: int) -> Verdict:
        """Check batch `number`'s bundle against its header (and the previous statement)."""
        header = self.batcher.record(number).header
        prev = self.bundle(number - 1).inputs if number > 1 else None
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


def check_bundle(header: Header, bundle: Bundle, prev: BatchInputs | None,
                 min_security_bits: int, rules: Rules | None = None) -> Verdict:
    """Whether `bundle` proves batch `header` (no ledger): it names the header, states its
    number, day, previous hash, facts root, both state roots, minted total and per-worker
    scores, starts from the previous statement's new root (the empty tree's for batch 1), and
    its STARK verifies."""
    pi = bundle.inputs
    rules = rules_of() if rules is None else rules
    scores: Counter[tuple[int, ...]] = Counter()
    for f in pi.facts:
        scores[f.key] += f.score
    want = Counter({tuple(int(x) for x in key_hash(w)): s for w, s in header.scores})
    problems = [
        (bundle.header_hash != header.hash, "the bundle names another header"),
        ((pi.number, pi.day, pi.prev_commitment, pi.facts_commitment)
         != (header.number, day_of(header.timestamp_ms), header.prev_hash, header.facts_root),
         "the statement's number, day, previous hash or facts root is not the header's"),
        ((root_bytes(pi.old_root), root_bytes(pi.new_root))
         != (header.state_root_before, header.state_root_after),
         "the statement's state roots are not the header's"),
        (len(pi.facts) != header.fact_count or sum(f.reward for f in pi.facts) != header.minted,
         "the statement's fact count or minted total is not the header's"),
        (+scores != +want, "the statement's scores are not the header's"),
        (prev is not None and pi.old_root != prev.new_root,
         "the statement does not start from the previous batch's proven root"),
        ((pi.emission, pi.base_reward, pi.ema_rate)
         != (rules.emission, rules.base_reward, rules.ema_rate),
         "the statement's emission, base reward or EMA rate is not the market's"),
        (prev is None and root_bytes(pi.old_root) != GENESIS_ROOT,
         "batch 1 does not start from the empty tree"),
    ]
    for bad, reason in problems:
        if bad:
            return Verdict(False, reason)
    return verify_batch(pi, bundle.proof, min_security_bits)
