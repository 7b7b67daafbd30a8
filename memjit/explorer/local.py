"""The explorer's source over a local --home: its ledger, content store and keys.

Reads open the ledger read-only, one connection per call (the web server answers from a pool
of threads, and a SQLite connection belongs to its thread), so the explorer never writes to a
home it only shows. A request ("try it") opens it for writing, as `memjit request` does, and
is served by the market's pool in this process (one at a time), its proofs in a pool of
spawned processes made on first use and stopped by `close()` (or in the executor handed in,
which stays the caller's).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from memjit.errors import BadInput
from memjit.explorer.source import (PPM, Answer, AuditResult, BatchDetail, BatchRow,
                                    CallOutcome, CallRow, ClaimCheck, FactRow, LeaderRow,
                                    NetworkInfo, NotFound, RequestOutcome, TaskInfo,
                                    WorkerDetail)
from memjit.market.identity import KEYS_DIR, load, load_or_create
from memjit.market.ledger import Ledger, Worker
from memjit.market.tasks import builtin_tasks, get_task
from memjit.rollup.batcher import Batcher, BatchRecord
from memjit.rollup.zkstate import GENESIS_ROOT
from memjit.runtime.store import MissingBlock, Store, cid_of, digest_of_cid
from verifier.claims import ClaimFormatError, decode_claim, verify_claim, vk_digest

if TYPE_CHECKING:  # the pool loads the prover: imported when a request needs it
    from memjit.market.oracle import Delivery
    from memjit.market.pool import Operator

MAX_CACHED_CLAIMS = 4096
REQUESTER = "requester"

_LEADER_SQL = """
    SELECT w.id, w.owner, w.cid, w.usefulness, w.stake, w.status, w.registered_at,
           (SELECT count(*) FROM calls c WHERE c.worker = w.id),
           (SELECT coalesce(sum(reward), 0) FROM calls c WHERE c.worker = w.id),
           (SELECT coalesce(sum(fee), 0) FROM calls c WHERE c.worker = w.id),
           (SELECT coalesce(sum(amount), 0) FROM stake_events e
            WHERE e.worker = w.id AND e.kind = 'slash')
    FROM workers w {where}
    ORDER BY w.usefulness DESC, w.stake DESC, w.registered_at, w.id"""


class _ReadOnlyStore(Store):
    """The content store, for reading: `put` names a block without writing it (listing the
    tasks asks for their scorers' CIDs, which would store the scorer modules)."""

    def put(self, data: bytes) -> str:
        return cid_of(data)


class LocalSource:
    """ExplorerSource over the state directory `home` (role "local", no peers).

    `operators` maps worker CIDs to the operators that answer for them instead of the honest
    one, as `memjit request` hands in the shipped liar's; `requester` names the key (under
    --home/keys, created if new) that the explorer's requests are sent and paid by."""

    def __init__(self, home: Path, *, operators: Mapping[str, "Operator"] | None = None,
                 requester: str = REQUESTER, top_k: int = 5,
                 clock: Callable[[], float] = time.time,
                 executor: Executor | None = None) -> None:
        self.home = Path(home)
        self.operators = dict(operators or {})
        self.requester = requester
        self.top_k = top_k
        self.clock = clock
        self._names: dict[bytes, str] = {}
        self._named_files: set[str] = set()
        self._claims: dict[str, ClaimCheck] = {}
        self._lock = threading.Lock()  # names, claim cache, the executor
        self._requests = threading.Lock()  # one request at a time
        self._executor: Executor | None = executor
        self._own_executor = executor is None

    def close(self) -> None:
        """Stop the proving processes, if a request started them."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None and self._own_executor:
            executor.shutdown(cancel_futures=True)

    @contextmanager
    def _read(self) -> Iterator[Ledger]:
        with Ledger(self.home, self.clock, readonly=True) as ledger:
            yield ledger

    def _batcher(self, ledger: Ledger) -> Batcher:
        return Batcher(ledger, Store(self.home), self.home)

    # --- names ---------------------------------------------------------------------------------

    def _name_map(self, ledger: Ledger) -> dict[bytes, str]:
        """Owner keys -> names: the committee's, then every key file under --home/keys (each
        read once: deriving a public key costs milliseconds)."""
        with self._lock:
            for key, name in ledger.db.execute("SELECT pubkey, name FROM committee"):
                self._names.setdefault(bytes(key), name)
            keys = self.home / KEYS_DIR
            for path in sorted(keys.glob("*.key")) if keys.is_dir() else ():
                if path.name not in self._named_files:
                    self._named_files.add(path.name)
                    try:
                        self._names[load(self.home, path.stem).public_key] = path.stem
                    except BadInput:
                        continue  # a malformed key file names nobody
            return dict(self._names)

    @staticmethod
    def _owner(names: Mapping[bytes, str], key: bytes) -> str:
        return names.get(bytes(key)) or bytes(key).hex()[:12]

    # --- network and tasks --------------------------------------------------------------------

    def network(self) -> NetworkInfo:
        with self._read() as ledger:
            last = self._batcher(ledger).last()
            pending = ledger.db.execute(
                "SELECT count(*) FROM batch_facts WHERE batch IS NULL").fetchone()[0]
        root = GENESIS_ROOT if last is None else last.header.state_root_after
        return NetworkInfo("local", 0 if last is None else last.header.number, root.hex(),
                           int(pending))

    def tasks(self) -> list[TaskInfo]:
        with self._read() as ledger:
            counts = {task: (n, active) for task, n, active in ledger.db.execute(
                "SELECT task, count(*), sum(status = 'active') FROM workers GROUP BY task")}
        return [TaskInfo(t.name, t.export, t.input_size, t.input_max, t.labels,
                         *counts.get(t.name, (0, 0)))
                for t in builtin_tasks(_ReadOnlyStore(self.home)).values()]

    # --- workers ---------------------------------------------------------------------------------

    def _rows(self, ledger: Ledger, where: str, params: tuple) -> list[LeaderRow]:
        names = self._name_map(ledger)
        return [LeaderRow(wid, self._owner(names, owner), bytes(owner).hex(), cid, use / PPM,
                          stake, calls, earned, fees, slashed, status, registered)
                for wid, owner, cid, use, stake, status, registered, calls, earned, fees, slashed
                in ledger.db.execute(_LEADER_SQL.format(where=where), params)]

    def leaderboard(self, task: str) -> list[LeaderRow]:
        with self._read() as ledger:
            return self._rows(ledger, "WHERE w.task = ?", (task,))

    def usefulness_history(self, task: str) -> dict[str, list[tuple[float, float]]]:
        """From the committed state: 0 at registration, the account's usefulness at each batch
        that changed it, then the ledger's current value now."""
        with self._read() as ledger:
            workers = ledger.workers(task)
            history = {w.id: [(w.registered_at, 0.0)] for w in workers}
            for record, state, facts in self._batcher(ledger).replay():
                for wid in {f.worker for f in facts if f.kind == "call"} & history.keys():
                    leaf = state.leaf(wid)
                    history[wid].append((record.committed_at,
                                         0.0 if leaf is None else leaf.usefulness / PPM))
            now = ledger.clock()
        for w in workers:
            history[w.id].append((now, w.usefulness / PPM))
        return history

    def worker(self, worker_id: str) -> WorkerDetail:
        with self._read() as ledger:
            rows = self._rows(ledger, "WHERE w.id = ?", (worker_id.lower(),))
            if not rows:
                raise NotFound(f"no worker {worker_id}")
            w = ledger.worker(rows[0].id)
        return WorkerDetail(rows[0], w.task, None if w.vk is None else vk_digest(w.vk).hex(),
                            w.last_used_at, w.unbonding_amount, w.unbonding_at)

    def calls(self, worker_id: str, limit: int = 100) -> list[CallRow]:
        self.worker(worker_id)  # NotFound
        with self._read() as ledger:
            rows = ledger.db.execute(
                "SELECT request, at, outcome, result, score, fee, reward, slashed, claim, reason "
                "FROM calls WHERE worker = ? ORDER BY at DESC, request DESC LIMIT ?",
                (worker_id.lower(), max(0, limit))).fetchall()
        return [CallRow(req, at, outcome, result, score / PPM, fee, reward, slashed, claim,
                        reason)
                for req, at, outcome, result, score, fee, reward, slashed, claim, reason in rows]

    # --- claims --------------------------------------------------------------------------------

    def claim(self, cid: str) -> ClaimCheck:
        """Re-verify a stored claim under the VK of the worker registered for its program
        (cached: a CID names the claim's bytes, and a VK digest its key)."""
        with self._lock:
            if cid in self._claims:
                return self._claims[cid]
        digest_of_cid(cid)  # BadInput for anything but a memjit CID
        try:
            data = Store(self.home).get(cid)
        except MissingBlock:
            raise NotFound(f"no claim {cid} in the content store") from None
        try:
            st = decode_claim(data).statement
        except ClaimFormatError as exc:
            raise BadInput(f"{cid} is not a claim: {exc}") from None
        with self._read() as ledger:
            worker = ledger.worker_by_vk(st.vk)
        start = time.perf_counter()
        if worker is None or worker.vk is None:
            verdict = None
        else:
            verdict = verify_claim(data, worker.vk)
        check = ClaimCheck(
            cid, None if worker is None else worker.id, st.export, st.signed_result, st.trap,
            st.steps, blake3.blake3(st.input).hexdigest(), st.nonce.hex(),
            bool(verdict and verdict.valid),
            "no worker is registered for the claim's program" if verdict is None
            else verdict.reason, 0 if verdict is None else verdict.security_bits,
            "" if verdict is None else verdict.limited_by, time.perf_counter() - start)
        with self._lock:
            if len(self._claims) >= MAX_CACHED_CLAIMS:
                self._claims.clear()
            self._claims[cid] = check
        return check

    # --- batches -------------------------------------------------------------------------------

    def _batch_row(self, record: BatchRecord, now: float,
                   names: Mapping[bytes, str]) -> BatchRow:
        h = record.header
        return BatchRow(h.number, h.hash.hex(), h.prev_hash.hex(), h.state_root_before.hex(),
                        h.state_root_after.hex(), h.facts_root.hex(),
                        h.fact_count, h.minted, h.timestamp_ms / 1000, record.committed_at,
                        record.final_at, record.status(now), record.data_cid,
                        tuple(self._owner(names, k) for k in h.committee))

    def batches(self) -> list[BatchRow]:
        with self._read() as ledger:
            names = self._name_map(ledger)
            return [self._batch_row(r, ledger.clock(), names)
                    for r in reversed(self._batcher(ledger).records())]

    def batch(self, number: int) -> BatchDetail:
        with self._read() as ledger:
            names = self._name_map(ledger)
            found = self._batcher(ledger).records(number)
            if not found:
                raise NotFound(f"no batch {number}")
            facts = [FactRow(wid, self._owner(names, owner), score / PPM, reward, claim, kind,
                             amount)
                     for wid, owner, score, reward, claim, kind, amount in ledger.db.execute(
                         "SELECT f.worker, w.owner, f.score, f.reward, f.claim_cid, f.kind, "
                         "f.amount FROM "
                         "batch_facts f JOIN workers w ON w.id = f.worker WHERE f.batch = ? "
                         "ORDER BY f.seq", (number,))]
            return BatchDetail(self._batch_row(found[0], ledger.clock(), names), tuple(facts))

    def audit(self, number: int) -> AuditResult:
        with self._read() as ledger:
            batcher = self._batcher(ledger)
            if not batcher.records(number):
                raise NotFound(f"no batch {number}")
            report = batcher.audit(number)
        return AuditResult(number, report.ok, tuple(report.problems), len(report.facts),
                           report.seconds)

    # --- requests ------------------------------------------------------------------------------

    def _pool(self) -> Executor:
        with self._lock:
            if self._executor is None:
                from memjit.market.pool import prover_pool

                self._executor = prover_pool()
            return self._executor

    def request(self, task: str, input_bytes: bytes, label: int | None = None,
                on_answer: Callable[[Answer], None] | None = None) -> RequestOutcome:
        from memjit.market.pool import request as market_request

        # What the pool would refuse, refused before the requester's key is made.
        info = get_task(_ReadOnlyStore(self.home), task)
        info.check_input(input_bytes)
        if label is not None and not 0 <= label < info.labels:
            raise BadInput(f"label must be in 0..{info.labels - 1}, got {label}")
        with self._requests, Ledger(self.home, self.clock) as ledger:
            names = self._name_map(ledger)
            owners = {w.id: self._owner(names, w.owner) for w in ledger.workers(task)}

            def delivered(worker: Worker, delivery: "Delivery") -> None:
                if on_answer is not None:
                    on_answer(Answer(worker.id, owners.get(worker.id, ""), delivery.fault))

            result = market_request(ledger, Store(self.home),
                                    load_or_create(self.home, self.requester), task, input_bytes,
                                    label=label, top_k=self.top_k, executor=self._pool(),
                                    operators=self.operators, on_delivery=delivered)
        calls = tuple(CallOutcome(c.worker, owners.get(c.worker, ""), c.outcome, c.result,
                                  c.score / PPM, c.fee, c.slashed, c.claim_cid, c.reason)
                      for c in result.calls)
        best = result.best
        return RequestOutcome(result.seq, result.reference.answer, result.reference.basis,
                              None if best is None else best.result,
                              None if best is None else best.worker, calls)
