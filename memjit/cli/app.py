"""The typer application of the `memjit` command: every command group and the global options.
Built only when a command needs it (memjit.cli.main runs `verify` without it)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from memjit.cli import batch, bench, demo, engine, market

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(engine.app)
app.add_typer(market.app)
app.add_typer(demo.app)
app.add_typer(market.worker_app, name="worker")
app.add_typer(market.validator_app, name="validator")
app.add_typer(batch.app, name="batch")
app.add_typer(bench.app, name="bench")

DEFAULT_HOME = Path("~/.memjit")


@app.callback()
def root(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(
        None, "--home", envvar="MEMJIT_HOME", help="State directory (ledger, content store); default ~/.memjit."
    ),
) -> None:
    """memjit: an open market for AI workers whose every answer comes with a STARK proof."""
    ctx.obj = (home or DEFAULT_HOME).expanduser()


def usage_error_type() -> type[Exception]:
    """Click's usage-error base class (typer >= 0.29 vendors click as typer._click)."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # older typer depends on click itself
        from click.exceptions import ClickException
    return ClickException
