"""Helpers shared by the CLI and market tests."""

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


def ledger_dump(home: Path) -> str:
    """The whole ledger of `home` as SQL text, to compare before and after."""
    db = sqlite3.connect(Path(home) / LEDGER_FILE)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()
