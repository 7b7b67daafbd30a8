"""SWT rewards and request pricing (the seed's SWT), exact in integer ledger units.

- Reward: a scored claim earns `usefulness * base_reward / (1 + days since the worker's last
  use)` (the seed formula; usefulness in parts per million, the days exact in whole seconds,
  a worker never used counts from its registration). The reward is *pending*: it is recorded
  with the claim's fact and SWT is minted only when a batch commits that fact.
- Fee: one call of a worker costs `base_fee + fee_step * (calls it served in the last
  demand window)`, so a worker's price rises with the demand for it and falls as that fades.
  The requester pays the fee to the worker's owner for each verified answer only: a faulty or
  invalid answer costs the requester nothing.
- No wash trading: a requester asking its own worker pays no fee and earns no reward.
- Funding: a requester's first request credits it a genesis grant (the test network's faucet),
  once per key, recorded in the `grants` table. It is a genesis allocation, not a reward.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from memjit.errors import Rejected
from memjit.market.ledger import Ledger

DAY_S = 86_400
MAX_USEFULNESS = 1_000_000


@dataclass(frozen=True)
class RewardConfig:
    """Reward and pricing parameters (SWT units; the demand window in seconds)."""

    base_reward: int = 1_000
    base_fee: int = 10
    fee_step: int = 1
    demand_window_s: float = 3_600.0
    genesis_grant: int = 10_000


def reward(usefulness: int, base_reward: int, since_last_use_s: float) -> int:
    """`usefulness/1e6 * base_reward / (1 + days)`, rounded down, days = seconds / 86400."""
    seconds = max(0, int(since_last_use_s))
    return usefulness * base_reward * DAY_S // (MAX_USEFULNESS * (DAY_S + seconds))


def fee(recent_calls: int, config: RewardConfig) -> int:
    """The price of one call of a worker that served `recent_calls` in the demand window."""
    return config.base_fee + config.fee_step * recent_calls


def recent_calls(db: sqlite3.Connection, wid: str, now: float, config: RewardConfig) -> int:
    """Calls a worker served in the demand window ending at `now`."""
    row = db.execute("SELECT count(*) FROM calls WHERE worker = ? AND at > ?",
                     (wid, now - config.demand_window_s)).fetchone()
    return int(row[0])


def granted(db: sqlite3.Connection, owner: bytes) -> bool:
    """Whether this requester already had its genesis grant."""
    return db.execute("SELECT 1 FROM grants WHERE owner = ?", (owner,)).fetchone() is not None


def grant_once(ledger: Ledger, db: sqlite3.Connection, owner: bytes,
               config: RewardConfig) -> int:
    """Credit a new requester its genesis grant (recording it); returns the amount (0 if it
    had it already)."""
    ledger.add_owner(db, owner)
    if granted(db, owner):
        return 0
    db.execute("INSERT INTO grants VALUES (?, ?, ?)", (owner, config.genesis_grant,
                                                       ledger.clock()))
    ledger.credit(db, owner, free=config.genesis_grant)
    return config.genesis_grant


def pay(ledger: Ledger, db: sqlite3.Connection, payer: bytes, payee: bytes, amount: int) -> None:
    """Move `amount` of free balance from payer to payee (Rejected if the payer lacks it)."""
    try:
        ledger.credit(db, payer, free=-amount)
    except sqlite3.IntegrityError:
        free, _ = ledger.balance(payer)
        raise Rejected(f"insufficient balance: {free} SWT free, {amount} needed") from None
    ledger.credit(db, payee, free=amount)
