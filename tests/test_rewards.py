"""Rewards and pricing on worked examples: the seed's reward formula, the fee rising with demand
(and falling back as it fades), the genesis grant paid once, and payments that cannot overdraw."""

from __future__ import annotations

from pathlib import Path

import pytest

from memjit.errors import Rejected
from memjit.market.ledger import Ledger, Worker
from memjit.market.rewards import DAY_S, RewardConfig, fee, grant_once, pay, recent_calls, reward

ALICE, BOB = b"\x01" * 48, b"\x02" * 48


def test_reward_formula_worked_examples() -> None:
    # usefulness * base_reward / (1 + days since last use), usefulness in parts per million
    assert reward(1_000_000, 1_000, 0) == 1_000
    assert reward(500_000, 1_000, 0) == 500
    assert reward(500_000, 1_000, 2 * DAY_S) == 166  # 500 / 3, rounded down
    assert reward(1_000_000, 1_000, DAY_S // 2) == 666  # 1000 / 1.5
    assert reward(250_000, 1_000, 3 * DAY_S) == 62  # 250 / 4
    assert reward(0, 1_000, 0) == 0
    assert reward(1_000_000, 1_000, -5) == 1_000  # a clock step back counts as no time


def test_fee_rises_with_demand() -> None:
    config = RewardConfig(base_fee=10, fee_step=2)
    assert [fee(n, config) for n in (0, 1, 5)] == [10, 12, 20]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    with Ledger(tmp_path, clock=lambda: 10_000.0) as led:
        with led.transaction() as db:
            led.add_owner(db, ALICE)
            led.add_owner(db, BOB)
            led.add_worker(db, Worker(id="w1", owner=ALICE, cid="cid-1", task="digits", vk=None,
                                      stake=500, usefulness=0, registered_at=1.0,
                                      last_used_at=None, unbonding_amount=0, unbonding_at=None,
                                      status="active"))
        yield led


def test_demand_counts_the_calls_of_the_window(ledger: Ledger) -> None:
    config = RewardConfig(base_fee=10, fee_step=1, demand_window_s=3_600)
    with ledger.transaction() as db:
        for seq, at in enumerate((5_000.0, 6_400.0, 6_401.0, 9_999.0), 1):
            db.execute("INSERT INTO requests (seq, requester, task, input, at) "
                       "VALUES (?, ?, 'digits', x'00', ?)", (seq, BOB, at))
            db.execute("INSERT INTO calls VALUES (?, 'w1', 'scored', 1, 0, 0, 0, 0, NULL, '', ?)",
                       (seq, at))
        assert recent_calls(db, "w1", 10_000.0, config) == 2  # 6_400 is just out of the window
        assert fee(recent_calls(db, "w1", 10_000.0, config), config) == 12
        assert recent_calls(db, "w1", 20_000.0, config) == 0  # demand faded: back to base_fee


def test_genesis_grant_is_paid_once(ledger: Ledger) -> None:
    config = RewardConfig(genesis_grant=700)
    carol = b"\x03" * 48
    with ledger.transaction() as db:
        assert grant_once(ledger, db, carol, config) == 700
        assert grant_once(ledger, db, carol, config) == 0
    assert ledger.balance(carol) == (700, 0)


def test_payment_moves_free_balance_and_never_overdraws(ledger: Ledger) -> None:
    with ledger.transaction() as db:
        ledger.credit(db, BOB, free=30)
        pay(ledger, db, BOB, ALICE, 25)
    assert (ledger.balance(BOB), ledger.balance(ALICE)) == ((5, 0), (25, 0))
    with pytest.raises(Rejected, match="insufficient balance: 5 SWT free, 6 needed"), \
            ledger.transaction() as db:
        pay(ledger, db, BOB, ALICE, 6)
    assert (ledger.balance(BOB), ledger.balance(ALICE)) == ((5, 0), (25, 0))
