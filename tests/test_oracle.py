"""The utility oracle: real claims verified against the worker's VK, the request's input and
its nonce; a false output claim and a claim for another module caught; every fault kind turned
into a slash; the reference a request is scored against (a staked label, or the stake-weighted
consensus of independent answers, or nothing); usefulness as an EMA and the call's weight on
its period's emission; no wash trading."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from memjit.market.formulas import DAY_S
from memjit.market.ledger import Ledger, Worker
from memjit.market.oracle import (Check, Delivery, OracleConfig, Reference, Vote, check,
                                  consensus, independent_groups, reference, score, settle,
                                  verify_on_input)
from memjit.market.pool import deliver, prove_on_input
from memjit.market.registry import RegistryConfig, worker_id
from memjit.market.rewards import RewardConfig
from memjit.runtime.claims import vk_of
from memjit.runtime.sandbox import Limits
from memjit.runtime.store import Store, cid_of
from memjit.market.tasks import MAX_SCORE, Task, get_task, read_test_set
from memjit.workers import WORKERS_DIR, digits_liar
from memjit.workers.train_digits import forward, read_header
from verifier.claims import decode_claim

IMAGES, LABELS = read_test_set()
IMAGE, OTHER = IMAGES[0].tobytes(), IMAGES[1].tobytes()
SMALL = (WORKERS_DIR / "digits_small.wasm").read_bytes()
CONSTANT = (WORKERS_DIR / "digits_constant.wasm").read_bytes()
LOOP = (WORKERS_DIR / "digits_loop.wasm").read_bytes()
LIAR = digits_liar.MODULE.read_bytes()
TRAPPING = wasmtime.wat2wasm('(module (memory (export "memory") 1)'
                             ' (global (export "memjit_input") i32 (i32.const 1024))'
                             ' (func (export "classify") (result i32) unreachable))')
OWNER, REQUESTER = b"\x01" * 48, b"\x02" * 48
LABELLER = b"\x09" * 48
NONCE, OTHER_NONCE = b"\x05" * 32, b"\x06" * 32
LIMITS = Limits(fuel=200_000, timeout_s=2.0, memory_mb=16)
CONFIG = OracleConfig(slash_ppm=100_000, ema_ppm=200_000, quorum=3, kappa_ppm=500_000,
                      full_label_stake=100_000, contest_quorum=3)
REGISTRY, REWARDS = RegistryConfig(min_stake=950), RewardConfig(base_reward=1_000)


def _worker(module: bytes, **fields: object) -> Worker:
    values: dict[str, object] = dict(
        id=worker_id(OWNER, cid_of(module)), owner=OWNER, cid=cid_of(module), task="digits",
        vk=vk_of(module), stake=1_000, usefulness=500_000, registered_at=0.0, last_used_at=None,
        unbonding_amount=0, unbonding_at=None, status="active")
    values.update(fields)
    return Worker(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Task]:
    store = Store(tmp_path_factory.mktemp("home"))
    return store, get_task(store, "digits")


@pytest.fixture(scope="module")
def small_claim() -> bytes:
    return prove_on_input(SMALL, "classify", IMAGE, NONCE, LIMITS)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """A ledger at day 2 holding the small, loop and liar workers (registered at day 0)."""
    with Ledger(tmp_path, clock=lambda: 2.0 * DAY_S) as led:
        with led.transaction() as db:
            led.add_owner(db, OWNER)
            led.add_owner(db, REQUESTER)
            for module in (SMALL, LOOP, LIAR):
                led.add_worker(db, _worker(module))
        yield led


def _votes(*votes: tuple[int, int, int]) -> list[Vote]:
    """Votes from (answer, stake, group) triples, each group its own owner."""
    return [Vote(answer, stake, group, bytes([group]) * 48) for answer, stake, group in votes]


def test_the_consensus_needs_a_quorum_a_stake_majority_and_two_groups() -> None:
    assert consensus(_votes((4, 1_000, 1), (4, 1_000, 2), (1, 1_000, 3)), CONFIG) == 4
    assert consensus(_votes((4, 1_000, 1), (4, 1_000, 2)), CONFIG) is None  # two groups < 3
    # two cheap Sybils (min stake) against one honest worker: "1" has 200 of 1,200 of the
    # stake, and "4" is backed by one group only: no consensus, nobody is scored
    assert consensus(_votes((4, 1_000, 1), (1, 100, 2), (1, 100, 3)), CONFIG) is None
    # ... and with more stake than the honest worker they win: stake is what a Sybil must buy
    assert consensus(_votes((4, 1_000, 1), (1, 1_000, 2), (1, 1_000, 3)), CONFIG) == 1
    # a rich worker alone never makes the consensus others are scored against
    assert consensus(_votes((7, 10**6, 1), (4, 1_000, 2), (4, 1_000, 3)), CONFIG) is None
    # exactly half of the stake is not more than half
    assert consensus(_votes((4, 500, 1), (4, 500, 2), (1, 1_000, 3)), CONFIG) is None
    # the same group counts once: two workers of one owner do not make two groups
    assert consensus(_votes((4, 1_000, 1), (4, 1_000, 1), (1, 10, 2)), CONFIG) is None


def test_workers_sharing_an_owner_or_a_program_are_one_group() -> None:
    a, b, c, d = (_worker(m, owner=o) for m, o in ((SMALL, OWNER), (LOOP, OWNER),
                                                   (LIAR, REQUESTER), (CONSTANT, b"\x03" * 48)))
    copy = _worker(SMALL, id="cd" * 32, owner=b"\x04" * 48)  # a legacy copy: same VK
    groups = independent_groups([a, b, c, d, copy])
    assert groups[a.id] == groups[b.id] == groups[copy.id]  # owner, then program
    assert len({groups[a.id], groups[c.id], groups[d.id]}) == 3


def test_the_reference_a_label_a_consensus_or_nothing() -> None:
    honest = _votes((4, 1_000, 1), (4, 1_000, 2), (4, 1_000, 3))
    mixed = _votes((4, 1_000, 1), (1, 1_000, 2), (7, 1_000, 3))
    # a requester without validator stake buys answers, not scores: its label counts nothing
    assert reference(1, LABELLER, 0, honest, CONFIG) == Reference(4, 200_000, "consensus")
    assert reference(1, LABELLER, 0, mixed, CONFIG) == Reference(None, 0, None)
    assert reference(1, LABELLER, 499, mixed, CONFIG) == Reference(None, 0, None)  # rate 0
    # a staked label moves usefulness in proportion to the stake behind it
    assert reference(1, LABELLER, 9_000, mixed, CONFIG) == Reference(1, 18_000, "label")
    assert reference(4, LABELLER, 10**6, honest, CONFIG) == Reference(4, 200_000, "label")
    # a label a unanimous quorum of independent answers contradicts is overruled (and slashed)
    assert reference(1, LABELLER, 10**6, honest, CONFIG) == Reference(4, 200_000, "contested")
    # (by default it takes five unanimous groups: three models can err alike on one input)
    assert reference(1, LABELLER, 10**6, honest, OracleConfig()) == Reference(1, 200_000, "label")
    # ... but the labeller's own workers are no evidence against it
    own = [Vote(4, 1_000, 1, LABELLER), *honest[1:]]
    assert reference(1, LABELLER, 10**6, own, CONFIG) == Reference(1, 200_000, "label")


def test_the_scorer_runs_in_the_sandbox(market: tuple[Store, Task]) -> None:
    store, task = market
    assert score(store, task, 7, 7) == MAX_SCORE
    assert score(store, task, 7, 1) == 0


def test_an_honest_claim_is_valid_for_its_input_only(market: tuple[Store, Task],
                                                     small_claim: bytes) -> None:
    _, task = market
    judged = check(task, _worker(SMALL), Delivery(claim=small_claim), IMAGE, NONCE)
    expected = forward(read_header(WORKERS_DIR / "digits_small_weights.h"), IMAGES[:1])[0]
    assert (judged.outcome, judged.result, judged.claim) == ("valid", expected, small_claim)
    assert not verify_on_input(small_claim, vk_of(SMALL), "classify", OTHER, NONCE).valid
    assert not verify_on_input(small_claim, vk_of(SMALL), "score", IMAGE, NONCE).valid
    elsewhere = check(task, _worker(SMALL), Delivery(claim=small_claim), OTHER, NONCE)
    assert elsewhere.outcome == "invalid" and "other input" in elsewhere.reason
    # issue 22, attack 6: re-delivered for another request on the same input, it is refused
    replayed = check(task, _worker(SMALL), Delivery(claim=small_claim), IMAGE, OTHER_NONCE)
    assert replayed.outcome == "invalid" and "answers another request" in replayed.reason


def test_a_false_output_claim_is_caught(market: tuple[Store, Task]) -> None:
    _, task = market
    liar = _worker(LIAR)
    honest = check(task, liar, Delivery(
        claim=prove_on_input(LIAR, "classify", IMAGE, NONCE, LIMITS)), IMAGE, NONCE)
    assert (honest.outcome, honest.result) == ("valid", -1)  # the worker itself answers -1
    forged = digits_liar.operate(LIAR, "classify", IMAGE, NONCE, LIMITS)
    assert decode_claim(forged).statement.result in range(10)  # ... its operator claims more
    judged = check(task, liar, Delivery(claim=forged), IMAGE, NONCE)
    assert judged.outcome == "invalid" and judged.reason.startswith("invalid claim")


def test_a_claim_for_another_module_is_caught(market: tuple[Store, Task],
                                              small_claim: bytes) -> None:
    _, task = market
    judged = check(task, _worker(LIAR), Delivery(claim=small_claim), IMAGE, NONCE)
    assert judged.outcome == "invalid" and "another program" in judged.reason
    garbage = check(task, _worker(LIAR), Delivery(claim=b"MJCLAIM\x01junk"), IMAGE, NONCE)
    assert garbage.outcome == "invalid"


@pytest.mark.parametrize("module, limits, kind", [
    (LOOP, LIMITS, "OutOfFuel"),
    (LOOP, Limits(fuel=(1 << 63) - 1, timeout_s=0.2), "DeadlineExceeded"),
    (SMALL, Limits(memory_mb=0), "MemoryCapExceeded"),
    (TRAPPING, LIMITS, "Trap"),
])
def test_every_fault_kind_is_a_fault_delivery(market: tuple[Store, Task], module: bytes,
                                              limits: Limits, kind: str) -> None:
    _, task = market
    delivery = deliver(prove_on_input, module, "classify", IMAGE, NONCE, limits)
    assert delivery.claim is None and delivery.fault.startswith(f"{kind}: ")
    judged = check(task, _worker(module), delivery, IMAGE, NONCE)
    assert (judged.outcome, judged.reason) == ("fault", delivery.fault)


@pytest.mark.parametrize("judged", [Check("fault", "OutOfFuel: out of fuel"),
                                    Check("invalid", "invalid claim: constraints")])
def test_failures_are_slashed_and_decay_usefulness(ledger: Ledger, judged: Check) -> None:
    worker = ledger.worker(_worker(LOOP).id)
    with ledger.transaction() as db:
        done = settle(ledger, db, worker, judged, None, 0, own=False, config=CONFIG,
                      registry=REGISTRY, rewards=REWARDS)
    assert (done.slashed, done.weight) == (100, 0)
    after = ledger.worker(worker.id)
    assert (after.stake, after.usefulness, after.status) == (900, 400_000, "inactive")  # < 950
    assert after.last_used_at == 2.0 * DAY_S
    assert [(e.kind, e.amount) for e in ledger.stake_events(worker.id)] == [("slash", 100)]
    assert ledger.balance(OWNER) == (0, 0)


def test_a_scored_call_moves_usefulness_and_weighs_on_its_period(ledger: Ledger,
                                                                small_claim: bytes,
                                                                market: tuple[Store, Task]) -> None:
    _, task = market
    worker = ledger.worker(_worker(SMALL).id)
    judged = check(task, worker, Delivery(claim=small_claim), IMAGE, NONCE)
    with ledger.transaction() as db:
        done = settle(ledger, db, worker, judged, MAX_SCORE, 200_000, own=False, config=CONFIG,
                      registry=REGISTRY, rewards=REWARDS)
        assert db.execute("SELECT count(*) FROM batch_facts").fetchone()[0] == 0  # at close
    # usefulness 500_000 -> 600_000; never used, registered 2 days ago: 600 / 3 = 200
    assert ledger.worker(worker.id).usefulness == 600_000
    assert (done.weight, done.slashed) == (200, 0)
    with ledger.transaction() as db:  # a label backed by a tenth of the full stake: a tenth
        tenth = settle(ledger, db, ledger.worker(worker.id), judged, MAX_SCORE, 20_000,
                       own=False, config=CONFIG, registry=REGISTRY, rewards=REWARDS)
        wrong = settle(ledger, db, ledger.worker(worker.id), judged, 0, 200_000, own=False,
                       config=CONFIG, registry=REGISTRY, rewards=REWARDS)
    # usefulness 608,000, used just now: 608 SWT of seed formula, a tenth of it for a tenth
    assert (tenth.weight, wrong.weight) == (60, 0)
    assert ledger.worker(worker.id).usefulness == 486_400  # 608,000 then a wrong answer
    assert ledger.balance(OWNER) == (0, 0)


@pytest.mark.parametrize("awarded, own", [(None, False), (MAX_SCORE, True)])
def test_unscored_calls_and_own_workers_move_nothing(ledger: Ledger, small_claim: bytes,
                                                    market: tuple[Store, Task],
                                                    awarded: int | None, own: bool) -> None:
    _, task = market
    worker = ledger.worker(_worker(SMALL).id)
    judged = check(task, worker, Delivery(claim=small_claim), IMAGE, NONCE)
    with ledger.transaction() as db:
        done = settle(ledger, db, worker, judged, awarded, 200_000, own=own, config=CONFIG,
                      registry=REGISTRY, rewards=REWARDS)
    assert (done.weight, done.slashed) == (0, 0)
    assert ledger.worker(worker.id).usefulness == 500_000
