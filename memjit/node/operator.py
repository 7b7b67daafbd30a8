"""The operator role: run and prove jobs for the workers its node operates.

A worker's owner hands the module and its signed registration to the node it wants as the
operator (`memjit worker add --node URL`); the node checks the owner's signature, stores the
module (served by CID: the sequencer fetches it from here), remembers the worker and forwards
the registration to the sequencer. A job is a message signed by a gateway: the task, the
worker, the input, the 32-byte nonce the proof must answer, and a deadline. The operator runs
and proves it with the market's own prove stage (memjit.market.pool.answer, in a process of its
pool) and answers with a claim message it signs, naming the claim by digest (the bytes follow
in the same binary frame: memjit.node.wire), or the fault that stopped the worker. A job for a
worker, input and nonce it has answered (or is answering) already gets the same answer, not a
second proof: the sequencer, witnessing a fault a gateway reported, asks again
(memjit.node.faults). Its pool has `processes` prover processes (the jobs proven at once),
started when the node starts. `actors` maps worker CIDs to another operator function (a
dishonest one, in demos and tests: memjit.workers.digits_liar).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Executor, Future, ProcessPoolExecutor
from pathlib import Path

import blake3

from circuits.wasm_vm.statement import NONCE_BYTES
from memjit.errors import BadInput, Rejected
from memjit.market.identity import Identity
from memjit.market.ledger import Worker
from memjit.market.pool import Operator as ProveFn
from memjit.market.pool import answer, prover_pool, stop_pool, warm_pool
from memjit.market.registry import worker_id
from memjit.market.oracle import Delivery
from memjit.market.tasks import Task, get_task
from memjit.node.jobs import claim_body
from memjit.cluster import DaskEngine
from memjit.node.log import log
from memjit.node.messages import Envelope, Refused, hex_field, open_envelope, seal
from memjit.node.replay import ReplayCache
from memjit.node.sequencer import registration_of
from memjit.runtime.store import Store, cid_of

SERVED_FILE = "operated.json"
KEPT_ANSWERS = 1024
"""The recent answers an operator remembers (a job asked again gets the same answer)."""


class OperatorRole:
    """The workers this node operates, and how it answers their jobs."""

    def __init__(self, home: Path, store: Store, identity: Identity, replay: ReplayCache,
                 actors: Mapping[str, ProveFn] | None = None, processes: int = 1,
                 cluster: str | None = None) -> None:
        self.path = Path(home) / SERVED_FILE
        self.store = store
        self.identity = identity
        self.replay = replay
        self.actors = dict(actors or {})
        self._processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._engine = None if cluster is None else DaskEngine(cluster)
        self._lock = threading.Lock()
        self._warming = self._closed = False
        self._answers: OrderedDict[tuple, Future] = OrderedDict()
        self.served: dict[str, dict] = json.loads(self.path.read_text()) \
            if self.path.exists() else {}

    def executor(self) -> Executor:
        """The prover pool, started on first use; with a cluster, the cluster's executor (its
        workers prove the jobs: memjit.cluster)."""
        with self._lock:
            if self._closed:
                raise Rejected("this node is stopping")
            if self._engine is not None:
                return self._engine.executor()
            if self._executor is None:
                self._executor = prover_pool(self._processes, warm=True)
            return self._executor

    def warm(self) -> None:
        """Start every prover process in the background, once this node operates a worker
        (a spawned process imports the prover and numba: seconds a job should not wait for)."""
        with self._lock:
            if self._warming or not self.served:
                return
            self._warming = True
        if self._engine is not None:
            log(f"proving jobs on the Dask cluster {self._engine.address}")
            return
        log(f"starting {self._processes} prover process(es)")
        threading.Thread(target=self._warm, daemon=True, name="provers").start()

    def _warm(self) -> None:
        try:
            warm_pool(self.executor(), self._processes)
        except (Rejected, RuntimeError, CancelledError):  # stopped while they started
            pass

    def close(self) -> None:
        """Stop the prover pool now (its running proofs too)."""
        with self._lock:
            self._closed = True
        if self._executor is not None:
            stop_pool(self._executor)
        if self._engine is not None:
            self._engine.close()

    def accept(self, module: bytes, message: object, url: str) -> Envelope:
        """Check a worker's owner-signed registration names this node (its URL and key) and
        this module, and store the module (the sequencer fetches it from here). Returns the
        checked message, for the caller to forward to the sequencer; once the sequencer has
        admitted the worker, `operate` it."""
        envelope = open_envelope(message, "registration")
        reg, operator = registration_of(envelope.body)
        if envelope.signer != reg.public_key:
            raise Refused("registration message not signed by the worker's owner")
        if operator.key != self.identity.public_key or operator.url.rstrip("/") != url:
            raise Refused("registration names another operator node")
        if cid_of(module) != reg.cid:
            raise Refused(f"registration is for {reg.cid}, not for this module")
        get_task(self.store, reg.task)
        self.store.put(module)
        return envelope

    def operate(self, envelope: Envelope) -> None:
        """Remember a worker the sequencer admitted (its checked registration message) and
        start the provers."""
        reg, _ = registration_of(envelope.body)
        wid = worker_id(reg.public_key, reg.cid)
        with self._lock:
            self.served[wid] = {"cid": reg.cid, "task": reg.task, "owner": reg.public_key.hex()}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.served, sort_keys=True))
            tmp.replace(self.path)
        log(f"operating worker {wid[:16]} ({reg.cid})")
        self.warm()

    def run_job(self, message: object, now: Callable[[], float] = time.time
                ) -> tuple[Envelope, bytes | None, float]:
        """Run and prove one signed job; the signed claim message (naming the claim, or the
        fault), the claim's bytes and the seconds spent answering."""
        job = open_envelope(message, "job")
        body = job.body
        wid, task_name, deadline = body.get("worker"), body.get("task"), body.get("deadline")
        if not isinstance(wid, str) or not isinstance(task_name, str) \
                or not isinstance(deadline, int):
            raise BadInput("job: worker, task and deadline (Unix seconds) are required")
        input_bytes = hex_field(body, "input", None, "job")
        nonce = hex_field(body, "nonce", NONCE_BYTES, "job")
        if deadline < now():
            raise Refused("job deadline has passed")
        served = self.served.get(wid)
        if served is None:
            raise Rejected(f"this node does not operate worker {wid[:16]}")
        task = get_task(self.store, task_name)
        if served["task"] != task.name:
            raise Rejected(f"worker {wid[:16]} serves task {served['task']!r}, not {task.name!r}")
        task.check_input(input_bytes)
        self.replay.admit(job)
        log(f"job {wid[:8]} received from {job.signer.hex()[:8]}")
        worker = Worker(id=wid, owner=bytes.fromhex(served["owner"]), cid=served["cid"],
                        task=task.name, vk=None, stake=0, usefulness=0, registered_at=0.0,
                        last_used_at=None, unbonding_amount=0, unbonding_at=None,
                        status="active")
        start = time.perf_counter()
        delivery = self._answer(worker, task, input_bytes, nonce, job.signer,
                                max(1.0, deadline - now()))
        spent = time.perf_counter() - start
        return seal(self.identity, "claim", claim_body(wid, nonce, delivery.claim,
                                                       delivery.fault),
                    ttl_s=max(60, deadline - int(now()) + 60)), delivery.claim, spent

    def _answer(self, worker: Worker, task: Task, input_bytes: bytes, nonce: bytes,
                sender: bytes, timeout_s: float) -> Delivery:
        """The worker's delivery for this input and nonce: proven once, whoever asks (a
        gateway, then the sequencer as the witness of a fault, get the same answer)."""
        key = (worker.id, nonce, blake3.blake3(input_bytes).digest())
        with self._lock:
            pending = self._answers.get(key)
            fresh = pending is None
            if fresh:
                pending = self._answers[key] = Future()
                while len(self._answers) > KEPT_ANSWERS:
                    self._answers.popitem(last=False)
        if not fresh:
            log(f"job {worker.id[:8]} for {sender.hex()[:8]}: answered already, same answer")
            return pending.result(timeout=timeout_s)
        start = time.perf_counter()
        try:
            delivery = answer(self.store, task, [worker], input_bytes, nonce, self.executor(),
                              self.actors)[worker.id]
        except BaseException as exc:
            with self._lock:
                self._answers.pop(key, None)
            pending.set_exception(exc)
            raise
        pending.set_result(delivery)
        log(f"job {worker.id[:8]} for {sender.hex()[:8]}: "
            + (f"claim in {time.perf_counter() - start:.2f} s" if delivery.claim is not None
               else f"fault {delivery.fault}"))
        return delivery
