"""The typer application of the `memjit` command: every command group and the global options.
Built only when a command needs it (memjit.cli.main runs `verify` without it).

The global options (`--home`, `--node`) are declared on the root and appended to every command
below it, so that they are accepted on either side of the command; the one nearest the command
wins. A Ctrl-C anywhere in a command becomes Interrupted (exit 130).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
import typer.core
import typer.main

from memjit.cli import batch, bench, demo, engine, explorer, market, node
from memjit.cli.common import Globals, global_options
from memjit.errors import Interrupted

HOME_HELP = "State directory (ledger, content store, keys); default ~/.memjit."
NODE_HELP = ("A memjit node (HOST:PORT or URL) to send the command to; --home then only "
             "holds the keys that sign.")


class RootGroup(typer.core.TyperGroup):
    """The `memjit` group: a Ctrl-C anywhere in a command becomes Interrupted (exit 130)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None


app = typer.Typer(cls=RootGroup, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(engine.app)
app.add_typer(market.app)
app.add_typer(demo.app)
app.add_typer(market.worker_app, name="worker")
app.add_typer(market.validator_app, name="validator")
app.add_typer(batch.app, name="batch")
app.add_typer(bench.app, name="bench")
app.add_typer(explorer.app)
app.add_typer(node.app, name="node")


@app.callback()
def root(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", envvar="MEMJIT_HOME", help=HOME_HELP),
    node: Optional[str] = typer.Option(None, "--node", envvar="MEMJIT_NODE", help=NODE_HELP),
) -> None:
    """memjit: an open market for AI workers whose every answer comes with a STARK proof."""
    ctx.obj = Globals(home=home, node=node)


def _set_global(ctx: Any, param: Any, value: Any) -> None:
    """Callback of a global option typed after the command: it overrides the root's."""
    if value is not None:
        setattr(global_options(ctx), param.name, value)


def _global_params() -> list[Any]:
    """The global options as click parameters that store into Globals, built by typer from
    a signature (so that help renders them like every other option)."""

    def holder(
        home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP, callback=_set_global,
                                            expose_value=False, rich_help_panel="Global options"),
        node: Optional[str] = typer.Option(None, "--node", help=NODE_HELP, callback=_set_global,
                                           expose_value=False, rich_help_panel="Global options"),
    ) -> None:
        """Never run: only its options are used."""

    holder_app = typer.Typer(add_completion=False)
    holder_app.command()(holder)
    return list(typer.main.get_command(holder_app).params)


def _with_global_options(command: Any, params: list[Any]) -> None:
    """Give `command` and every command below it the global options too, so that
    `memjit worker list --home H` works as `memjit --home H worker list` does."""
    command.params.extend(params)
    for sub in getattr(command, "commands", {}).values():
        _with_global_options(sub, params)


def command() -> Any:
    """The click command behind `memjit`, global options on every subcommand."""
    root_command = typer.main.get_command(app)
    params = _global_params()
    for sub in root_command.commands.values():
        _with_global_options(sub, params)
    return root_command


def click_errors() -> tuple[type[Exception], type[Exception] | None]:
    """Click's usage-error base class and, where click has it (>= 8.2), the error it raises
    for a group called without a command (typer >= 0.29 vendors click as typer._click)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer depends on click itself
        from click import exceptions
    return exceptions.ClickException, getattr(exceptions, "NoArgsIsHelpError", None)
