"""Validator stake: bonded from the free balance behind a requester's labels, unbonding for the
registry's period, and at risk: a label that a unanimous quorum of independent answers
contradicts is overruled and slashed, its unbonding stake included."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime
from helpers import Clock

from memjit.errors import BadInput, Rejected
from memjit.market import validators
from memjit.market.epoch import advance
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger
from memjit.market.oracle import OracleConfig, Reference
from memjit.market.pool import MarketConfig, request
from memjit.market.registry import RegistryConfig, register
from memjit.market.tasks import read_test_set
from memjit.runtime.store import Store

IMAGES, LABELS = read_test_set()
ALICE = Identity.from_seed("alice", b"\x0a" * 32)
CONFIG = RegistryConfig(unbonding_s=1_000)


def constant(body: str) -> bytes:
    """A digits worker whose classify() computes `body` whatever the image."""
    return wasmtime.wat2wasm(
        '(module (memory (export "memory") 1) (global (export "memjit_input") i32 '
        f'(i32.const 1024)) (func (export "classify") (result i32) {body}))')


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Ledger:
    with Ledger(tmp_path, clock=clock) as led:
        yield led


def test_validator_stake_is_bonded_unbonded_and_released(ledger: Ledger, clock: Clock) -> None:
    with pytest.raises(Rejected, match=r"validator stake 10001 SWT is above the free balance "
                                       r"of its owner \(10000 SWT\)"):
        validators.bond(ledger, ALICE, 10_001)
    with pytest.raises(BadInput, match="validator stake must be an integer in 1.."):
        validators.bond(ledger, ALICE, 0)
    with pytest.raises(Rejected, match="no validator stake"):
        validators.unbond(ledger, ALICE, config=CONFIG)
    bond = validators.bond(ledger, ALICE, 6_000)
    bond = validators.bond(ledger, ALICE, 1_000)  # adds up
    assert (bond.stake, validators.bonded(ledger, ALICE.public_key)) == (7_000, 7_000)
    bond = validators.unbond(ledger, ALICE, 2_000, CONFIG)
    assert (bond.stake, bond.unbonding_amount, bond.unbonding_at) == (5_000, 2_000, 2_000.0)
    held = ledger.holdings(ALICE.public_key)
    assert (held.free, held.bonded, held.unbonding) == (3_000, 5_000, 2_000)
    clock.now = 2_000.0
    assert advance(ledger).released == 2_000
    assert ledger.holdings(ALICE.public_key).free == 5_000


def test_a_contested_label_is_overruled_and_slashed(ledger: Ledger, executor) -> None:
    """Three independent workers (other owners, other programs) all answer 1; a validator
    labels the image 4: with a contest quorum of 3 its label is overruled and it loses 5% of
    its bonded and of its unbonding stake."""
    store = Store(ledger.path.parent)
    for i, body in enumerate(("i32.const 1", "i32.const 2 i32.const 1 i32.sub",
                              "i32.const 0 i32.const 1 i32.or")):
        register(ledger, store, Identity.from_seed(f"w{i}", bytes([i + 1]) * 32),
                 constant(body), 100, config=CONFIG)
    validators.bond(ledger, ALICE, 8_000)
    validators.unbond(ledger, ALICE, 2_000, CONFIG)  # unbonding stake is still at risk
    market = MarketConfig(registry=CONFIG, oracle=OracleConfig(contest_quorum=3))
    result = request(ledger, store, ALICE, "digits", IMAGES[0].tobytes(), label=4, top_k=3,
                     config=market, executor=executor)
    assert int(LABELS[0]) == 4 and result.reference == Reference(1, 200_000, "contested")
    assert {(c.outcome, c.result, c.score) for c in result.calls} == {("scored", 1, 1_000_000)}
    bond = ledger.validator(ALICE.public_key)
    assert (bond.stake, bond.unbonding_amount) == (6_000 - 300, 2_000 - 100)
    with ledger.transaction() as db:
        events = db.execute("SELECT kind, amount FROM validator_events ORDER BY seq").fetchall()
        basis = db.execute("SELECT label, scored_against, basis FROM requests").fetchone()
    assert events == [("bond", 8_000), ("unbond", 2_000), ("slash", 400)]
    assert basis == (4, 1, "contested")
