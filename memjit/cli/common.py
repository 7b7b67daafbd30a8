"""What every command group shares: the JSON output contract, reading user files, integer
argument lists."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import typer
import typer.core


def emit_json(obj: dict) -> None:
    """Print one JSON object on stdout (the `--json` contract)."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


def read_file(path: Path) -> bytes:
    """Read a user-named file, turning OS errors into a BadInput."""
    from memjit.errors import BadInput

    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None


class IntArgsCommand(typer.core.TyperCommand):
    """A command whose `--args` option also takes several integers: `--args 1 -2 3`.

    Rewrites `--args 1 -2 3` to `--args 1 --args -2 --args 3` before parsing, preserving
    order, so negative numbers are never mistaken for options.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        expanded: list[str] = []
        extending = False  # inside `--args V1 V2 ...`: integer tokens are further values
        for prev, token in zip([None, *args], args):
            if extending and INT_TOKEN.fullmatch(token):
                expanded += ["--args", token]
                continue
            extending = prev == "--args"
            expanded.append(token)
        return super().parse_args(ctx, expanded)

INT_TOKEN = re.compile(r"[+-]?\d+")
