"""`memjit demo`: the engine tour and the market, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer()


@app.command("demo")
def demo_cmd(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", help="State directory for the demo."),
) -> None:
    """Tour the engine (store, sandbox, trace, prove, verify), then run the market: register
    the digits workers, send requests, print the leaderboard (trained models rise, cheats are
    slashed)."""
    from memjit.demo import run_demo

    run_demo((home.expanduser() if home else ctx.obj))
