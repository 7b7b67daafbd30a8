"""SWT rewards, request pricing and the faucet, exact in integer ledger units (the arithmetic
itself is memjit.market.formulas).

- Emission: rewards come from a bounded emission per period (`emission` SWT every `period_s`),
  as Bittensor's subnets share each epoch's emission. A call scored above zero gets a weight,
  the seed formula `usefulness * base_reward / (1 + days since the worker's last use)` on its
  new usefulness, scaled by the stake behind its score (formulas.weight); a call scored 0, an
  unscored call or a failure weighs nothing. When a period is over, `close_periods` pays each
  call its share `weight * min(emission, total weight) // total weight`: below the cap every
  call earns its weight, above it they share the emission. However many requests a self-dealer
  sends, it competes for that emission; it never mints more than it.
- Facts: closing a period records each scored call of it as a fact (memjit.market.facts) that
  carries its reward, and adds the reward to the owner's `balances.pending`; a batch commit
  mints it (memjit.rollup).
- Fee: one call of a worker costs `base_fee + fee_step * (calls it served in the last demand
  window)`, so a worker's price rises with the demand for it and falls as that fades. The
  requester pays the fee to the worker's owner for each verified answer only: a faulty or
  invalid answer costs the requester nothing.
- No wash trading: a requester asking its own worker pays no fee, moves no usefulness and
  earns no weight.
- Faucet (a test network's): each key new to the ledger is credited one grant of `faucet` SWT,
  recorded in the `grants` table (0 turns the faucet off). It is a genesis allocation, not a
  reward, and it is what bounds a fresh key's stake.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from memjit.market import formulas
from memjit.market.facts import Weighing, record_fact
from memjit.market.ledger import Ledger, check_amount
from verifier.claims import vk_digest

FAUCET = 10_000


@dataclass(frozen=True)
class RewardConfig:
    """Reward, pricing and faucet parameters (SWT units; the windows in seconds)."""

    base_reward: int = 1_000
    base_fee: int = 10
    fee_step: int = 1
    demand_window_s: float = 3_600.0
    faucet: int = FAUCET
    emission: int = 10_000  # SWT at most per period
    period_s: int = formulas.DAY_S


@dataclass(frozen=True)
class Period:
    """A closed emission period: its cap, the calls' total weight and the rewards paid."""

    number: int
    emission: int
    weight: int
    paid: int
    calls: int


def fee(recent_calls: int, config: RewardConfig) -> int:
    """The price of one call of a worker that served `recent_calls` in the demand window."""
    return formulas.fee(recent_calls, config.base_fee, config.fee_step)


def recent_calls(db: sqlite3.Connection, wid: str, now: float, config: RewardConfig) -> int:
    """Calls a worker served in the demand window ending at `now`."""
    row = db.execute("SELECT count(*) FROM calls WHERE worker = ? AND at > ?",
                     (wid, now - config.demand_window_s)).fetchone()
    return int(row[0])


def granted(db: sqlite3.Connection, owner: bytes) -> bool:
    """Whether this key already had its faucet grant."""
    return db.execute("SELECT 1 FROM grants WHERE owner = ?", (owner,)).fetchone() is not None


def faucet(ledger: Ledger, db: sqlite3.Connection, owner: bytes, amount: int) -> int:
    """Record a key new to the ledger and credit it the faucet's one grant of `amount` (recorded
    even when 0); returns the amount credited (0 for a key that had its grant)."""
    check_amount(amount, "faucet grant")
    ledger.add_owner(db, owner)
    if granted(db, owner):
        return 0
    db.execute("INSERT INTO grants VALUES (?, ?, ?)", (owner, amount, ledger.clock()))
    ledger.credit(db, owner, free=amount)
    return amount


def pay(ledger: Ledger, db: sqlite3.Connection, payer: bytes, payee: bytes, amount: int) -> None:
    """Move `amount` of free balance from payer to payee (Rejected if the payer lacks it)."""
    ledger.credit(db, payer, free=-amount)
    ledger.credit(db, payee, free=amount)


def open_period(db: sqlite3.Connection, now: float, config: RewardConfig) -> int:
    """The period a call settled at `now` belongs to: its time's, or the one after the last
    closed period (a clock set back never reopens a closed period)."""
    last = db.execute("SELECT max(number) FROM periods").fetchone()[0]
    number = formulas.period(int(now), config.period_s)
    return number if last is None else max(number, last + 1)


def close_periods(ledger: Ledger, db: sqlite3.Connection, config: RewardConfig,
                  now_too: bool = False) -> list[Period]:
    """Close every period that is over and has calls (and, `now_too`, the current one early):
    pay each scored call its share of the emission, record it as a fact with that reward, and
    credit the owner's pending SWT. A period closed early is closed all the same: the calls that
    follow go to the next period, which cannot close before it has begun, so the emission stays
    at most one cap per period begun (`memjit batch commit --force` closes early)."""
    now = ledger.clock()
    current = formulas.period(int(now), config.period_s)
    due = [row[0] for row in db.execute(
        "SELECT DISTINCT period FROM calls WHERE period <= ? AND period NOT IN "
        "(SELECT number FROM periods) ORDER BY period",
        (current if now_too else current - 1,))]
    closed = []
    for number in due:
        calls = db.execute(
            "SELECT c.request, c.worker, c.weight, c.score, c.statement, c.proof, c.claim, "
            "w.vk, w.owner, c.rate, c.prior, c.since FROM calls c JOIN workers w "
            "ON w.id = c.worker WHERE c.period = ? ORDER BY c.request, c.worker",
            (number,)).fetchall()
        total = sum(row[2] for row in calls)
        paid = 0
        for (request, wid, weight, score, statement, proof, claim, vk, owner, rate, prior,
             since) in calls:
            reward = formulas.payout(weight, total, config.emission)
            db.execute("UPDATE calls SET reward = ? WHERE request = ? AND worker = ?",
                       (reward, request, wid))
            record_fact(db, worker_id=wid, vk_digest=vk_digest(vk), statement_digest=statement,
                        proof_digest=proof, score=score, reward=reward, claim_cid=claim, now=now,
                        weighing=Weighing(rate, prior, since, weight, total, config.emission))
            ledger.credit(db, owner, pending=reward)
            paid += reward
        db.execute("INSERT INTO periods VALUES (?, ?, ?, ?, ?)",
                   (number, config.emission, total, paid, now))
        closed.append(Period(number, config.emission, total, paid, len(calls)))
    return closed
