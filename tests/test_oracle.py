"""The utility oracle: real claims verified against the worker's VK and the request's input, a
false output claim and a claim for another module caught, every fault kind turned into a
slash, usefulness as an EMA, facts recorded with their pending rewards, no wash trading."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import wasmtime

from memjit.runtime.claims import vk_of
from memjit.market.ledger import Ledger, Worker
from memjit.market.oracle import (Check, Delivery, OracleConfig, check, consensus, ema, score, settle,
                           slash_amount, verify_on_input)
from memjit.market.pool import deliver, prove_on_input
from memjit.market.registry import RegistryConfig, worker_id
from memjit.market.rewards import DAY_S, RewardConfig, reward
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
LIMITS = Limits(fuel=200_000, timeout_s=2.0, memory_mb=16)
CONFIG = OracleConfig(slash_ppm=100_000, ema_ppm=200_000)
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
    return prove_on_input(SMALL, "classify", IMAGE, LIMITS)


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


def test_worked_examples_of_ema_slash_and_consensus() -> None:
    assert ema(0, MAX_SCORE, CONFIG) == 200_000
    assert ema(200_000, MAX_SCORE, CONFIG) == 360_000
    assert ema(360_000, 0, CONFIG) == 288_000
    assert [slash_amount(s, CONFIG) for s in (1_000, 999, 5, 0)] == [100, 100, 1, 0]
    assert consensus([(4, 0), (7, 0), (7, 0)]) == 7
    assert consensus([(4, 900_000), (7, 0), (7, 0)]) == 4  # weighted by usefulness + 1
    assert consensus([(3, 0), (2, 0)]) == 2  # a tie goes to the lowest answer
    assert consensus([]) is None


def test_the_scorer_runs_in_the_sandbox(market: tuple[Store, Task]) -> None:
    store, task = market
    assert score(store, task, 7, 7) == MAX_SCORE
    assert score(store, task, 7, 1) == 0


def test_an_honest_claim_is_valid_for_its_input_only(market: tuple[Store, Task],
                                                     small_claim: bytes) -> None:
    _, task = market
    judged = check(task, _worker(SMALL), Delivery(claim=small_claim), IMAGE)
    expected = forward(read_header(WORKERS_DIR / "digits_small_weights.h"), IMAGES[:1])[0]
    assert (judged.outcome, judged.result, judged.claim) == ("valid", expected, small_claim)
    assert not verify_on_input(small_claim, vk_of(SMALL), "classify", OTHER).valid
    assert not verify_on_input(small_claim, vk_of(SMALL), "score", IMAGE).valid
    elsewhere = check(task, _worker(SMALL), Delivery(claim=small_claim), OTHER)
    assert elsewhere.outcome == "invalid" and "other input" in elsewhere.reason


def test_a_false_output_claim_is_caught(market: tuple[Store, Task]) -> None:
    _, task = market
    liar = _worker(LIAR)
    honest = check(task, liar, Delivery(claim=prove_on_input(LIAR, "classify", IMAGE, LIMITS)),
                   IMAGE)
    assert (honest.outcome, honest.result) == ("valid", -1)  # the worker itself answers -1
    forged = digits_liar.operate(LIAR, "classify", IMAGE, LIMITS)
    assert decode_claim(forged).statement.result in range(10)  # ... its operator claims more
    judged = check(task, liar, Delivery(claim=forged), IMAGE)
    assert judged.outcome == "invalid" and judged.reason.startswith("invalid claim")


def test_a_claim_for_another_module_is_caught(market: tuple[Store, Task],
                                              small_claim: bytes) -> None:
    _, task = market
    judged = check(task, _worker(LIAR), Delivery(claim=small_claim), IMAGE)
    assert judged.outcome == "invalid" and "another program" in judged.reason
    garbage = check(task, _worker(LIAR), Delivery(claim=b"MJCLAIM\x01junk"), IMAGE)
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
    delivery = deliver(prove_on_input, module, "classify", IMAGE, limits)
    assert delivery.claim is None and delivery.fault.startswith(f"{kind}: ")
    judged = check(task, _worker(module), delivery, IMAGE)
    assert (judged.outcome, judged.reason) == ("fault", delivery.fault)


def _facts(db: sqlite3.Connection) -> list[tuple]:
    return db.execute("SELECT worker, score, reward, claim_cid FROM batch_facts").fetchall()


@pytest.mark.parametrize("judged", [Check("fault", "OutOfFuel: out of fuel"),
                                    Check("invalid", "invalid claim: constraints")])
def test_failures_score_zero_and_are_slashed(ledger: Ledger, judged: Check) -> None:
    worker = ledger.worker(_worker(LOOP).id)
    with ledger.transaction() as db:
        done = settle(ledger, db, worker, judged, 0, own=False, claim_cid=None, config=CONFIG,
                      registry=REGISTRY, rewards=REWARDS)
        assert _facts(db) == []
    assert (done.reward, done.slashed, done.fact) == (0, 100, None)
    after = ledger.worker(worker.id)
    assert (after.stake, after.usefulness, after.status) == (900, 400_000, "inactive")  # < 950
    assert after.last_used_at == 2.0 * DAY_S
    assert [(e.kind, e.amount) for e in ledger.stake_events(worker.id)] == [("slash", 100)]
    assert ledger.balance(OWNER) == (0, 0)


def test_a_valid_claim_becomes_a_fact_with_its_pending_reward(ledger: Ledger,
                                                              small_claim: bytes,
                                                              market: tuple[Store, Task]) -> None:
    store, task = market
    worker = ledger.worker(_worker(SMALL).id)
    judged = check(task, worker, Delivery(claim=small_claim), IMAGE)
    cid = store.put(small_claim)
    with ledger.transaction() as db:
        done = settle(ledger, db, worker, judged, MAX_SCORE, own=False, claim_cid=cid,
                      config=CONFIG, registry=REGISTRY, rewards=REWARDS)
        facts = _facts(db)
        assert db.execute("SELECT hash FROM batch_facts").fetchall() == [(done.fact,)]
    # usefulness 500_000 -> 600_000; never used, registered 2 days ago: 600 / 3 = 200 SWT
    assert ledger.worker(worker.id).usefulness == 600_000
    assert done.reward == reward(600_000, 1_000, 2 * DAY_S) == 200 and done.slashed == 0
    assert facts == [(worker.id, MAX_SCORE, 200, cid)]
    assert ledger.balance(OWNER) == (0, 200)  # pending until a batch mints it


def test_no_wash_trading(ledger: Ledger, small_claim: bytes, market: tuple[Store, Task]) -> None:
    _, task = market
    worker = ledger.worker(_worker(SMALL).id)
    judged = check(task, worker, Delivery(claim=small_claim), IMAGE)
    with ledger.transaction() as db:
        done = settle(ledger, db, worker, judged, MAX_SCORE, own=True, claim_cid=None,
                      config=CONFIG, registry=REGISTRY, rewards=REWARDS)
        assert _facts(db) == []
    assert (done.reward, done.fact) == (0, None)
    assert ledger.worker(worker.id).usefulness == 500_000
    assert ledger.balance(OWNER) == (0, 0)
