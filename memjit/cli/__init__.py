"""The `memjit` command line (docs/architecture.md, "CLI contract").

Every command is a thin shell over a Python API, in one module per command group: the engine
(run, trace, vk, prove, verify), the market (worker, validator, balance, request), the rollup
(batch), benchmarks
(bench) and the demo. Each module imports what its command needs only when it runs, so a
command pays for no other. Errors become one line on stderr and the documented exit code
(0 ok, 1 rejected, 2 bad input, 3 worker fault).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from memjit.cli import batch, bench, demo, engine, market
from memjit.errors import MemjitError

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


def _usage_error_type() -> type[Exception]:
    """Click's usage-error base class (typer >= 0.29 vendors click as typer._click)."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # older typer depends on click itself
        from click.exceptions import ClickException
    return ClickException


def main() -> None:
    """Console-script entry point: run the app, map every error to one line and its exit code."""
    usage_error = _usage_error_type()
    try:
        app(standalone_mode=False)
    except MemjitError as exc:
        sys.stderr.write(f"memjit: {exc}\n")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("memjit: aborted\n")
        sys.exit(1)
    except usage_error as exc:
        sys.stderr.write(f"memjit: {exc.format_message()}\n")
        sys.exit(2)
