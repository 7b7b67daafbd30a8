"""The Darwinian pool (the seed's): send a request to the best workers of its task, have them
answer and prove in parallel processes, let the oracle judge, settle, return the best answer.

Selection: of the task's active workers, up to `explore` of the k places go to workers still
in their immunity period (fewest calls first, then the earliest registered), so that every
newcomer gets its trials; the other places go to the rest by usefulness, then stake, then
registration order. When either group runs short, the other fills the k places.

Answering: every request draws a fresh 32-byte nonce, and each selected worker's operator
proves its answer *to that nonce* (it is part of the proven statement), so no claim can be
delivered for another request. Operators run in a process of a spawn pool (one numba thread
per process, as the processes share the cores), or in this process when one worker answers.
The honest operator runs the worker under the task's sandbox limits (fuel, deadline, memory
cap) and proves the call on the input (prove_on_input); a fault becomes a delivery that the
oracle slashes. This single node plays every operator itself, honestly unless the caller hands
in another operator for a worker (the demo and `memjit request` hand in the shipped liar's,
memjit.workers.digits_liar, which lies about its output so that the oracle is exercised for
real).

Judging: the oracle verifies every claim, decides the reference (a staked validator's label,
or the stake-weighted consensus of independent answers, or nothing: memjit.market.oracle) and
scores the valid answers against it.

The stages are separate functions, so that the in-process path (`request`: this node plays
every party) and the network path (memjit.node: a gateway selects and gathers the claims from
the operators' nodes, the sequencer judges again and settles) run one implementation:
`plan` (select the workers, check the requester can pay), `answer` (prove), `judge` (verify,
reference, scores) and `settle`.

Settlement is one ledger transaction, after every answer is judged: the requester's faucet
grant on first use, fees, slashes (of a contested label's validator too), usefulness, the calls'
weights on their emission period, the request (with its nonce) and its calls. A request killed
half-way therefore leaves the ledger exactly as it was (claim blocks already put in the content
store are content-addressed and harmless). Rewards are assigned when the period closes
(memjit.market.epoch), which the next request's first transaction does.
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context

import blake3

from circuits.wasm_vm.statement import NONCE_BYTES
from memjit.errors import BadInput, MemjitError, Rejected
from memjit.market import bonds, oracle, validators
from memjit.market.epoch import tick
from memjit.market.facts import claim_digests
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger, Worker
from memjit.market.oracle import Check, Delivery, OracleConfig, Reference, Vote
from memjit.market.registry import RegistryConfig, trials
from memjit.market.rewards import (RewardConfig, faucet, fee, granted, open_period, pay,
                                   recent_calls)
from memjit.market.tasks import Task, get_task
from memjit.runtime.claims import prove_claim
from memjit.runtime.sandbox import Limits, run
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR

Operator = Callable[[bytes, str, bytes, bytes, Limits], bytes]
"""(module, export, input, nonce, limits) -> claim bytes; raises a MemjitError on a fault."""


@dataclass(frozen=True)
class MarketConfig:
    """All market parameters: registry, oracle, rewards, and the exploration places per request."""

    registry: RegistryConfig = RegistryConfig()
    oracle: OracleConfig = OracleConfig()
    rewards: RewardConfig = RewardConfig()
    explore: int = 1


@dataclass(frozen=True)
class Call:
    """One worker's part in a request, as settled ("scored", "unscored" when the request had
    no reference, "invalid" or "fault"); its reward comes when its period closes, as a share of
    the emission by `weight`."""

    worker: str
    outcome: str
    reason: str
    result: int | None
    score: int
    fee: int
    weight: int
    slashed: int
    claim_cid: str | None


@dataclass(frozen=True)
class RequestResult:
    """A settled request: its ledger number, the nonce its claims answer, what it was scored
    against (the answer, the EMA rate, the basis: oracle.Reference), every call and the best
    verified one (None if no answer verified)."""

    seq: int
    nonce: bytes
    reference: Reference
    calls: tuple[Call, ...]
    best: Call | None


def prove_on_input(module: bytes, export: str, input_bytes: bytes, nonce: bytes,
                   limits: Limits) -> bytes:
    """The honest operator: run `export()` on the input under `limits` (a WorkerFault if the
    worker faults), then prove that call in answer to `nonce`; returns the claim's bytes."""
    run(module, export, (), limits, input_bytes=input_bytes)
    return prove_claim(module, export, (), input_bytes=input_bytes, nonce=nonce,
                       limits=limits).encode()


def deliver(operator: Operator, module: bytes, export: str, input_bytes: bytes, nonce: bytes,
            limits: Limits) -> Delivery:
    """Run one operator (in a pool process): its claim, or the fault that stopped it."""
    try:
        return Delivery(claim=operator(module, export, input_bytes, nonce, limits))
    except MemjitError as exc:
        return Delivery(fault=f"{type(exc).__name__}: {exc}")


def _one_thread() -> None:
    """Pool process initializer: one numba thread per process (the processes share the cores;
    and a proof of a few thousand rows runs 1.5-5x slower on two OpenMP threads than on one
    on this loaded 2-core machine: the threads spin waiting for each other)."""
    import numba

    numba.set_num_threads(1)


def _warm_process() -> None:
    """Initializer of a long-lived pool's processes: one numba thread, then one tiny proof
    (fib.wasm), so that the prover's kernels are loaded before the first job."""
    _one_thread()
    prove_claim((WORKERS_DIR / "fib.wasm").read_bytes(), "fib", (3,))


def prover_pool(processes: int | None = None, warm: bool = False) -> ProcessPoolExecutor:
    """A pool of spawned processes to answer requests (one per core by default); reuse it
    across requests to pay the process start-up once (`warm`: each process proves once as it
    starts, see warm_pool)."""
    return ProcessPoolExecutor(processes or os.cpu_count() or 1, mp_context=get_context("spawn"),
                               initializer=_warm_process if warm else _one_thread)


def warm_pool(pool: ProcessPoolExecutor, processes: int) -> None:
    """Start all `processes` of `pool` now (a pool starts its processes on demand, and a
    spawned process imports the prover and numba, then loads its kernels on its first proof:
    seconds) and wait until they take jobs."""
    for future in [pool.submit(os.getpid) for _ in range(processes)]:
        future.result()


def rank(active: Sequence[Worker], calls: Mapping[str, int], top_k: int,
         config: MarketConfig) -> list[Worker]:
    """The workers to ask of `active` (the task's active workers, with the calls each has had),
    exploration first (see the module doc); pure, so that a gateway ranks its replica of the
    market state exactly as the ledger's own node does."""
    immune = sorted((w for w in active if calls[w.id] < config.registry.immunity_trials),
                    key=lambda w: (calls[w.id], w.registered_at, w.id))
    proven = sorted((w for w in active if calls[w.id] >= config.registry.immunity_trials),
                    key=lambda w: (-w.usefulness, -w.stake, w.registered_at, w.id))
    explore = min(len(immune), top_k, max(config.explore, top_k - len(proven)))
    return immune[:explore] + proven[:top_k - explore]


def select(ledger: Ledger, db: sqlite3.Connection, task: str, top_k: int,
           config: MarketConfig) -> list[Worker]:
    """The workers to ask, exploration first (see the module doc)."""
    active = [w for w in ledger.workers(task) if w.status == "active"]
    return rank(active, {w.id: trials(db, w.id) for w in active}, top_k, config)


def answer(store: Store, task: Task, picked: list[Worker], input_bytes: bytes, nonce: bytes,
           executor: Executor | None = None, operators: Mapping[str, Operator] | None = None,
           on_delivery: Callable[[Worker, Delivery], None] | None = None
           ) -> dict[str, Delivery]:
    """The prove stage: every picked worker's delivery, its operator (the honest one unless
    `operators` names another for its CID) run in a pool process; without an `executor`, one
    worker is answered in this process (a pool would start a process that imports the prover
    and loads numba's kernels again: seconds, for one job).

    The pool's processes start with SIGINT blocked (a spawned process inherits the signal
    mask, as Python's own resource tracker is started): a Ctrl-C at the terminal, which
    reaches the whole process group, interrupts this process alone, and a pool this call
    made is then stopped at once instead of finishing its proofs."""
    if executor is None and len(picked) == 1:
        (worker,) = picked
        delivery = deliver((operators or {}).get(worker.cid, prove_on_input),
                           store.get(worker.cid), task.export, input_bytes, nonce, task.limits)
        if on_delivery is not None:
            on_delivery(worker, delivery)
        return {worker.id: delivery}
    pool = executor or prover_pool(min(len(picked), os.cpu_count() or 1))
    try:
        modules = {w.id: store.get(w.cid) for w in picked}
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:  # submit() spawns the processes
            futures = {pool.submit(deliver, (operators or {}).get(w.cid, prove_on_input),
                                   modules[w.id],
                                   task.export, input_bytes, nonce, task.limits): w
                       for w in picked}
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        deliveries = {}
        for future in as_completed(futures):
            worker = futures[future]
            deliveries[worker.id] = future.result()
            if on_delivery is not None:
                on_delivery(worker, deliveries[worker.id])
        return deliveries
    except BaseException:
        if executor is None:
            stop_pool(pool)
        raise
    finally:
        if executor is None:
            pool.shutdown(cancel_futures=True)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Terminate a pool's processes now (SIGTERM), not after their running proofs."""
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    processes = list((pool._processes or {}).values())  # the only handle before 3.14
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()
    # The pool's manager thread sees its processes gone and ends; join it here, or it meets
    # closed pipes at interpreter exit and prints "Exception ignored ... Bad file descriptor".
    pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class Plan:
    """A request ready to be answered (the select stage): its task, input and label, the
    requester and its validator stake, and the workers to ask."""

    task: Task
    input_bytes: bytes
    label: int | None
    requester: bytes
    labeller_stake: int
    picked: tuple[Worker, ...]


@dataclass(frozen=True)
class Judgement:
    """The judge stage's verdicts: each worker's check, the reference, the awarded scores, and
    every delivered claim (valid or not: the evidence of a slash is kept)."""

    checks: Mapping[str, Check]
    reference: Reference
    scores: Mapping[str, int]
    claims: Mapping[str, bytes]


def plan(ledger: Ledger, store: Store, requester: bytes, task_name: str, input_bytes: bytes, *,
         label: int | None = None, top_k: int = 5, config: MarketConfig = MarketConfig(),
         workers: Sequence[str] | None = None) -> Plan:
    """The select stage: check the request, pick the workers (`workers`: the ids a gateway
    picked, each checked to be an active worker of the task; else by the selection rules) and
    check that the requester can pay them.

    BadInput for a malformed request, Rejected when no worker serves the task or the requester
    cannot pay."""
    task = get_task(store, task_name)
    input_bytes = bytes(input_bytes)
    task.check_input(input_bytes)
    if label is not None and not 0 <= label < task.labels:
        raise BadInput(f"label must be in 0..{task.labels - 1}, got {label}")
    if top_k < 1:
        raise BadInput(f"top-k must be at least 1, got {top_k}")
    with ledger.transaction() as db:  # time passes; then a consistent read: whom, at what price
        tick(ledger, db, config.rewards)
        picked = select(ledger, db, task.name, top_k, config) if workers is None \
            else _named(ledger, task, workers, top_k)
        now = ledger.clock()
        quote = sum(fee(recent_calls(db, w.id, now, config.rewards), config.rewards)
                    for w in picked if w.owner != requester)
        funds = ledger.balance(requester)[0] + (0 if granted(db, requester)
                                                else config.rewards.faucet)
        stake = validators.bonded(ledger, requester)
    if not picked:
        raise Rejected(f"no active worker serves task {task.name!r}")
    if quote > funds:
        raise Rejected(f"insufficient balance: {funds} SWT free, asking {len(picked)} "
                       f"worker(s) may cost {quote}")
    return Plan(task, input_bytes, label, requester, stake, tuple(picked))


def _named(ledger: Ledger, task: Task, ids: Sequence[str], top_k: int) -> list[Worker]:
    """The workers a gateway picked: distinct active workers of the task, at most top_k."""
    if len(set(ids)) != len(ids) or len(ids) > top_k:
        raise Rejected(f"{len(ids)} worker(s) named for a request of top {top_k}, or a repeat")
    picked = []
    for wid in ids:
        try:
            worker = ledger.worker(wid)
        except BadInput:
            raise Rejected(f"no worker {wid}") from None
        if worker.task != task.name or worker.status != "active":
            raise Rejected(f"worker {wid[:16]} is not an active worker of task {task.name!r}")
        picked.append(worker)
    return picked


def judge(store: Store, plan: Plan, nonce: bytes,
          deliveries: Mapping[str, Delivery], config: MarketConfig = MarketConfig()
          ) -> Judgement:
    """The judge stage: verify every delivery (memjit.market.oracle.check), decide the
    reference and score the valid answers against it."""
    task, picked = plan.task, plan.picked
    checks = {w.id: oracle.check(task, w, deliveries.get(w.id, Delivery()), plan.input_bytes,
                                 nonce) for w in picked}
    valid = [w for w in picked if checks[w.id].outcome == "valid"]
    groups = oracle.independent_groups(valid)
    votes = [Vote(checks[w.id].result, w.stake, groups[w.id], w.owner) for w in valid]
    ref = oracle.reference(plan.label, plan.requester, plan.labeller_stake, votes, config.oracle)
    scores = {} if ref.answer is None else {
        w.id: oracle.score(store, task, checks[w.id].result, ref.answer) for w in valid}
    claims = {w.id: deliveries[w.id].claim for w in picked
              if w.id in deliveries and deliveries[w.id].claim is not None}
    return Judgement(checks, ref, scores, claims)


def settle(ledger: Ledger, store: Store, plan: Plan, nonce: bytes, judged: Judgement,
           config: MarketConfig = MarketConfig()) -> RequestResult:
    """The settle stage, one ledger transaction: the requester's faucet grant on first use,
    fees, slashes, usefulness, weights, the request (with its nonce: Rejected if a request
    with this nonce was settled already) and its calls."""
    me, ref = plan.requester, judged.reference
    cids = {wid: store.put(claim) for wid, claim in judged.claims.items()}
    try:
        with ledger.transaction() as db:
            faucet(ledger, db, me, config.rewards.faucet)
            seq = db.execute("INSERT INTO requests (requester, task, input, label, "
                             "scored_against, at, nonce, basis) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (me, plan.task.name, blake3.blake3(plan.input_bytes).digest(),
                              plan.label, ref.answer, ledger.clock(), nonce, ref.basis)).lastrowid
            if ref.basis == "contested":
                bonds.slash(ledger, db, bonds.VALIDATOR, me, config.oracle.label_slash_ppm)
            calls = [_settle(ledger, db, seq, ledger.worker(w.id), judged.checks[w.id],
                             judged.scores.get(w.id), ref.rate, cids.get(w.id), me, config)
                     for w in plan.picked]
            before = {w.id: (w.usefulness, w.stake) for w in plan.picked}  # ties: more useful
            best = max((c for c in calls if c.outcome in ("scored", "unscored")), default=None,
                       key=lambda c: (c.score, before[c.worker], c.worker))
            if best is not None:
                db.execute("UPDATE requests SET worker = ?, result = ? WHERE seq = ?",
                           (best.worker, best.result, seq))
    except sqlite3.IntegrityError as exc:
        if "nonce" not in str(exc):
            raise
        raise Rejected(f"a request with nonce {nonce.hex()[:16]} was settled already") from None
    return RequestResult(seq, nonce, ref, tuple(calls), best)


def request(ledger: Ledger, store: Store, requester: Identity, task_name: str,
            input_bytes: bytes, *, label: int | None = None, top_k: int = 5,
            config: MarketConfig = MarketConfig(), executor: Executor | None = None,
            operators: Mapping[str, Operator] | None = None,
            on_delivery: Callable[[Worker, Delivery], None] | None = None) -> RequestResult:
    """Serve one request of `requester` on `input_bytes` and settle it, this node playing every
    operator: the stages plan, answer, judge and settle in a row (a network node runs the same
    stages on several nodes: memjit.node). `on_delivery` sees each answer as it arrives. A
    `label` scores the answers only if the requester has validator stake
    (memjit.market.validators); otherwise they are scored against their consensus, if there is
    one. `operators` maps worker CIDs to the operators that answer for them instead of the
    honest one (the demo's and the tests' dishonest actors, such as
    memjit.workers.digits_liar).

    BadInput for a malformed request, Rejected when no worker serves the task or the
    requester cannot pay; otherwise the request is settled, even if no answer verified
    (then `best` is None)."""
    planned = plan(ledger, store, requester.public_key, task_name, input_bytes, label=label,
                   top_k=top_k, config=config)
    nonce = secrets.token_bytes(NONCE_BYTES)
    deliveries = answer(store, planned.task, list(planned.picked), planned.input_bytes, nonce,
                        executor, operators, on_delivery)
    return settle(ledger, store, planned, nonce, judge(store, planned, nonce, deliveries, config),
                  config)


def _settle(ledger: Ledger, db: sqlite3.Connection, seq: int, worker: Worker, judged: Check,
            awarded: int | None, rate: int, claim_cid: str | None, requester: bytes,
            config: MarketConfig) -> Call:
    """Settle one call inside the request's transaction: fee, oracle settlement, call row (with
    its claim's digests, so that a claim is settled once, and its emission period)."""
    own = worker.owner == requester
    price = 0
    if judged.outcome == "valid" and not own:
        price = fee(recent_calls(db, worker.id, ledger.clock(), config.rewards), config.rewards)
        pay(ledger, db, requester, worker.owner, price)
    done = oracle.settle(ledger, db, worker, judged, awarded, rate, own=own,
                         config=config.oracle, registry=config.registry, rewards=config.rewards)
    outcome = judged.outcome if judged.outcome != "valid" else \
        "unscored" if awarded is None else "scored"
    statement = proof = period = None
    if judged.claim is not None:
        _, statement, proof = claim_digests(judged.claim)
    if outcome == "scored":
        period = open_period(db, ledger.clock(), config.rewards)
    db.execute("INSERT INTO calls (request, worker, outcome, result, score, fee, reward, slashed, "
               "claim, reason, at, weight, period, statement, proof, rate, prior, since) "
               "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (seq, worker.id, outcome, judged.result, awarded or 0, price, done.slashed,
                claim_cid, judged.reason, ledger.clock(), done.weight, period, statement, proof,
                done.rate, done.prior, done.since))
    return Call(worker.id, outcome, judged.reason, judged.result, awarded or 0, price,
                done.weight, done.slashed, claim_cid)
