"""Integer argument lists for typer commands: `--args 1 -2 3`."""

from __future__ import annotations

import re

import typer
import typer.core


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
