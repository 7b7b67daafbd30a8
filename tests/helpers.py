"""Helpers shared by the CLI tests."""

from __future__ import annotations

import sys

import pytest

from memjit.cli import main


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
