"""The sequencer: one per network, the single writer of the ledger.

It admits registrations (the owner-signed message names the worker's operator; the module is
fetched by CID from that operator, else from any provider the DHT knows, and re-hashed:
memjit.node.providers), applies unbonds, and settles deliveries: a gateway hands in a request
(signed by its requester, who pays) with every claim it gathered (each signed by the worker's
operator), and the sequencer runs the market's own stages on it (memjit.market.pool: plan
with the gateway's workers, judge: every claim verified again, in a verifier process of its
own that only gets the CPU time nothing else wants, `idle_priority`, where the request and
claim messages a delivery carries are checked too, `open_delivery`; settle) in one ledger
transaction. A fault the gateway reports, rather than the operator, counts only if the
operator fails the sequencer's own job too (memjit.node.faults). It commits batches
(memjit.rollup.batcher) every `batch_interval_s`; memjit.node.batches proves and publishes
them.
Every ledger access runs on one writer thread (SQLite connections stay on their thread), which
serializes the writes.

Every message is checked (memjit.node.messages) and its nonce recorded in the persistent replay
cache before it is applied, so that nothing is applied twice, across restarts too; a request
settles once (its envelope's nonce, and the proven nonce, unique in the ledger). Writes are
serialized; SQLite transactions make each acknowledged change durable.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from typing import TypeVar
from pathlib import Path

from circuits.wasm_vm.statement import NONCE_BYTES
from memjit.errors import BadInput, MemjitError
from memjit.market import validators
from memjit.market.identity import Identity
from memjit.market.epoch import advance
from memjit.market.ledger import Ledger, Validator, Worker
from memjit.market.oracle import Delivery
from memjit.market.pool import MarketConfig, RequestResult, judge, plan, settle, stop_pool
from memjit.market.registry import Registration, admit, unbond_by, worker_id
from memjit.node.jobs import claim_delivery
from memjit.node.log import log, since
from memjit.node.messages import Envelope, Refused, hex_field, open_envelope
from memjit.node.providers import Providers
from memjit.node.replay import ReplayCache
from memjit.node.state import Directory, MarketView, OperatorRef, market_view
from memjit.node.faults import FaultWitness
from memjit.node.wire import Frame
from memjit.rollup.batcher import Batcher
from memjit.runtime.store import Store

MAX_TOP_K = 16
FALLBACK_NICE = 19
"""The niceness of the verifier process where SCHED_IDLE is missing (not Linux)."""
T = TypeVar("T")


def idle_priority() -> None:
    """Run this process on the CPU time nothing else wants: SCHED_IDLE on Linux (an idle
    core runs it at full speed; a busy one only when every normal task waits), else nice
    FALLBACK_NICE. The sequencer's verifier process: its checks settle answers already given
    and yield the cores to the proofs and messages of answers still awaited (on a machine the
    sequencer shares with operators and gateways); nothing settles before they are done."""
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(FALLBACK_NICE)


def registration_of(body: dict) -> tuple[Registration, OperatorRef]:
    """The registry's signed registration and the operator a registration message names."""
    try:
        reg, op = body["registration"], body["operator"]
        stake = reg["stake"]
        if not isinstance(stake, int) or isinstance(stake, bool):
            raise BadInput("registration: stake must be an integer")
        return (Registration(hex_field(reg, "public_key", 48, "registration"), str(reg["cid"]),
                             str(reg["task"]), stake,
                             hex_field(reg, "signature", 96, "registration"),
                             hex_field(reg, "pop", 96, "registration")),
                OperatorRef(str(op["url"]), hex_field(op, "key", 48, "registration")))
    except (KeyError, TypeError) as exc:
        raise BadInput(f"malformed registration message: missing {exc}") from None


def request_of(envelope: Envelope) -> tuple[str, bytes, int | None, int]:
    """A request message's task, input, label and top-k (BadInput if malformed)."""
    body = envelope.body
    task, label, top_k = body.get("task"), body.get("label"), body.get("top_k")
    if not isinstance(task, str) or not isinstance(top_k, int) or isinstance(top_k, bool) \
            or not 1 <= top_k <= MAX_TOP_K:
        raise BadInput(f"request: task must be a name and top_k in 1..{MAX_TOP_K}")
    if label is not None and (not isinstance(label, int) or isinstance(label, bool)):
        raise BadInput("request: label must be an integer or null")
    return task, hex_field(body, "input", None, "request"), label, top_k


def result_json(result: RequestResult) -> dict:
    """A settled request as JSON."""
    return {"seq": result.seq, "nonce": result.nonce.hex(),
            "reference": asdict(result.reference),
            "calls": [asdict(c) for c in result.calls],
            "best": None if result.best is None else asdict(result.best)}


def open_delivery(delivery: Envelope, attachments: Mapping[str, bytes],
                  operators: Mapping[str, OperatorRef | None]
                  ) -> tuple[Envelope, bytes, dict[str, tuple[Delivery, bool]]]:
    """The messages inside a gateway's opened `delivery`, checked (memjit.node.messages,
    memjit.node.jobs.claim_delivery): its request, its nonce, and each worker's delivery and
    whether its operator (`operators`) attested it. Pure and picklable: it runs in the
    sequencer's verifier process."""
    body = delivery.body
    request = open_envelope(body.get("request"), "request")
    nonce = hex_field(body, "nonce", NONCE_BYTES, "delivery")
    claims = body.get("claims")
    if not isinstance(claims, dict):
        raise BadInput("delivery: claims must be an object")
    return request, nonce, {wid: claim_delivery(claims.get(wid), wid, nonce, operator,
                                                attachments)
                            for wid, operator in operators.items()}


class Sequencer:
    """The ledger's single writer (see the module doc)."""

    def __init__(self, home: Path, store: Store, providers: Providers, replay: ReplayCache,
                 config: MarketConfig, identity: Identity, batch_interval_s: float = 30.0,
                 job_timeout_s: float = 120.0) -> None:
        self.home = Path(home)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self.ledger = self.run(lambda: Ledger(home))
        self.store = store
        self.providers = providers
        self.replay = replay
        self.directory = Directory(home)
        self.witness = FaultWitness(identity, self.directory.get, job_timeout_s)
        self.config = config
        self._verifier = ProcessPoolExecutor(1, mp_context=get_context("spawn"),
                                             initializer=idle_priority)
        self._stop = threading.Event()
        self._batches = threading.Thread(target=self._commit_loop, args=(batch_interval_s,),
                                         daemon=True, name="batches")

    def start(self) -> None:
        """Start committing batches in the background (and the verifier process)."""
        self._batches.start()
        self._verifier.submit(int)

    def close(self) -> None:
        """Stop the batch thread and close the ledger."""
        self._stop.set()
        if self._batches.is_alive():
            self._batches.join(timeout=30)
        stop_pool(self._verifier)
        self.run(self.ledger.close)
        self._writer.shutdown()

    def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the ledger's thread; its result (or exception)."""
        return self._writer.submit(fn).result()

    def register(self, message: object) -> Worker:
        """Admit an owner's signed registration (the module fetched by CID: from its
        operator, else from any provider in the DHT)."""
        envelope = open_envelope(message, "registration")
        reg, operator = registration_of(envelope.body)
        if envelope.signer != reg.public_key:
            raise Refused("registration message not signed by the worker's owner")
        self.replay.admit(envelope)
        module = self.providers.fetch(reg.cid, [operator.url])
        self.directory.set(worker_id(reg.public_key, reg.cid), operator)
        worker = self.run(lambda: admit(self.ledger, self.store, module, reg,
                                        self.config.registry, self.config.rewards.faucet))
        log(f"registered worker {worker.id[:16]} task={worker.task} stake={worker.stake} "
            f"operator={operator.url}")
        return worker

    def unbond(self, message: object) -> Worker:
        """Apply an owner's signed unbond of a worker's stake."""
        envelope = open_envelope(message, "unbond")
        wid, amount = envelope.body.get("worker"), envelope.body.get("amount")
        if not isinstance(wid, str) or not (amount is None or (
                isinstance(amount, int) and not isinstance(amount, bool))):
            raise BadInput("unbond: worker must be an id and amount an integer or null")
        self.replay.admit(envelope)
        worker = self.run(lambda: unbond_by(self.ledger, envelope.signer,
                                            f"key {envelope.signer.hex()[:16]}", wid, amount,
                                            self.config.registry))
        log(f"unbonding worker {worker.id[:16]}: {worker.unbonding_amount} SWT")
        return worker

    def stake(self, message: object) -> Validator:
        """Apply an owner's signed validator stake change: bond or unbond `amount`."""
        envelope = open_envelope(message, "stake")
        action, amount = envelope.body.get("action"), envelope.body.get("amount")
        if action not in ("bond", "unbond") or not (amount is None or (
                isinstance(amount, int) and not isinstance(amount, bool))) \
                or (action == "bond" and amount is None):
            raise BadInput("stake: action must be bond (with an amount) or unbond")
        self.replay.admit(envelope)
        who = f"key {envelope.signer.hex()[:16]}"
        if action == "bond":
            bond = self.run(lambda: validators.bond_key(self.ledger, envelope.signer, amount,
                                                        self.config.rewards.faucet))
        else:
            bond = self.run(lambda: validators.unbond_key(self.ledger, envelope.signer, who,
                                                          amount, self.config.registry))
        log(f"validator {who}: {action} {amount}; {bond.stake} SWT bonded")
        return bond

    def settle(self, frame: Frame) -> tuple[RequestResult, dict[str, float]]:
        """Judge again and settle a gateway's delivery (a frame: the signed delivery and the
        claims), a fault counted only if the operator fails the sequencer too (see the module
        doc); the settled request, and the seconds spent opening the messages, planning,
        witnessing faults, judging and settling."""
        spent: dict[str, float] = {}
        t = time.perf_counter()
        delivery = open_envelope(frame.message, "delivery")  # this gateway's: before any work
        workers = delivery.body.get("workers")
        if not isinstance(workers, list) or not all(isinstance(w, str) for w in workers):
            raise BadInput("delivery: workers must be a list of ids")
        # the messages inside (the request, every claim message) are checked on idle CPU too
        opened = self._verifier.submit(open_delivery, delivery, frame.attachments,
                                       {wid: self.directory.get(wid) for wid in workers})
        request, nonce, checked = opened.result()
        task, input_bytes, label, top_k = request_of(request)
        self.replay.admit(delivery)
        self.replay.admit(request)
        spent["open_s"], t = since(t)
        planned = self.run(lambda: plan(self.ledger, self.store, request.signer, task,
                                        input_bytes, label=label, top_k=top_k,
                                        config=self.config, workers=workers))
        spent["plan_s"], t = since(t)
        deliveries = {wid: found for wid, (found, _) in checked.items()}
        deliveries.update(self.witness.check(
            {wid: found for wid, (found, attested) in checked.items() if not attested},
            planned.task.name, planned.input_bytes, nonce))
        spent["witness_s"], t = since(t)
        # off the ledger thread, and in a process of its own: its CPU-bound checks would hold
        # the GIL the node's API threads (market views, the gateway) need
        judged = self._verifier.submit(judge, self.store, planned, nonce, deliveries,
                                       self.config).result()
        spent["judge_s"], t = since(t)
        result = self.run(lambda: settle(self.ledger, self.store, planned, nonce, judged,
                                         self.config))
        spent["settle_s"], t = since(t)
        log(f"settled request {result.seq}: " + ", ".join(
            f"{c.worker[:8]}={c.outcome}" for c in result.calls) + "; "
            + " ".join(f"{k.removesuffix('_s')}={v:.3f}" for k, v in spent.items()))
        return result, spent

    def view(self, task: str, requester: bytes) -> MarketView:
        """The market view a gateway selects from."""
        return self.run(lambda: market_view(self.ledger, self.directory, task, requester,
                                            self.config))

    def commit(self) -> int:
        """Close the emission periods that are over (their scored calls become facts), then
        commit every pending fact in batches; how many."""
        def due() -> list:
            advance(self.ledger, self.config.rewards)
            return Batcher(self.ledger, self.store, self.home).commit_pending(force=True)

        headers = self.run(due)
        for h in headers:
            log(f"committed batch {h.number}: {h.fact_count} facts, state root "
                f"{h.state_root_after.hex()[:16]}")
        return len(headers)

    def _commit_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.commit()
            except MemjitError as exc:
                log(f"batch commit failed: {exc}")
