"""Rewards and pricing in the ledger: the fee rising with demand (and falling back as it fades),
the faucet's one grant per key, payments that cannot overdraw, and emission periods that close
once, pay every scored call its share of the capped emission and record its fact."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Clock, add_call

from memjit.errors import Rejected
from memjit.market.epoch import advance
from memjit.market.ledger import Ledger, Worker
from memjit.market.rewards import (RewardConfig, close_periods, faucet, fee, open_period, pay,
                                   recent_calls)
from verifier.claims import vk_digest

ALICE, BOB = b"\x01" * 48, b"\x02" * 48
W1, W2 = "aa" * 32, "bb" * 32  # owned by alice and bob
VK = b"the verification key of "


@pytest.fixture
def clock() -> Clock:
    return Clock(10_000.0)


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Ledger:
    with Ledger(tmp_path, clock=clock) as led:
        with led.transaction() as db:
            led.add_owner(db, ALICE)
            led.add_owner(db, BOB)
            for wid, cid in ((W1, "cid-1"), (W2, "cid-2")):
                led.add_worker(db, Worker(id=wid, owner=ALICE if wid == W1 else BOB, cid=cid,
                                          task="digits", vk=VK + cid.encode(), stake=500,
                                          usefulness=0, registered_at=1.0, last_used_at=None,
                                          unbonding_amount=0, unbonding_at=None,
                                          status="active"))
        yield led


def test_fee_rises_with_demand() -> None:
    config = RewardConfig(base_fee=10, fee_step=2)
    assert [fee(n, config) for n in (0, 1, 5)] == [10, 12, 20]


def test_demand_counts_the_calls_of_the_window(ledger: Ledger) -> None:
    config = RewardConfig(base_fee=10, fee_step=1, demand_window_s=3_600)
    with ledger.transaction() as db:
        for at in (5_000.0, 6_400.0, 6_401.0, 9_999.0):
            add_call(db, BOB, W1, at)
        assert recent_calls(db, W1, 10_000.0, config) == 2  # 6_400 is just out of the window
        assert fee(recent_calls(db, W1, 10_000.0, config), config) == 12
        assert recent_calls(db, W1, 20_000.0, config) == 0  # demand faded: back to base_fee


def test_the_faucet_grants_each_key_once(ledger: Ledger) -> None:
    carol, dave = b"\x03" * 48, b"\x04" * 48
    with ledger.transaction() as db:
        assert faucet(ledger, db, carol, 700) == 700
        assert faucet(ledger, db, carol, 700) == 0
        assert faucet(ledger, db, dave, 0) == 0  # the faucet turned off still records the key
        assert faucet(ledger, db, dave, 700) == 0
        grants = db.execute("SELECT owner, amount FROM grants ORDER BY amount").fetchall()
    assert grants == [(dave, 0), (carol, 700)]
    assert ledger.balance(carol) == (700, 0) and ledger.balance(dave) == (0, 0)


def test_payment_moves_free_balance_and_never_overdraws(ledger: Ledger) -> None:
    with ledger.transaction() as db:
        ledger.credit(db, BOB, free=30)
        pay(ledger, db, BOB, ALICE, 25)
    assert (ledger.balance(BOB), ledger.balance(ALICE)) == ((5, 0), (25, 0))
    with pytest.raises(Rejected, match="insufficient balance: 5 SWT free, 6 needed"), \
            ledger.transaction() as db:
        pay(ledger, db, BOB, ALICE, 6)
    assert (ledger.balance(BOB), ledger.balance(ALICE)) == ((5, 0), (25, 0))


def _scored(ledger: Ledger, worker: str, weight: int, score: int, tag: int,
            config: RewardConfig) -> None:
    """A scored call of `worker` in the open period, with its weight and claim digests."""
    with ledger.transaction() as db:
        add_call(db, BOB, worker, ledger.clock(), score=score, weight=weight,
                 period=open_period(db, ledger.clock(), config), statement=bytes([tag]) * 32,
                 proof=bytes([tag + 100]) * 32)


def test_a_period_pays_its_scored_calls_their_share_of_the_emission(ledger: Ledger,
                                                                    clock: Clock) -> None:
    config = RewardConfig(emission=10_000, period_s=1_000)
    clock.now = 10_100.0  # period 10
    for tag, (worker, weight, score) in enumerate([(W1, 6_000, 1_000_000), (W2, 3_000, 1_000_000),
                                                   (W2, 3_000, 700_000), (W1, 0, 0)]):
        _scored(ledger, worker, weight, score, tag, config)
    assert ledger.holdings(ALICE).accruing == 6_000  # at most, while the period is open
    clock.now = 10_999.0
    assert advance(ledger, config).closed == ()  # not over yet
    clock.now = 11_000.0
    _scored(ledger, W1, 500, 1_000_000, 9, config)  # period 11: stays open
    [closed] = advance(ledger, config).closed
    assert (closed.number, closed.emission, closed.weight, closed.paid, closed.calls) == (
        10, 10_000, 12_000, 10_000, 4)  # 12,000 of weight share the cap of 10,000
    with ledger.transaction() as db:
        rewards = db.execute("SELECT worker, weight, reward FROM calls WHERE period = 10 "
                             "ORDER BY request").fetchall()
        facts = db.execute("SELECT worker, score, reward, vk_digest FROM batch_facts "
                           "ORDER BY seq").fetchall()
        assert close_periods(ledger, db, config) == []  # a period closes once
    assert rewards == [(W1, 6_000, 5_000), (W2, 3_000, 2_500), (W2, 3_000, 2_500), (W1, 0, 0)]
    assert facts == [(W1, 1_000_000, 5_000, vk_digest(VK + b"cid-1")),
                     (W2, 1_000_000, 2_500, vk_digest(VK + b"cid-2")),
                     (W2, 700_000, 2_500, vk_digest(VK + b"cid-2")),
                     (W1, 0, 0, vk_digest(VK + b"cid-1"))]  # a score of 0 is a fact, unpaid
    alice, bob = ledger.holdings(ALICE), ledger.holdings(BOB)
    assert (alice.pending, alice.accruing, bob.pending, bob.earned) == (5_000, 500, 5_000, 5_000)
    # a clock set back never reopens a closed period: the call goes to the next open one
    clock.now = 10_500.0
    with ledger.transaction() as db:
        assert open_period(db, clock.now, config) == 11
    clock.now = 12_000.0
    [closed] = advance(ledger, config).closed
    assert (closed.number, closed.weight, closed.paid) == (11, 500, 500)  # below the cap: all


def test_a_period_closed_early_stays_one_cap_per_period_begun(ledger: Ledger,
                                                              clock: Clock) -> None:
    config = RewardConfig(emission=1_000, period_s=1_000)
    clock.now = 10_100.0  # period 10
    _scored(ledger, W1, 5_000, 1_000_000, 1, config)
    [closed] = advance(ledger, config, close_now=True).closed  # `batch commit --force`
    assert (closed.number, closed.paid) == (10, 1_000)
    _scored(ledger, W1, 5_000, 1_000_000, 2, config)  # still period 10's time: it waits for 11
    assert advance(ledger, config, close_now=True).closed == ()  # 11 has not begun
    clock.now = 11_000.0
    [closed] = advance(ledger, config, close_now=True).closed
    assert (closed.number, closed.paid) == (11, 1_000)
    with ledger.transaction() as db:
        assert db.execute("SELECT sum(paid) FROM periods").fetchone()[0] == 2 * 1_000
