"""Worker accounts, the leaves of the batcher's state tree, and the state diff between batches.

An account is keyed by the 32-byte worker id and encodes (version 1, big-endian)::

    u8 version, u64 stake, u32 usefulness (ppm), i64 last use (ms since the epoch, -1: never),
    u64 balance (SWT minted to the worker by committed batches), u64 slashed total

Stake, usefulness and last use are the ledger's `workers` columns, the slashed total the sum of
its `slash` stake events; the balance is the previous batch's balance plus the rewards of the
worker's facts in this batch. The committed state is defined by the diffs alone: the account of
a worker after batch N is the newest `batch_diffs` row with batch <= N, so deleting a reverted
batch's rows restores the previous state exactly.

A state diff lists, by increasing worker id, every account whose leaf changed: key, old leaf
(absent for a new account) and new leaf. Encoding: ``u32 n`` then per entry ``key (32),
u16 old length (0xFFFF: absent), old leaf, u16 new length, new leaf``; its blake3 is the
header's diff digest.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import blake3

from memjit.rollup.header import HASH_BYTES, BatchFormatError, Reader, check_order
from memjit.market.ledger import worker_key

ACCOUNT_VERSION = 1
_ACCOUNT = struct.Struct(">BQIqQQ")
_ABSENT = 0xFFFF
MAX_DIFF = 1 << 24


@dataclass(frozen=True)
class Account:
    """A worker account as the state tree holds it."""

    stake: int
    usefulness: int
    last_used_ms: int  # -1: never used
    balance: int
    slashed: int

    def encode(self) -> bytes:
        return _ACCOUNT.pack(ACCOUNT_VERSION, self.stake, self.usefulness, self.last_used_ms,
                             self.balance, self.slashed)

    @classmethod
    def decode(cls, leaf: bytes) -> Account:
        """Parse a leaf (BatchFormatError if it is not a version-1 account)."""
        if len(leaf) != _ACCOUNT.size or leaf[0] != ACCOUNT_VERSION:
            raise BatchFormatError("not a version-1 account leaf")
        return cls(*_ACCOUNT.unpack(leaf)[1:])


@dataclass(frozen=True)
class DiffEntry:
    """One changed account: its key (worker id bytes), old leaf (None if new) and new leaf."""

    key: bytes
    old: bytes | None
    new: bytes


def committed_leaves(db: sqlite3.Connection, upto: int) -> dict[str, bytes]:
    """The account leaf of every worker after batch `upto` (0: the empty genesis state)."""
    rows = db.execute(
        "SELECT worker, new_leaf FROM batch_diffs d WHERE batch = (SELECT max(batch) "
        "FROM batch_diffs WHERE worker = d.worker AND batch <= ?)", (upto,)).fetchall()
    return {worker: bytes(leaf) for worker, leaf in rows}


def next_accounts(db: sqlite3.Connection, committed: Mapping[str, bytes],
                  minted: Mapping[str, int]) -> dict[str, bytes]:
    """Every worker's new leaf: its ledger columns now, its balance raised by `minted`."""
    slashed = dict(db.execute("SELECT worker, sum(amount) FROM stake_events WHERE kind = 'slash' "
                              "GROUP BY worker").fetchall())
    out = {}
    for wid, stake, usefulness, last_used in db.execute(
            "SELECT id, stake, usefulness, last_used_at FROM workers").fetchall():
        old = committed.get(wid)  # packed directly: this runs for every worker at every batch
        balance = (0 if old is None else _ACCOUNT.unpack(old)[4]) + minted.get(wid, 0)
        last_ms = -1 if last_used is None else round(last_used * 1000)
        out[wid] = _ACCOUNT.pack(ACCOUNT_VERSION, stake, usefulness, last_ms, balance,
                                 slashed.get(wid, 0))
    return out


def state_diff(committed: Mapping[str, bytes], accounts: Mapping[str, bytes]) -> list[DiffEntry]:
    """The accounts whose leaf differs from the committed one, by increasing key."""
    return [DiffEntry(worker_key(wid), committed.get(wid), leaf)
            for wid, leaf in sorted(accounts.items()) if committed.get(wid) != leaf]


def encode_diff(diff: list[DiffEntry]) -> bytes:
    """The canonical encoding of a state diff (keys strictly increasing)."""
    out = [struct.pack(">I", len(diff))]
    for e in diff:
        old = b"" if e.old is None else e.old
        out += [e.key, struct.pack(">H", _ABSENT if e.old is None else len(old)), old,
                struct.pack(">H", len(e.new)), e.new]
    return b"".join(out)


def diff_digest(diff: list[DiffEntry]) -> bytes:
    """The header's digest of a state diff."""
    return blake3.blake3(encode_diff(diff)).digest()


def read_diff(r: Reader) -> list[DiffEntry]:
    """Parse a state diff at the reader's position."""
    n = r.uint("I")
    if n > MAX_DIFF:
        raise BatchFormatError(f"state diff too long ({n} entries)")
    out = []
    for _ in range(n):
        key, old_len = r.take(HASH_BYTES), r.uint("H")
        old = None if old_len == _ABSENT else r.take(old_len)
        out.append(DiffEntry(key, old, r.take(r.uint("H"))))
    check_order([e.key for e in out], "state diff keys")
    return out
