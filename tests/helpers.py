"""Helpers shared by the CLI and market tests: running the CLI in-process, a settable ledger
clock, recording calls in a ledger, dumping it."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from memjit.cli import main
from memjit.market.ledger import LEDGER_FILE


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        *argv: str) -> tuple[int, str, str]:
    """Run `memjit ARGV` in-process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["memjit", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


class Clock:
    """A settable ledger clock."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def add_call(db: sqlite3.Connection, requester: bytes, worker: str, at: float = 0.0,
             **columns: object) -> int:
    """Record one request of `requester` and one scored call of `worker` in it, as a settled
    request would (other call columns may be given); returns the request's number."""
    seq = db.execute("INSERT INTO requests (requester, task, input, at) "
                     "VALUES (?, 'digits', x'00', ?)", (requester, at)).lastrowid
    row = {"request": seq, "worker": worker, "outcome": "scored", "result": 1, "score": 0,
           "fee": 0, "reward": 0, "slashed": 0, "reason": "", "at": at, **columns}
    db.execute(f"INSERT INTO calls ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
               tuple(row.values()))
    return seq


def ledger_dump(home: Path) -> str:
    """The whole ledger of `home` as SQL text, to compare before and after."""
    db = sqlite3.connect(Path(home) / LEDGER_FILE)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()
