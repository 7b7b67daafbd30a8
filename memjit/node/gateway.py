"""The gateway role: serve a requester's signed request across the network.

It ranks the task's workers on its view of the market (memjit.node.state, the pool's own
selection rules: memjit.market.pool.rank; a view read from the sequencer is kept VIEW_TTL_S,
memjit.node.state.ViewCache), checks that the requester can pay, draws a fresh
32-byte nonce and sends a signed job to each picked worker's operator in parallel. Every claim
that comes back must be signed by that worker's operator and about this job; the gateway then
verifies every claim itself under the worker's registered VK (memjit.market.pool.judge, the
oracle's checks), returns the best *verified* answer with every claim's verdict, and hands the
delivery to the sequencer, which judges again and settles. Settlement is off the answer's
latency path: the signed delivery is spooled to disk and handed over by a background thread
(one, so deliveries reach the sequencer in order); `settlement(nonce)` tells how it went.
While the sequencer cannot be reached or does not answer, the thread tries again with a
doubling delay; only the sequencer's own answer (settled, or refused) ends a delivery. A
gateway restarted with deliveries still spooled hands them over again (`resume`): the
sequencer's replay cache refuses a delivery it already settled, so nothing is lost or counted
twice. An operator that is unreachable, dies or misses the deadline (the job's deadline plus
memjit.node.jobs.MARGIN_S) is a fault the gateway reports; the sequencer counts it only if the
operator fails its own job too (memjit.node.faults). Claims travel as binary frames
(memjit.node.wire), from the operator and in the delivery. A gateway never returns an answer
it has not verified.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from circuits.wasm_vm.statement import NONCE_BYTES
from memjit.errors import BadInput, InternalError, MemjitError, Rejected
from memjit.market.identity import Identity
from memjit.market.ledger import Worker
from memjit.market.pool import MarketConfig, Plan, judge, rank
from memjit.market.tasks import get_task
from memjit.node.client import NoAnswer, Unreachable
from memjit.node.log import log, since
from memjit.node.messages import open_envelope, seal
from memjit.node.replay import ReplayCache
from memjit.node.jobs import Reply, claim_delivery, send_job
from memjit.node.sequencer import request_of
from memjit.node.state import MarketView, ViewCache
from memjit.node.wire import Frame, pack, unpack
from memjit.runtime.store import Store

KEPT_SETTLEMENTS = 4096
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
"""A delivery the sequencer did not answer is handed over again after these delays (doubling)."""
MAX_SEQUENCER_ERRORS = 5
"""A delivery the sequencer failed on (HTTP 5xx) this many times is left spooled."""
SPOOLED = ".delivery"
"""The suffix of a spooled delivery (a frame: memjit.node.wire)."""


@dataclass
class Timings:
    """Where a request's time went at the gateway: checking the request and its replay,
    reading the market view (from the sequencer, unless cached; operators located in the
    DHT), waiting for the operators' claims (`jobs_s`: the slowest operator's time
    answering, `prove_s`, and handling the job, `operator_s`, as its Server-Timing header
    says; the rest is the job's HTTP hop both ways), checking the claim messages, verifying the claims (and scoring
    them), sealing and spooling the delivery, and the whole request. `sign_s` sums the BLS
    work of these (request, claim messages, delivery)."""

    admit_s: float = 0.0
    view_s: float = 0.0
    jobs_s: float = 0.0
    prove_s: float = 0.0
    operator_s: float = 0.0
    claims_s: float = 0.0
    verify_s: float = 0.0
    deliver_s: float = 0.0
    sign_s: float = 0.0
    total_s: float = 0.0


class Gateway:
    """Serves requests (see the module doc); `views` are the market views it selects from
    (memjit.node.state.ViewCache: read from the sequencer, kept briefly), `deliver` hands a
    signed delivery to the sequencer and returns its settlement; `spool` is the directory of
    the deliveries not yet handed over."""

    def __init__(self, identity: Identity, store: Store, replay: ReplayCache,
                 views: ViewCache, deliver: Callable[[Frame], dict],
                 config: MarketConfig, job_timeout_s: float = 120.0,
                 spool: Path | None = None, retry_s: float = RETRY_FIRST_S) -> None:
        self.identity = identity
        self.store = store
        self.replay = replay
        self.views = views
        self.deliver = deliver
        self.config = config
        self.job_timeout_s = job_timeout_s
        self.spool = spool
        self.retry_s = retry_s
        self._closing = threading.Event()
        self._settling = ThreadPoolExecutor(1, thread_name_prefix="deliveries")
        self._settlements: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def resume(self) -> int:
        """Hand the spooled deliveries (left by a stopped gateway) to the sequencer again;
        how many."""
        pending = sorted(self.spool.glob(f"*{SPOOLED}")) if self.spool is not None else []
        for path in pending:
            self._hand_over(path.name.removesuffix(SPOOLED), path.read_bytes())
        return len(pending)

    def settlement(self, nonce: str) -> dict:
        """How the delivery of the request answered with `nonce` went: its status (pending,
        settled, refused), the settlement or the sequencer's error."""
        with self._lock:
            found = self._settlements.get(nonce)
        if found is None:
            raise Rejected(f"this gateway holds no delivery of request {nonce[:16]}")
        return dict(found)

    def wait_settlement(self, nonce: str, timeout_s: float = 120.0, step_s: float = 0.05
                        ) -> dict:
        """`settlement(nonce)` once it is no longer pending, or pending after `timeout_s`."""
        give_up = time.monotonic() + timeout_s
        while True:
            found = self.settlement(nonce)
            if found["status"] != "pending" or time.monotonic() > give_up:
                return found
            time.sleep(step_s)

    def close(self) -> None:
        """Finish handing over the deliveries under way (one waiting to be tried again stays
        spooled)."""
        self._closing.set()
        self._settling.shutdown(wait=True)

    def _hand_over(self, nonce: str, delivery: bytes) -> None:
        """Spool `delivery` (a frame: durable before the answer leaves) and deliver it in the
        background."""
        if self.spool is not None:
            self.spool.mkdir(parents=True, exist_ok=True)
            tmp = self.spool / f"{nonce}.tmp"
            tmp.write_bytes(delivery)
            tmp.replace(self.spool / f"{nonce}{SPOOLED}")
        self._record(nonce, {"status": "pending", "settlement": None, "error": None})
        self._settling.submit(self._settle, nonce, delivery)

    def _settle(self, nonce: str, delivery: bytes) -> None:
        """Hand one delivery over until the sequencer answers. While it cannot be reached or
        does not answer in time, try again after 0.5, 1, 2 ... RETRY_MAX_S seconds (deliveries
        queued behind wait: they reach the sequencer in order); a sequencer error (HTTP 5xx)
        is tried MAX_SEQUENCER_ERRORS times. A delivery given up on, or left when the
        gateway closes, stays spooled and pending (resume() hands it over at the next
        start). A delivery the sequencer had settled before its answer was lost is refused
        as a replay when handed over again: it counts once."""
        delay, errors = self.retry_s, 0
        while True:
            try:
                outcome = {"status": "settled", "error": None,
                           "settlement": self.deliver(unpack(delivery, "delivery"))}
                break
            except (Unreachable, NoAnswer) as exc:  # no answer: the sequencer is not at fault
                again, why = True, exc
            except InternalError as exc:
                errors += 1
                again, why = errors < MAX_SEQUENCER_ERRORS, exc
            except MemjitError as exc:  # the sequencer's answer: refused
                outcome = {"status": "refused", "settlement": None, "error": str(exc)}
                log(f"settlement of {nonce[:8]} refused: {exc}")
                self.views.invalidate()  # the market moved in a way the cached views missed
                break
            except Exception as exc:  # a background thread: log it, the spool keeps it
                again, why = False, exc
            log(f"settlement of {nonce[:8]} failed: {type(why).__name__}: {why}"
                + (f" (again in {delay:g} s)" if again else " (left spooled)"))
            self._record(nonce, {"status": "pending", "settlement": None, "error": str(why)})
            if not again or self._closing.wait(delay):
                return
            delay = min(2 * delay, RETRY_MAX_S)
        if self.spool is not None:
            (self.spool / f"{nonce}{SPOOLED}").unlink(missing_ok=True)
        self._record(nonce, outcome)

    def _record(self, nonce: str, outcome: dict) -> None:
        with self._lock:
            self._settlements[nonce] = outcome
            self._settlements.move_to_end(nonce)
            while len(self._settlements) > KEPT_SETTLEMENTS:
                self._settlements.popitem(last=False)

    def _pick(self, view: MarketView, top_k: int, requester: bytes
              ) -> tuple[list[Worker], int]:
        """The workers to ask on `view` (the pool's rules) and what they may cost."""
        picked = rank(view.workers, view.trials, top_k, self.config)
        return picked, sum(view.fees[w.id] for w in picked if w.owner != requester)

    def serve(self, message: object,
              on_delivery: Callable[[str, dict], None] | None = None) -> dict:
        """Serve one signed request; the best verified answer and every verdict (the
        delivery is settled in the background: `settlement(nonce)`).
        `on_delivery(worker id, {"claim": message} or {"fault": why})` sees each worker's
        answer as it arrives, before any is verified."""
        start = t = time.perf_counter()
        timings = Timings()
        request = open_envelope(message, "request")
        timings.sign_s += time.perf_counter() - t
        task_name, input_bytes, label, top_k = request_of(request)
        task = get_task(self.store, task_name)
        task.check_input(input_bytes)
        if label is not None and not 0 <= label < task.labels:
            raise BadInput(f"label must be in 0..{task.labels - 1}, got {label}")
        self.replay.admit(request)
        timings.admit_s, t = since(t)
        view = self.views.get(task.name, request.signer)
        picked, quote = self._pick(view, top_k, request.signer)
        if not picked or quote > view.funds:  # never refused on a cached view
            view = self.views.get(task.name, request.signer, fresh=True)
            picked, quote = self._pick(view, top_k, request.signer)
        if not picked:
            raise Rejected(f"no active worker serves task {task.name!r}")
        if quote > view.funds:
            raise Rejected(f"insufficient balance: {view.funds} SWT free, asking {len(picked)} "
                           f"worker(s) may cost {quote}")
        self.views.charge(task.name, request.signer, quote)
        nonce = secrets.token_bytes(NONCE_BYTES)
        deadline = int(time.time() + self.job_timeout_s)
        timings.view_s, t = since(t)
        with ThreadPoolExecutor(len(picked)) as pool:
            gathered = dict(zip((w.id for w in picked), pool.map(
                lambda w: _seen(w.id, send_job(self.identity, view.operators.get(w.id), w.id,
                                               task.name, input_bytes, nonce, deadline),
                                on_delivery), picked)))
        timings.jobs_s, t = since(t)
        entries = {wid: reply.entry for wid, reply in gathered.items()}
        attachments = {k: v for reply in gathered.values() for k, v in reply.attachments.items()}
        slowest = max(gathered.values(), key=lambda reply: reply.operator_s)
        timings.prove_s, timings.operator_s = slowest.prove_s, slowest.operator_s
        deliveries = {wid: claim_delivery(entry, wid, nonce, view.operators.get(wid),
                                          attachments)[0]
                      for wid, entry in entries.items()}
        timings.claims_s, t = since(t)
        timings.sign_s += timings.claims_s
        planned = Plan(task, input_bytes, label, request.signer, view.labeller_stake,
                       tuple(picked))
        judged = judge(self.store, planned, nonce, deliveries, self.config)
        timings.verify_s, t = since(t)
        delivery = seal(self.identity, "delivery",
                        {"request": message, "nonce": nonce.hex(),
                         "workers": [w.id for w in picked], "claims": entries}).to_json()
        timings.sign_s += time.perf_counter() - t
        self._hand_over(nonce.hex(), pack(delivery, [d.claim for d in deliveries.values()
                                                     if d.claim is not None]))
        timings.deliver_s, t = since(t)
        best = _best(picked, judged.checks, judged.scores)
        timings.total_s = time.perf_counter() - start
        log(f"request {nonce.hex()[:8]} task={task.name}: "
            + ", ".join(f"{w.id[:8]}={judged.checks[w.id].outcome}" for w in picked)
            + f"; answer {None if best is None else judged.checks[best].result}; "
            + " ".join(f"{k.removesuffix('_s')}={v:.3f}" for k, v in asdict(timings).items()))
        return {"nonce": nonce.hex(),
                "answer": None if best is None else judged.checks[best].result,
                "worker": best,
                "reference": {"answer": judged.reference.answer,
                              "basis": judged.reference.basis},
                "calls": [{"worker": w.id, "verdict": judged.checks[w.id].outcome,
                           "reason": judged.checks[w.id].reason,
                           "result": judged.checks[w.id].result,
                           "score": judged.scores.get(w.id)} for w in picked],
                "settlement": "pending",
                "timings": asdict(timings)}


def _seen(worker_id: str, reply: Reply, on_delivery: Callable[[str, dict], None] | None
          ) -> Reply:
    """Report a worker's delivery entry as it arrives; the operator's reply."""
    if on_delivery is not None:
        on_delivery(worker_id, reply.entry)
    return reply


def _best(picked: list[Worker], checks: dict, scores: dict) -> str | None:
    """The answer to return: the best this gateway verified (score, then usefulness, stake,
    id: the settlement's order)."""
    valid = [w for w in picked if checks[w.id].outcome == "valid"]
    if not valid:
        return None
    return max(valid, key=lambda w: (scores.get(w.id, 0), w.usefulness, w.stake, w.id)).id
