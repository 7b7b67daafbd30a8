"""The utility oracle (the seed's UtilityOracle): verify each answer, score it, settle it.

For each worker asked, the oracle gets a delivery: a claim (statement + STARK proof) or the
fault that stopped the worker (out of fuel, deadline, memory cap, trap, no proof). A claim
counts only if it verifies under the worker's registered VK *and* states the task's export,
no arguments, this request's input and a returned result. A valid claim is scored by the
task's scorer (a WASM module run in the sandbox) against the reference label: the
requester's label if it gave one, else the consensus of the valid answers, each weighted by
its worker's usefulness + 1 (a Yuma-like plurality; ties go to the lowest answer).
An invalid claim, a fault or a missed deadline scores 0 and is slashed: `slash_ppm` of the
stake is burned (rounded up), and a worker left below the minimum stake turns inactive.
Usefulness is an integer exponential moving average of the scores (weight `ema_ppm`).
A valid, scored claim becomes a fact (memjit.rollup.batcher) carrying its pending reward.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from memjit.market.facts import claim_digests, record_fact
from memjit.errors import BadInput
from memjit.market.ledger import Ledger, Worker
from memjit.market.registry import RegistryConfig
from memjit.market.rewards import RewardConfig, reward
from memjit.runtime.sandbox import run
from memjit.runtime.store import Store
from memjit.market.tasks import MAX_SCORE, SCORE_EXPORT, Task
from verifier.claims import decode_claim, verify_claim
from verifier.stark import Verdict


@dataclass(frozen=True)
class OracleConfig:
    """Oracle parameters, in parts per million: the stake fraction burned per invalid claim or
    fault, and the weight of the newest score in the usefulness EMA."""

    slash_ppm: int = 100_000
    ema_ppm: int = 200_000


@dataclass(frozen=True)
class Delivery:
    """What a worker's operator handed in: claim bytes, or the fault that stopped it."""

    claim: bytes | None = None
    fault: str | None = None


@dataclass(frozen=True)
class Check:
    """The oracle's verdict on one delivery: "valid", "invalid" or "fault" (with why not)."""

    outcome: str
    reason: str = ""
    result: int | None = None  # the valid claim's result, as a signed i32
    claim: bytes | None = None  # the valid claim


@dataclass(frozen=True)
class Settlement:
    """What one call changed: the pending reward, the stake burned, the fact's hash."""

    reward: int
    slashed: int
    fact: bytes | None


def verify_on_input(claim_bytes: bytes, vk: bytes, export: str, input_bytes: bytes) -> Verdict:
    """Whether a claim proves that the program of `vk`, called at `export` with no arguments
    on `input_bytes`, returned; the proof binds the input as a public input."""
    verdict = verify_claim(claim_bytes, vk)
    if not verdict.valid:
        return verdict
    st = decode_claim(claim_bytes).statement
    if st.export != export or st.args or st.input != bytes(input_bytes):
        return Verdict(False, f"claim is about {st.export}{st.args} on other input, "
                              f"not {export}() on this request's input")
    return verdict


def check(task: Task, worker: Worker, delivery: Delivery, input_bytes: bytes) -> Check:
    """Judge one delivery for `worker` on this request (never raises for a bad claim)."""
    if delivery.claim is None:
        return Check("fault", delivery.fault or "no claim delivered")
    if worker.vk is None:
        return Check("invalid", "worker has no verification key")
    verdict = verify_on_input(delivery.claim, worker.vk, task.export, input_bytes)
    if not verdict.valid:
        return Check("invalid", f"invalid claim: {verdict.reason}")
    st = decode_claim(delivery.claim).statement
    if st.result is None:
        return Check("fault", f"proven trap: {st.trap}")
    return Check("valid", result=st.signed_result, claim=delivery.claim)


def consensus(answers: Sequence[tuple[int, int]]) -> int | None:
    """The reference label from (answer, usefulness) pairs: the answer with the most weight,
    each answer weighing its worker's usefulness + 1; ties go to the lowest answer."""
    tally: dict[int, int] = {}
    for answer, usefulness in answers:
        tally[answer] = tally.get(answer, 0) + usefulness + 1
    return max(sorted(tally), key=tally.__getitem__) if tally else None


def score(store: Store, task: Task, predicted: int, label: int) -> int:
    """The task scorer's verdict on `predicted` against `label`, run in the sandbox."""
    (value,) = run(store.get(task.scorer_cid), SCORE_EXPORT, [predicted, label]).results
    if not 0 <= value <= MAX_SCORE:
        raise BadInput(f"scorer of task {task.name!r} returned {value}, outside 0..{MAX_SCORE}")
    return value


def ema(usefulness: int, new_score: int, config: OracleConfig) -> int:
    """The usefulness after one more score (integer EMA, rounded down)."""
    return (config.ema_ppm * new_score + (MAX_SCORE - config.ema_ppm) * usefulness) // MAX_SCORE


def slash_amount(stake: int, config: OracleConfig) -> int:
    """The stake burned for one invalid claim or fault: `slash_ppm` of it, rounded up."""
    return -(-stake * config.slash_ppm // MAX_SCORE)


def settle(ledger: Ledger, db: sqlite3.Connection, worker: Worker, judged: Check,
           awarded: int, *, own: bool, claim_cid: str | None, config: OracleConfig,
           registry: RegistryConfig, rewards: RewardConfig) -> Settlement:
    """Apply one judged call to the ledger inside the request's transaction `db`: slash a
    failure, move usefulness by the score `awarded`, and record a valid claim as a fact that
    carries its pending reward. A call by the worker's own owner (`own`) neither moves
    usefulness nor earns (no wash trading); slashing applies all the same."""
    now = ledger.clock()
    fields: dict[str, object] = {"last_used_at": now}
    slashed = earned = 0
    fact = None
    if judged.outcome != "valid":
        slashed = slash_amount(worker.stake, config)
        stake = worker.stake - slashed
        fields.update(stake=stake, status=worker.status if stake >= registry.min_stake
                      else "inactive")
        ledger.add_stake_event(db, worker.id, "slash", slashed)
    if not own:
        usefulness = ema(worker.usefulness, awarded, config)
        fields["usefulness"] = usefulness
        if judged.claim is not None:
            last_use = worker.last_used_at if worker.last_used_at is not None \
                else worker.registered_at
            earned = reward(usefulness, rewards.base_reward, now - last_use)
            vk, statement, proof = claim_digests(judged.claim)
            fact = record_fact(db, worker_id=worker.id, vk_digest=vk, statement_digest=statement,
                               proof_digest=proof, score=awarded, reward=earned,
                               claim_cid=claim_cid, now=now)
            ledger.credit(db, worker.owner, pending=earned)
    ledger.update_worker(db, worker.id, **fields)
    return Settlement(earned, slashed, fact)
