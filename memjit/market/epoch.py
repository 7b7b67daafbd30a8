"""What the passing of time settles, as a chain settles it at each block: bonds whose unbonding
period is over are released to their owners (memjit.market.bonds), and emission periods that
are over are closed, their rewards assigned and their calls recorded as facts
(memjit.market.rewards). A request ticks first, inside its own transaction, so that what it
reads is current, and so does `memjit batch commit` (with --force closing the current period
early); a registration or a validator bond releases due bonds first (a released stake can be
bonded again at once). `memjit balance` only reads: it shows what the last tick left.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from memjit.market.bonds import release_due
from memjit.market.ledger import Ledger
from memjit.market.rewards import Period, RewardConfig, close_periods


@dataclass(frozen=True)
class Tick:
    """What one tick settled: SWT released from unbonding, and the periods closed."""

    released: int
    closed: tuple[Period, ...]


def tick(ledger: Ledger, db: sqlite3.Connection, rewards: RewardConfig,
         close_now: bool = False) -> Tick:
    """Release due bonds and close ended periods (and, `close_now`, the current one: see
    rewards.close_periods), inside the caller's transaction `db`."""
    return Tick(release_due(ledger, db), tuple(close_periods(ledger, db, rewards, close_now)))


def advance(ledger: Ledger, rewards: RewardConfig = RewardConfig(),
            close_now: bool = False) -> Tick:
    """One tick in a transaction of its own."""
    with ledger.transaction() as db:
        return tick(ledger, db, rewards, close_now)
