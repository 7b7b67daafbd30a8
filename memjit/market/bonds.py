"""Bonded stake: SWT an owner locks behind a worker (memjit.market.registry) or behind its labels
as a validator (memjit.market.validators). The rules, as Cosmos and Ethereum staking keep them:

- bonding debits the owner's free balance, and is Rejected above it: stake costs what it says;
- unbonding takes stake out of the bond at once, but it reaches the free balance only when the
  unbonding period is over; a further unbonding adds to the amount and restarts the period;
- a slash burns the same fraction of the bonded and of the unbonding stake (each rounded up,
  formulas.slash): stake stays slashable until it is released, so nobody withdraws, then cheats;
- `release_due` pays out every bond whose period is over (memjit.market.epoch runs it).

A bond is three columns of its holder's row (stake, unbonding_amount, unbonding_at); every change
is also appended to the holder's event table (bond, unbond, release, slash). A worker's bond,
release and slash of a positive amount are also rollup facts (memjit.market.facts.
record_stake_fact), in order with the call facts: the state tree holds each worker's locked stake
(bonded plus unbonding) and slashed total. Starting to unbond is not a fact: the stake stays
locked, and slashable, until it is released. `stake_facts` reads back the facts a worker's
events left: `memjit batch audit` checks each batch's stake facts against them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from memjit.errors import Rejected
from memjit.market import formulas
from memjit.market.facts import record_stake_fact
from memjit.market.ledger import Ledger, check_amount


@dataclass(frozen=True)
class Holder:
    """Where bonds of one kind live: the table and key of their rows, and their event log."""

    table: str
    key: str
    owner: str  # the column naming the owner whose free balance the bond comes from
    events: str
    event_key: str


WORKER = Holder("workers", "id", "owner", "stake_events", "worker")
VALIDATOR = Holder("validators", "owner", "owner", "validator_events", "owner")


@dataclass(frozen=True)
class Slash:
    """What a slash burned, and the bond left."""

    burned: int
    stake: int
    unbonding: int


def debit(ledger: Ledger, db: sqlite3.Connection, owner: bytes, amount: int, what: str) -> None:
    """Take `amount` from the owner's free balance to bond it; Rejected above the balance."""
    free, _ = ledger.balance(owner)
    if amount > free:
        raise Rejected(f"{what} {amount} SWT is above the free balance of its owner "
                       f"({free} SWT)")
    ledger.credit(db, owner, free=-amount)


def record(ledger: Ledger, db: sqlite3.Connection, holder: Holder, key: object, kind: str,
           amount: int) -> None:
    """Append one event of a bond, stamped with the ledger clock."""
    db.execute(f"INSERT INTO {holder.events} ({holder.event_key}, kind, amount, at) "
               "VALUES (?, ?, ?, ?)", (key, kind, check_amount(amount, kind), ledger.clock()))
    if holder is WORKER and _is_fact(kind, amount):
        record_stake_fact(db, worker_id=str(key), kind=kind, amount=amount, now=ledger.clock())


def _is_fact(kind: str, amount: int) -> bool:
    """Whether a worker's stake event is also a rollup fact (starting to unbond, or moving
    nothing, is not)."""
    return kind != "unbond" and amount > 0


def stake_facts(ledger: Ledger, worker_id: str) -> list[tuple[str, int]]:
    """The (kind, amount) of every stake fact a worker's events left, oldest first: what the
    committed batches must carry for it (memjit.rollup.batcher audits them against this).
    The events before ledger migration 8 left no facts: they stand as the one bond of the
    stake they left locked, which the migration recorded."""
    events = [(e.kind, e.amount) for e in ledger.stake_events(worker_id)
              if _is_fact(e.kind, e.amount)]
    recorded = ledger.db.execute("SELECT count(*) FROM batch_facts WHERE worker = ? AND "
                                 "kind != 'call'", (worker_id,)).fetchone()[0]
    folded = len(events) - recorded + 1  # the events behind the first fact: 1 unless migrated
    if folded <= 1:
        return events
    locked = sum(amount if kind == "bond" else -amount for kind, amount in events[:folded])
    return [("bond", locked)] * (locked > 0) + events[folded:]


def _bond(db: sqlite3.Connection, holder: Holder, key: object) -> tuple[int, int]:
    row = db.execute(f"SELECT stake, unbonding_amount FROM {holder.table} "
                     f"WHERE {holder.key} = ?", (key,)).fetchone()
    if row is None:
        raise Rejected(f"no {holder.table[:-1]} {key!r}")
    return int(row[0]), int(row[1])


def unbond(ledger: Ledger, db: sqlite3.Connection, holder: Holder, key: object, amount: int,
           unbonding_s: float) -> int:
    """Start unbonding `amount` (1..stake) of a bond; returns the stake left bonded."""
    check_amount(amount, "the amount to unbond", low=1)
    stake, unbonding = _bond(db, holder, key)
    if amount > stake:
        raise Rejected(f"cannot unbond {amount} SWT: {stake} SWT is bonded")
    db.execute(f"UPDATE {holder.table} SET stake = ?, unbonding_amount = ?, unbonding_at = ? "
               f"WHERE {holder.key} = ?",
               (stake - amount, unbonding + amount, ledger.clock() + unbonding_s, key))
    record(ledger, db, holder, key, "unbond", amount)
    return stake - amount


def slash(ledger: Ledger, db: sqlite3.Connection, holder: Holder, key: object,
          slash_ppm: int) -> Slash:
    """Burn slash_ppm of a bond's bonded and of its unbonding stake alike."""
    stake, unbonding = _bond(db, holder, key)
    from_stake = formulas.slash(stake, slash_ppm)
    from_unbonding = formulas.slash(unbonding, slash_ppm)
    db.execute(f"UPDATE {holder.table} SET stake = ?, unbonding_amount = ? "
               f"WHERE {holder.key} = ?", (stake - from_stake, unbonding - from_unbonding, key))
    record(ledger, db, holder, key, "slash", from_stake + from_unbonding)
    return Slash(from_stake + from_unbonding, stake - from_stake, unbonding - from_unbonding)


def release_due(ledger: Ledger, db: sqlite3.Connection) -> int:
    """Pay every bond whose unbonding period is over back to its owner's free balance; returns
    the SWT released."""
    now, total = ledger.clock(), 0
    for holder in (WORKER, VALIDATOR):
        due = db.execute(f"SELECT {holder.key}, {holder.owner}, unbonding_amount FROM "
                         f"{holder.table} WHERE unbonding_at IS NOT NULL AND unbonding_at <= ?",
                         (now,)).fetchall()
        for key, owner, amount in due:
            ledger.credit(db, owner, free=amount)
            db.execute(f"UPDATE {holder.table} SET unbonding_amount = 0, unbonding_at = NULL "
                       f"WHERE {holder.key} = ?", (key,))
            record(ledger, db, holder, key, "release", amount)
            total += amount
    return total
