"""The utility oracle (the seed's UtilityOracle): verify each answer, decide what it is scored
against, score it, settle it.

Verification. For each worker asked, the oracle gets a delivery: a claim (statement + STARK
proof) or the fault that stopped the worker (out of fuel, deadline, memory cap, trap, no proof).
A claim counts only if it verifies under the worker's registered VK *and* states the task's
export, no arguments, this request's input, this request's nonce (so no claim answers two
requests) and a returned result.

The reference (what valid answers are scored against, `reference`):
- a label, if the requester has validator stake bonded (memjit.market.validators); its scores
  move usefulness at `formulas.label_rate` of that stake. A label that the unanimous answer of
  at least `contest_quorum` independent groups (none of them the labeller's) contradicts is
  *contested*: it is overruled by that answer and the labeller's validator stake is slashed
  `label_slash_ppm`. The bar is high on purpose: several models can err alike on an ambiguous
  input, and an honest label must not be slashed for it (the demo's image 22, an 8, is a 5 to
  three of its models);
- else (no label, or a requester without stake: it buys answers, not scores) the consensus
  of the valid answers, as Yuma consensus weighs validators: workers with the same owner or
  the same VK form one independent group; at least `quorum` groups must have answered, and the
  consensus is the answer backed by more than `kappa_ppm` of the answering workers' bonded
  stake *and* by at least two groups, so that no worker is ever scored against a consensus it
  makes alone. Without one, nothing is scored: no usefulness moves, no weight is earned.

Scores come from the task's scorer (a WASM module run in the sandbox). An invalid claim, a
fault or a missed deadline is slashed: `slash_ppm` of the worker's bonded and of its unbonding
stake (each rounded up); a worker left below the minimum stake turns inactive; its usefulness
decays as for a score of 0 at the full EMA rate. Usefulness is an integer EMA of the scores.
A scored call earns a weight on its period's emission (memjit.market.rewards); the arithmetic
is memjit.market.formulas.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from memjit.errors import BadInput
from memjit.market import bonds, formulas
from memjit.market.ledger import Ledger, Worker
from memjit.market.registry import RegistryConfig
from memjit.market.rewards import RewardConfig
from memjit.market.tasks import MAX_SCORE, SCORE_EXPORT, Task
from memjit.runtime.sandbox import run
from memjit.runtime.store import Store
from verifier.claims import decode_claim, verify_claim, vk_digest
from verifier.stark import Verdict


@dataclass(frozen=True)
class OracleConfig:
    """Oracle parameters (rates and fractions in parts per million): the stake burned per
    invalid claim or fault, the EMA rate of a consensus score, the consensus quorum (independent
    groups) and stake threshold, the validator stake at which a label moves usefulness at the
    full EMA rate, the unanimous independent groups that contest a label, and the validator
    stake burned for a contested label. kappa_ppm is at least half a million, so that at most
    one answer can be backed by more than it."""

    slash_ppm: int = 100_000
    ema_ppm: int = 200_000
    quorum: int = 3
    kappa_ppm: int = 500_000
    full_label_stake: int = 100_000
    contest_quorum: int = 5
    label_slash_ppm: int = 50_000


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
class Vote:
    """A valid answer as the consensus counts it: the worker's bonded stake, its independent
    group (one per owner and per program) and its owner."""

    answer: int
    stake: int
    group: int
    owner: bytes


@dataclass(frozen=True)
class Reference:
    """What a request's valid answers are scored against (None: nothing is scored), the EMA
    rate their scores move usefulness at, and why: "label", "consensus" or "contested" (a
    label overruled by a unanimous answer)."""

    answer: int | None
    rate: int
    basis: str | None


@dataclass(frozen=True)
class Settlement:
    """What one call changed: the stake burned and the call's weight on its period's emission."""

    slashed: int
    weight: int
    rate: int = 0  # the EMA rate (ppm) the call moved usefulness at (0: it did not)
    prior: int = 0  # the worker's usefulness before the call
    since: int = 0  # seconds since the worker's last use, as the weight read them


def verify_on_input(claim_bytes: bytes, vk: bytes, export: str, input_bytes: bytes,
                    nonce: bytes) -> Verdict:
    """Whether a claim proves that the program of `vk`, called at `export` with no arguments
    on `input_bytes`, returned, in answer to `nonce`; the proof binds input and nonce."""
    verdict = verify_claim(claim_bytes, vk, nonce=nonce)
    if not verdict.valid:
        return verdict
    st = decode_claim(claim_bytes).statement
    if st.export != export or st.args or st.input != bytes(input_bytes):
        return Verdict(False, f"claim is about {st.export}{st.args} on other input, "
                              f"not {export}() on this request's input")
    return verdict


def check(task: Task, worker: Worker, delivery: Delivery, input_bytes: bytes,
          nonce: bytes) -> Check:
    """Judge one delivery for `worker` on this request (never raises for a bad claim)."""
    if delivery.claim is None:
        return Check("fault", delivery.fault or "no claim delivered")
    if worker.vk is None:
        return Check("invalid", "worker has no verification key")
    verdict = verify_on_input(delivery.claim, worker.vk, task.export, input_bytes, nonce)
    if not verdict.valid:
        return Check("invalid", f"invalid claim: {verdict.reason}")
    st = decode_claim(delivery.claim).statement
    if st.result is None:
        return Check("fault", f"proven trap: {st.trap}")
    return Check("valid", result=st.signed_result, claim=delivery.claim)


def independent_groups(workers: Sequence[Worker]) -> dict[str, int]:
    """Each worker's independent group: workers sharing an owner or a program (VK) are one."""
    parent = list(range(len(workers)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[object, int] = {}
    for i, w in enumerate(workers):
        for key in (("owner", w.owner), ("vk", None if w.vk is None else vk_digest(w.vk))):
            if key[1] is None:
                continue
            if key in first:
                parent[root(i)] = root(first[key])
            else:
                first[key] = i
    return {w.id: root(i) for i, w in enumerate(workers)}


def consensus(votes: Sequence[Vote], config: OracleConfig) -> int | None:
    """The answer backed by more than kappa of the votes' stake and by two groups or more,
    when at least `quorum` independent groups voted; None otherwise."""
    if len({v.group for v in votes}) < config.quorum:
        return None
    total = sum(v.stake for v in votes)
    for answer in sorted({v.answer for v in votes}):
        backing = [v for v in votes if v.answer == answer]
        if sum(v.stake for v in backing) * formulas.PPM > config.kappa_ppm * total \
                and len({v.group for v in backing}) >= 2:
            return answer
    return None


def unanimous(votes: Sequence[Vote], quorum: int) -> int | None:
    """The one answer of votes from at least `quorum` independent groups that all agree."""
    answers = {v.answer for v in votes}
    if len(answers) != 1 or len({v.group for v in votes}) < quorum:
        return None
    return answers.pop()


def reference(label: int | None, labeller: bytes, labeller_stake: int, votes: Sequence[Vote],
              config: OracleConfig) -> Reference:
    """What the valid answers `votes` are scored against (see the module doc)."""
    rate = 0 if label is None else formulas.label_rate(config.ema_ppm, labeller_stake,
                                                       config.full_label_stake)
    if rate > 0:
        overruling = unanimous([v for v in votes if v.owner != labeller],
                               config.contest_quorum)
        if overruling is not None and overruling != label:
            return Reference(overruling, config.ema_ppm, "contested")
        return Reference(label, rate, "label")
    agreed = consensus(votes, config)
    if agreed is None:
        return Reference(None, 0, None)
    return Reference(agreed, config.ema_ppm, "consensus")


def score(store: Store, task: Task, predicted: int, label: int) -> int:
    """The task scorer's verdict on `predicted` against `label`, run in the sandbox."""
    (value,) = run(store.get(task.scorer_cid), SCORE_EXPORT, [predicted, label]).results
    if not 0 <= value <= MAX_SCORE:
        raise BadInput(f"scorer of task {task.name!r} returned {value}, outside 0..{MAX_SCORE}")
    return value


def settle(ledger: Ledger, db: sqlite3.Connection, worker: Worker, judged: Check,
           awarded: int | None, rate: int, *, own: bool, config: OracleConfig,
           registry: RegistryConfig, rewards: RewardConfig) -> Settlement:
    """Apply one judged call to the ledger inside the request's transaction `db`: slash a
    failure (bonded and unbonding stake alike), move usefulness by the score `awarded` at
    `rate` (None: the call is unscored, nothing moves) and weigh the call for its period's
    emission. A call by the worker's own owner (`own`) neither moves usefulness nor earns (no
    wash trading); slashing applies all the same."""
    now = ledger.clock()
    fields: dict[str, object] = {"last_used_at": now}
    slashed = earned = applied = since = 0
    if judged.outcome != "valid":
        burned = bonds.slash(ledger, db, bonds.WORKER, worker.id, config.slash_ppm)
        slashed = burned.burned
        if burned.stake < registry.min_stake:
            fields["status"] = "inactive"
        if not own:
            fields["usefulness"] = formulas.ema(worker.usefulness, 0, config.ema_ppm)
    elif awarded is not None and not own:
        usefulness = formulas.ema(worker.usefulness, awarded, rate)
        last_use = worker.last_used_at if worker.last_used_at is not None \
            else worker.registered_at
        since = max(0, int(now) - int(last_use))
        earned = formulas.weight(usefulness, rewards.base_reward, since, rate, config.ema_ppm,
                                 awarded)
        fields["usefulness"] = usefulness
        applied = rate
    ledger.update_worker(db, worker.id, **fields)
    return Settlement(slashed, earned, applied, worker.usefulness, since)
