"""The rollup batcher: verified, scored claims become facts; facts are committed in batches under
a state root, signed by the verifier committee, proven (memjit.rollup.proving), and final once
proven and its challenge window is over.

Facts (memjit.market.facts) are what settled claims leave in the ledger; this module commits
them. A fact stays pending until a committed batch includes it; committing mints its reward:
the owner's `balances.pending` moves to `balances.minted`, and the worker account's minted
total in the state tree grows by it.

Batches. :meth:`Batcher.cut` takes the oldest pending facts (at most `max_facts`; a batch is
due once that many are pending or the oldest is `max_age_s` old), applies them to the Poseidon2
state tree (memjit.rollup.zkstate), builds the header (memjit.rollup.header) with the tree's
roots before and after, and has the committee sign its hash (memjit.rollup.committee). The
facts root is a binary Merkle tree over the fact hashes in batch order (node =
blake3(left || right), an odd last node carried up, 32 zero bytes for none). The batch's facts
go to the content store as its data (data availability); they determine the state, so no state
diff is published::

    "MJBDATA" u8 version (4), u64 number, u32 n, n x (worker id (32), u8 fact version, then
    for a call (versions 1, 2): vk digest, statement digest, proof digest (32 each), u64 score,
    u64 reward, u8 length + claim CID (0: none), and for version 2 the weighing: 6 x u64 (rate,
    prior usefulness, seconds since last use, weight, total weight, emission;
    memjit.market.facts.Weighing); for a stake fact (version 3): u8 kind (1 bond, 2 release,
    3 slash: memjit.market.facts.KINDS), u64 amount)

Data version 3 (before stake facts: calls only, the fact version after the claim CID) is still
read, so that batches committed before stay auditable.

Rules, as zk-rollups commit: number = last + 1 and the previous hash must match; the same header
twice is a no-op, another header at a committed number is Rejected; the committee must be the
configured one and its aggregate signature valid (one FastAggregateVerify); a batch is final
once its STARK is recorded and `challenge_window_s` after its commit (commit, prove, execute:
never without its proof); only non-final batches can be reverted, which restores the
previous state root exactly and returns their facts to pending (un-minting their rewards).

Crash safety: everything a commit changes in the ledger is one SQLite transaction; the data
block is written (atomically, idempotently) before it. The committed state is derived from the
committed facts (replayed over the tree and checked against the last header's root), so a
commit is either entirely there or not at all. `CRASH_HOOK` is called at
every step of a commit (see COMMIT_STEPS) so that tests can kill the process there.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import blake3
from rich.table import Table

from memjit.rollup.committee import members, sign, signers, verify
from memjit.errors import BadInput, MemjitError, Rejected
from memjit.market import bonds
from memjit.market.facts import KINDS, Fact, Weighing, claim_problem
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger, worker_key
from memjit.rollup.header import (
    HASH_BYTES,
    ZERO_HASH,
    BatchFormatError,
    Header,
    Reader,
    decode_header,
)
from memjit.rollup.zkstate import AccountProof, RollupState, day_of, root_bytes
from memjit.runtime.store import Store
from verifier.claims import ClaimFormatError, decode_claim

DATA_MAGIC = b"MJBDATA"
DATA_VERSION = 4
MAX_FACTS = 1 << 24

COMMIT_STEPS = ("cut", "signed", "stored", "batch", "facts", "minted", "committed")
CRASH_HOOK: Callable[[str], None] | None = None
"""Called with each name in COMMIT_STEPS as a commit passes it (a test kills the process)."""


def _step(name: str) -> None:
    if CRASH_HOOK is not None:
        CRASH_HOOK(name)


def facts_root(hashes: list[bytes]) -> bytes:
    """The Merkle root of fact hashes in order (an odd last node is carried up)."""
    level = list(hashes)
    if not level:
        return ZERO_HASH
    while len(level) > 1:
        pairs = [blake3.blake3(a + b).digest() for a, b in zip(level[0::2], level[1::2])]
        level = pairs + level[len(pairs) * 2:]
    return level[0]


# --- batch data (content store) ---------------------------------------------------------------

@dataclass(frozen=True)
class BatchData:
    """What a header commits to: its facts, in order."""

    number: int
    facts: tuple[Fact, ...]

    def encode(self) -> bytes:
        out = [DATA_MAGIC, bytes([DATA_VERSION]), struct.pack(">QI", self.number, len(self.facts))]
        for f in self.facts:
            out.append(bytes.fromhex(f.worker))
            if f.kind != "call":
                out += [b"\x03", struct.pack(">BQ", KINDS.index(f.kind), f.amount)]
                continue
            assert f.vk_digest and f.statement_digest and f.proof_digest
            cid = (f.claim_cid or "").encode()
            out += [b"\x01" if f.weighing is None else b"\x02", f.vk_digest,
                    f.statement_digest, f.proof_digest,
                    struct.pack(">QQB", f.score, f.reward, len(cid)), cid]
            out += [] if f.weighing is None else [f.weighing.encode()]
        return b"".join(out)


def decode_data(data: bytes) -> BatchData:
    """Parse batch data (BatchFormatError on anything malformed or trailing)."""
    r = Reader(data, "batch data")
    if r.take(len(DATA_MAGIC)) != DATA_MAGIC:
        raise BatchFormatError("not memjit batch data (bad magic or version)")
    data_version = r.uint("B")
    if data_version not in (3, DATA_VERSION):
        raise BatchFormatError("not memjit batch data (bad magic or version)")
    number, n = r.uint("Q"), r.uint("I")
    if n > MAX_FACTS:
        raise BatchFormatError(f"too many facts in batch data ({n})")
    facts = []
    for _ in range(n):
        worker = r.take(HASH_BYTES).hex()
        version = r.uint("B") if data_version == DATA_VERSION else None
        if version == 3:
            kind = r.uint("B")
            if not 1 <= kind < len(KINDS):
                raise BatchFormatError(f"unknown stake fact kind {kind} in batch data")
            facts.append(Fact.stake(worker, KINDS[kind], r.uint("Q")))
            continue
        vk, st, proof = (r.take(HASH_BYTES) for _ in range(3))
        score, reward = r.uint("Q"), r.uint("Q")
        cid = r.take(r.uint("B")).decode("ascii", "replace") or None
        if version is None:  # data version 3: the fact version follows the claim CID
            version = r.uint("B")
        if version not in (1, 2):
            raise BatchFormatError(f"unknown fact version {version} in batch data")
        weighing = None if version == 1 else Weighing(*(r.uint("Q") for _ in range(6)))
        facts.append(Fact(worker, vk, st, proof, score, reward, cid, weighing))
    r.end()
    return BatchData(number, tuple(facts))


def _summary(data: BatchData) -> dict:
    """The header fields that follow from a batch's data alone."""
    scores: Counter[str] = Counter()
    for f in data.facts:
        if f.kind == "call":
            scores[f.worker] += f.score
    return {"number": data.number, "facts_root": facts_root([f.hash for f in data.facts]),
            "fact_count": len(data.facts), "minted": sum(f.reward for f in data.facts),
            "scores": tuple((bytes.fromhex(w), s) for w, s in sorted(scores.items()))}


def check_data(header: Header, data: BatchData) -> list[str]:
    """Every way `data` contradicts `header`'s number, facts root, fact count, minted total and
    scores (the state roots follow from the facts: RollupState, or the batch's STARK)."""
    return [f"{name.replace('_', ' ')} does not match the batch data"
            for name, value in _summary(data).items() if getattr(header, name) != value]


# --- batches ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchConfig:
    """When to cut a batch (size or age) and how long it can be challenged (seconds)."""

    max_facts: int = 1000
    max_age_s: float = 60.0
    challenge_window_s: float = 3600.0


@dataclass(frozen=True)
class Batch:
    """A cut batch ready to commit: signed header, data and the ledger rows of its facts."""

    header: Header
    data: BatchData
    seqs: tuple[int, ...]


@dataclass(frozen=True)
class BatchRecord:
    """A committed batch as the ledger holds it."""

    header: Header
    data_cid: str
    committed_at: float
    final_at: float
    proven: bool = False  # a valid batch proof is recorded (memjit.rollup.proving)

    def status(self, now: float) -> str:
        """'final' once proven and the challenge window is over, else 'proven' or
        'committed' (commit, prove, execute: no batch is final without its proof)."""
        if not self.proven:
            return "committed"
        return "final" if now >= self.final_at else "proven"


@dataclass
class Audit:
    """The outcome of re-checking one batch from its data and claims."""

    number: int
    facts: list[dict] = field(default_factory=list)  # one row per fact: worker, call, ok, reason
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


class Batcher:
    """Cuts, commits, reverts, audits and proves batches for one home directory.

    Keeps the Poseidon2 state of the committed batches in memory (replayed from the ledger's
    committed facts whenever the last batch is not the one it was built for, and checked
    against that batch's state root)."""

    def __init__(self, ledger: Ledger, store: Store, home: Path,
                 config: BatchConfig = BatchConfig()) -> None:
        self.ledger, self.store, self.home, self.config = ledger, store, Path(home), config
        self._identities: list[Identity] | None = None  # the committee's keys, once loaded
        self._zk: tuple[bytes, RollupState] | None = None  # the state, its batch's hash

    # --- reads ----------------------------------------------------------------------------

    def records(self, number: int | None = None) -> list[BatchRecord]:
        """Committed batches in order (only batch `number`, if given)."""
        where, params = ("WHERE b.number = ?", (number,)) if number is not None else ("", ())
        rows = self.ledger.db.execute(
            "SELECT header, data_cid, committed_at, final_at, p.number IS NOT NULL FROM batches b "
            f"LEFT JOIN batch_proofs p ON p.number = b.number {where} ORDER BY b.number",
            params).fetchall()
        return [BatchRecord(decode_header(h), cid, at, final, bool(proven))
                for h, cid, at, final, proven in rows]

    def record(self, number: int) -> BatchRecord:
        """Committed batch `number` (BadInput if there is none)."""
        found = self.records(number)
        if not found:
            raise BadInput(f"no batch {number}")
        return found[0]

    def last(self) -> BatchRecord | None:
        """The newest committed batch, if any."""
        row = self.ledger.db.execute("SELECT max(number) FROM batches").fetchone()
        return None if row[0] is None else self.record(row[0])

    def _facts(self, where: str, params: tuple) -> list[tuple[int, Fact]]:
        """(ledger sequence number, fact) of the facts `where` selects, in sequence order."""
        rows = self.ledger.db.execute(
            "SELECT seq, worker, kind, amount, vk_digest, statement_digest, proof_digest, score, "
            "reward, claim_cid, rate, prior, since, weight, total_weight, emission FROM "
            f"batch_facts WHERE {where} ORDER BY seq LIMIT ?", params).fetchall()
        return [(seq, Fact.stake(w, kind, amount) if kind != "call" else
                 Fact(w, bytes(vk), bytes(st), bytes(pr), score, reward, cid,
                      None if weighing[0] is None else Weighing(*weighing)))
                for seq, w, kind, amount, vk, st, pr, score, reward, cid, *weighing in rows]

    def pending(self, limit: int | None = None) -> list[tuple[int, Fact]]:
        """The pending facts, oldest first, with their ledger sequence numbers."""
        return self._facts("batch IS NULL", (-1 if limit is None else limit,))

    def due(self) -> bool:
        """Whether a batch should be cut: `max_facts` are pending or the oldest is too old."""
        count, oldest = self.ledger.db.execute(
            "SELECT count(*), min(recorded_at) FROM batch_facts WHERE batch IS NULL").fetchone()
        return count >= self.config.max_facts or (
            count > 0 and self.ledger.clock() - oldest >= self.config.max_age_s)

    def facts(self, number: int) -> list[Fact]:
        """Committed batch `number`'s facts, in batch order."""
        return [f for _, f in self._facts("batch = ?", (number, -1))]

    def replay(self, upto: int | None = None) -> Iterator[tuple[BatchRecord, RollupState,
                                                                 list[Fact]]]:
        """The state after each committed batch (through `upto`), from the ledger's facts:
        (record, state, the batch's facts), one state object advanced in place."""
        state = RollupState.genesis()
        for rec in self.records():
            if upto is not None and rec.header.number > upto:
                break
            facts = self.facts(rec.header.number)
            state.apply(facts, day_of(rec.header.timestamp_ms))
            yield rec, state, facts

    def state(self, number: int | None = None) -> RollupState:
        """The state after batch `number` (default: the last; 0: the empty genesis), checked
        against that batch's state root."""
        last = self.last()
        if number is None or (last is not None and number == last.header.number):
            return self._state(last)
        if number == 0:
            return RollupState.genesis()
        record = self.record(number)  # BadInput if it does not exist
        state = RollupState.genesis()
        for _, state, _ in self.replay(number):
            pass
        if root_bytes(state.root) != record.header.state_root_after:
            raise Rejected(f"the ledger's facts do not give batch {number}'s state root")
        return state

    def prove(self, worker_id: str,
              number: int | None = None) -> tuple[BatchRecord, AccountProof]:
        """A worker's leaf and Poseidon2 path under the state root after batch `number`."""
        worker_key(worker_id)
        last = self.last()
        if last is None:
            raise BadInput("no committed batch yet")
        record = self.record(number) if number is not None else last
        return record, self.state(record.header.number).proof(worker_id)

    # --- cut and commit -------------------------------------------------------------------

    def cut(self) -> Batch | None:
        """Build and sign the next batch from the oldest pending facts (None if there are none)."""
        pending = self.pending(self.config.max_facts)
        if not pending:
            return None
        _step("cut")
        identities = self._signers()
        last = self.last()
        state = self._state(last)
        self._zk = None
        try:
            data = BatchData(1 if last is None else last.header.number + 1,
                             tuple(f for _, f in pending))
            timestamp_ms = round(self.ledger.clock() * 1000)
            before = root_bytes(state.root)
            state.apply(data.facts, day_of(timestamp_ms))
            header = Header(prev_hash=ZERO_HASH if last is None else last.header.hash,
                            state_root_before=before, state_root_after=root_bytes(state.root),
                            timestamp_ms=timestamp_ms,
                            committee=tuple(i.public_key for i in identities), **_summary(data))
            self._zk = (header.hash, state)
        except BaseException:
            self._zk = None
            raise
        header = header.signed(sign(identities, header.hash))
        _step("signed")
        return Batch(header, data, tuple(seq for seq, _ in pending))

    def commit(self, batch: Batch) -> bool:
        """Commit a cut batch atomically; False if this very header is already committed.

        Rejected: another header at its number, a number or previous hash that does not follow
        the last batch, a committee or signature that does not check, data or state roots that
        do not match the header, facts no longer pending, pending balances below the rewards.
        """
        h = batch.header
        existing = self.records(h.number)
        if existing:
            if existing[0].header.hash == h.hash:
                return False
            raise Rejected(f"batch {h.number} is already committed with another header "
                           f"({existing[0].header.hash.hex()[:16]})")
        last = self.last()
        number = 1 if last is None else last.header.number + 1
        prev = ZERO_HASH if last is None else last.header.hash
        if h.number != number:
            raise Rejected(f"batch number {h.number} does not follow the last batch: "
                           f"expected {number}")
        if h.prev_hash != prev:
            raise Rejected(f"batch {h.number}'s previous hash is not batch {number - 1}'s hash")
        if list(h.committee) != [m.public_key for m in members(self.ledger)]:
            raise Rejected(f"batch {h.number} is not signed by the configured committee")
        if not verify(h.committee, h.hash, h.signature):
            raise Rejected(f"batch {h.number}: the committee's aggregate signature does not verify")
        problems = check_data(h, batch.data)
        if problems:
            raise Rejected(f"batch {h.number}: {problems[0]}")
        self._advance(last, batch)
        try:
            self._write(batch, prev)
        except BaseException:
            self._zk = None
            raise
        _step("committed")
        return True

    def _state(self, last: BatchRecord | None) -> RollupState:
        """The state after the last batch (replayed from the ledger's facts if stale, and
        checked against its header's state root)."""
        want = ZERO_HASH if last is None else last.header.hash
        if self._zk is None or self._zk[0] != want:
            self._zk = None
            state = RollupState.genesis()
            for _, state, _ in self.replay():
                pass
            if last is not None and root_bytes(state.root) != last.header.state_root_after:
                raise Rejected(f"the ledger's facts do not give batch {last.header.number}'s "
                               "state root")
            self._zk = (want, state)
        return self._zk[1]

    def _advance(self, last: BatchRecord | None, batch: Batch) -> None:
        """Bring the state to the batch's (unless cut() did), checking both state roots."""
        h = batch.header
        if self._zk is not None and self._zk[0] == h.hash:
            return  # cut() built this header from the committed state: roots already hold
        state = self._state(last)
        if root_bytes(state.root) != h.state_root_before:
            raise Rejected(f"batch {h.number}'s state root before is not the current root")
        self._zk = None
        state.apply(batch.data.facts, day_of(h.timestamp_ms))
        if root_bytes(state.root) != h.state_root_after:
            raise Rejected(f"batch {h.number}'s state root after does not follow from its facts")
        self._zk = (h.hash, state)

    def _write(self, batch: Batch, prev: bytes) -> None:
        """Store the data, then record the batch, include its facts and mint: one transaction."""
        h = batch.header
        data_cid = self.store.put(batch.data.encode())
        _step("stored")
        now = self.ledger.clock()
        with self.ledger.transaction() as db:
            tip = db.execute("SELECT number, hash FROM batches ORDER BY number DESC "
                             "LIMIT 1").fetchone()
            if (tip is None and h.number != 1) or (tip is not None and (
                    tip[0] != h.number - 1 or bytes(tip[1]) != prev)):
                raise Rejected(f"another batch was committed while batch {h.number} was cut")
            db.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                       (h.number, h.hash, h.encode(), data_cid, now,
                        now + self.config.challenge_window_s))
            _step("batch")
            cur = db.executemany(
                "UPDATE batch_facts SET batch = ? WHERE seq = ? AND hash = ? AND batch IS NULL",
                [(h.number, seq, f.hash) for seq, f in zip(batch.seqs, batch.data.facts)])
            if cur.rowcount != len(batch.data.facts) or len(batch.seqs) != len(batch.data.facts):
                raise Rejected(f"batch {h.number}: some of its facts are no longer pending")
            _step("facts")
            for owner, amount in _minted_by_owner(db, h.number):
                cur = db.execute("UPDATE balances SET pending = pending - ?, minted = minted + ? "
                                 "WHERE owner = ? AND pending >= ?", (amount, amount, owner, amount))
                if cur.rowcount != 1:
                    raise Rejected(f"owner {bytes(owner).hex()[:16]}... has less pending SWT "
                                   f"than the {amount} batch {h.number} mints")
            _step("minted")

    def commit_pending(self, force: bool = False) -> list[Header]:
        """Cut and commit batches while one is due (every pending fact, if `force`)."""
        headers = []
        while self.pending(1) and (force or self.due()):
            batch = self.cut()
            assert batch is not None
            self.commit(batch)
            headers.append(batch.header)
        return headers

    def revert(self, number: int) -> list[int]:
        """Revert batches `number`.. last (none may be final): their facts become pending again,
        their rewards un-minted, and the state root is the one before batch `number` again."""
        with self.ledger.transaction() as db:
            rows = db.execute("SELECT b.number, b.final_at, p.number IS NOT NULL FROM batches b "
                              "LEFT JOIN batch_proofs p ON p.number = b.number "
                              "WHERE b.number >= ? ORDER BY b.number DESC", (number,)).fetchall()
            if not rows or rows[-1][0] != number:
                raise BadInput(f"no batch {number}")
            now = self.ledger.clock()
            final = [n for n, final_at, proven in rows if proven and now >= final_at]
            rows = [(n, final_at) for n, final_at, _ in rows]
            if final:
                raise Rejected(f"batch {min(final)} is final: only batches still in their "
                               "challenge window can be reverted")
            for n, _ in rows:
                for owner, amount in _minted_by_owner(db, n):
                    db.execute("UPDATE balances SET pending = pending + ?, minted = minted - ? "
                               "WHERE owner = ?", (amount, amount, owner))
                db.execute("UPDATE batch_facts SET batch = NULL WHERE batch = ?", (n,))
                db.execute("DELETE FROM batch_proofs WHERE number = ?", (n,))
                db.execute("DELETE FROM batches WHERE number = ?", (n,))
        self._zk = None
        self._state(self.last())  # checks the remaining facts give the old root
        return [n for n, _ in rows]

    def _signers(self) -> list[Identity]:
        """The committee's local keys, loaded again only when the committee changes."""
        keys = [m.public_key for m in members(self.ledger)]
        if self._identities is None or [i.public_key for i in self._identities] != keys:
            self._identities = signers(self.ledger, self.home)
        return self._identities

    # --- audit ------------------------------------------------------------------------------

    def audit(self, number: int) -> Audit:
        """Re-check batch `number` from the content store: the header chain and signature,
        every proof under its worker's VK, every stake fact against the ledger's stake events,
        and every root recomputed from the data alone."""
        start = time.perf_counter()
        records = self.records()
        if not 1 <= number <= len(records):
            raise BadInput(f"no batch {number}")
        report = Audit(number)
        target = records[number - 1].header
        prev = ZERO_HASH
        for rec in records[:number]:
            if rec.header.prev_hash != prev:
                report.problems.append(f"batch {rec.header.number}'s previous hash does not match")
            prev = rec.header.hash
        if not verify(target.committee, target.hash, target.signature):
            report.problems.append("the committee's aggregate signature does not verify")
        if set(target.committee) - {m.public_key for m in members(self.ledger)}:
            report.problems.append("signed by a key that is not a committee member")
        state = RollupState.genesis()
        earlier: Counter[str] = Counter()  # each worker's stake facts in the batches before
        for rec in records[:number]:
            try:
                data = decode_data(self.store.get(rec.data_cid))
            except MemjitError as exc:
                report.problems.append(f"data of batch {rec.header.number} unavailable: {exc}")
                report.seconds = time.perf_counter() - start
                return report
            if rec.header is target and root_bytes(state.root) != target.state_root_before:
                report.problems.append("state root before does not follow from the earlier "
                                       "batches' facts")
            state.apply(data.facts, day_of(rec.header.timestamp_ms))
            if rec.header is not target and root_bytes(state.root) != rec.header.state_root_after:
                report.problems.append(f"batch {rec.header.number}'s state root does not "
                                       "follow from its facts")
            if rec.header is not target:
                earlier.update(f.worker for f in data.facts if f.kind != "call")
        if root_bytes(state.root) != target.state_root_after:
            report.problems.append("state root after does not follow from the facts")
        report.problems += check_data(target, data)
        recorded: dict[str, list[tuple[str, int]]] = {}
        for f in data.facts:
            if f.kind == "call":
                report.facts.append(self._audit_fact(f))
                continue
            if f.worker not in recorded:
                recorded[f.worker] = bonds.stake_facts(self.ledger, f.worker)
            report.facts.append(self._audit_stake_fact(f, recorded[f.worker], earlier[f.worker]))
            earlier[f.worker] += 1
        bad = [row for row in report.facts if not row["ok"]]
        if bad:
            report.problems.append(f"{len(bad)} of {len(data.facts)} facts fail: "
                                   f"{bad[0]['reason']}")
        report.seconds = time.perf_counter() - start
        return report

    @staticmethod
    def _fact_row(f: Fact) -> dict:
        """A fact's audit row, not yet found ok."""
        return {"worker": f.worker, "fact": f.hash.hex(), "score": f.score, "reward": f.reward,
                "claim": f.claim_cid, "call": "", "ok": False, "reason": ""}

    def _audit_stake_fact(self, f: Fact, recorded: list[tuple[str, int]], position: int) -> dict:
        """Check one stake fact, the worker's `position`-th (0: its first), against the stake
        facts its ledger events left (`recorded`, bonds.stake_facts): a batch cannot move stake
        the ledger did not (the batch proof checks only the fact's effect on the leaf)."""
        row = self._fact_row(f) | {"call": f"{f.kind} {f.amount} SWT"}
        if position >= len(recorded):
            row["reason"] = (f"the ledger has no stake event for this {f.kind} of {f.amount} "
                             f"SWT: worker {f.worker[:16]}'s events leave {len(recorded)} "
                             "stake fact(s)")
        elif recorded[position] != (f.kind, f.amount):
            kind, amount = recorded[position]
            row["reason"] = (f"the ledger's stake event is a {kind} of {amount} SWT, not a "
                             f"{f.kind} of {f.amount} SWT (worker {f.worker[:16]})")
        else:
            row["ok"] = True
        return row

    def _audit_fact(self, f: Fact) -> dict:
        """Re-verify one call fact's claim from the store under its worker's VK."""
        row = self._fact_row(f)
        try:
            vk = self.ledger.worker(f.worker).vk
            if vk is None:
                raise Rejected("the worker has no verification key")
            if f.claim_cid is None:
                raise Rejected("the fact names no claim in the content store")
            claim_bytes = self.store.get(f.claim_cid)
            st = decode_claim(claim_bytes).statement
            row["call"] = f"{st.export}({', '.join(str(a) for a in st.args)}) = " + (
                f"trap {st.trap}" if st.trap else str(st.result))
            problem = claim_problem(f, claim_bytes, vk)
            if problem is not None:
                raise Rejected(problem)
        except (MemjitError, ClaimFormatError) as exc:
            row["reason"] = str(exc)
            return row
        row["ok"] = True
        return row


def _minted_by_owner(db: sqlite3.Connection, number: int) -> list[tuple[bytes, int]]:
    """The rewards of batch `number`'s facts, summed per worker owner."""
    return db.execute("SELECT w.owner, sum(f.reward) FROM batch_facts f JOIN workers w "
                      "ON w.id = f.worker WHERE f.batch = ? GROUP BY w.owner", (number,)).fetchall()


# --- for the demo and the CLI -----------------------------------------------------------------

def commit_pending(ledger: Ledger, store: Store, home: Path,
                   config: BatchConfig = BatchConfig()) -> list[Header]:
    """Commit every pending fact in batches of at most `config.max_facts`, then prove every
    committed batch (the demo's last step: it ends with proven batches)."""
    from memjit.rollup.proving import BatchProver

    batcher = Batcher(ledger, store, home, config)
    headers = batcher.commit_pending(force=True)
    BatchProver(batcher).prove_pending()
    return headers


def batches_table(ledger: Ledger, store: Store, home: Path) -> Table:
    """A rich table of the committed batches: number, hash, facts, minted, roots, status."""
    batcher = Batcher(ledger, store, home)
    records, now = batcher.records(), ledger.clock()
    table = Table(title=f"{len(records)} committed batch(es)")
    for col in ("#", "hash", "facts", "minted", "state root before", "state root after",
                "facts root", "status"):
        table.add_column(col, justify="right" if col in ("#", "facts", "minted") else "left",
                         no_wrap=True)
    for rec in records:
        h = rec.header
        table.add_row(str(h.number), h.hash.hex()[:16], str(h.fact_count), str(h.minted),
                      h.state_root_before.hex()[:16], h.state_root_after.hex()[:16],
                      h.facts_root.hex()[:16], rec.status(now))
    return table
