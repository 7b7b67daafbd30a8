"""`memjit demo`: the engine tour and the market, end to end."""

from __future__ import annotations

import typer

from memjit.cli.common import state_home

app = typer.Typer()


@app.command("demo")
def demo_cmd(ctx: typer.Context) -> None:
    """Tour the engine (store, sandbox, trace, prove, verify), then run the market: register
    the digits workers, send requests, print the leaderboard (trained models rise, cheats are
    slashed). State goes to --home (a fresh directory is best: `--home /tmp/memjit-demo`)."""
    from memjit.demo import run_demo

    run_demo(state_home(ctx, write=True))
