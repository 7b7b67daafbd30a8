"""The replay cache: a message's (signer, nonce) is accepted once.

Persistent (SQLite, WAL), so that a restarted node does not reopen replays: synchronous=FULL
at the sequencer (a replay there could settle twice, so every nonce is on disk before its
message is applied), synchronous=NORMAL elsewhere (a gateway's or operator's nonces survive a
crash of the node, not one of the machine: an fsync less per request, ~7 ms on this loaded
machine; the sequencer settles a request once whatever a gateway or operator forgot). A nonce
is remembered until its message's expiry (at most messages.MAX_TTL_S ahead), after which
the expiry check refuses the message anyway. A nonce is recorded *before* its message is
applied: a crash in between costs the sender a re-signed message, never a double application.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from memjit.node.messages import Envelope, Refused

REPLAY_FILE = "replay.sqlite"
LOCAL_REPLAY_FILE = "replay-local.sqlite"
"""A sequencer node's gateway and operator nonces: a scope apart from the sequencer's own, which
admits again the request a gateway admitted when it settles its delivery."""


class ReplayCache:
    """The (signer, nonce) pairs seen, under `home` (or in memory when `home` is None);
    `durable`: on disk before `admit` returns, a machine crash included (see the module doc)."""

    def __init__(self, home: Path | None, now: Callable[[], float] = time.time,
                 durable: bool = True, name: str = REPLAY_FILE) -> None:
        path = ":memory:" if home is None else str(Path(home) / name)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (signer BLOB NOT NULL, nonce BLOB NOT "
                         "NULL, kind TEXT NOT NULL, expires INTEGER NOT NULL, "
                         "PRIMARY KEY (signer, nonce))")
        # every admit drops the expired rows: without this index, a scan of the whole table
        # (6.6 ms an admit at 20,000 nonces, ~0.3 ms with it)
        self._db.execute("CREATE INDEX IF NOT EXISTS seen_expires ON seen (expires)")
        self._lock = threading.Lock()
        self._now = now

    def admit(self, envelope: Envelope) -> None:
        """Record the envelope's nonce; Refused if it was seen already (a replay)."""
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE expires < ?", (int(self._now()) - 1,))
            try:
                self._db.execute("INSERT INTO seen VALUES (?, ?, ?, ?)",
                                 (envelope.signer, envelope.nonce, envelope.kind,
                                  envelope.expires))
            except sqlite3.IntegrityError:
                raise Refused(f"{envelope.kind} message replayed (nonce "
                              f"{envelope.nonce.hex()} seen already)") from None

    def close(self) -> None:
        """Close the database."""
        self._db.close()
