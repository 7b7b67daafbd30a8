"""The `memjit` command line (docs/architecture.md, "CLI contract").

Every command is a thin shell over a Python API, in one module per command group: the engine
(run, trace, vk, prove, verify), the market (worker, request), the rollup (batch), benchmarks
(bench) and the demo. Each module imports what its command needs only when it runs, so a
command pays for no other. Errors become one line on stderr and the documented exit code
(0 ok, 1 rejected, 2 bad input, 3 worker fault, 130 interrupted). The global options
(`--home`, `--node`) are accepted before the command and after it, as users type them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
import typer.core
import typer.main

from memjit.cli import batch, bench, demo, engine, market
from memjit.cli.common import Globals, global_options
from memjit.errors import Interrupted, MemjitError

HOME_HELP = "State directory (ledger, content store, keys); default ~/.memjit."
NODE_HELP = "A memjit node to talk to instead of --home (not supported yet)."


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
app.add_typer(batch.app, name="batch")
app.add_typer(bench.app, name="bench")


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


def _click_errors() -> tuple[type[Exception], type[Exception] | None]:
    """Click's usage-error base class and, where click has it (>= 8.2), the error it raises
    for a group called without a command (typer >= 0.29 vendors click as typer._click)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer depends on click itself
        from click import exceptions
    return exceptions.ClickException, getattr(exceptions, "NoArgsIsHelpError", None)


def command() -> Any:
    """The click command behind `memjit`, global options on every subcommand."""
    root_command = typer.main.get_command(app)
    params = _global_params()
    for sub in root_command.commands.values():
        _with_global_options(sub, params)
    return root_command


def main() -> None:
    """Console-script entry point: run the app, map every error to one line and its exit code.

    `memjit` (or `memjit batch`) without a command prints the help and exits 0, as cargo does.
    """
    usage_error, no_args_help = _click_errors()
    try:
        code = command().main(prog_name="memjit", standalone_mode=False)
    except MemjitError as exc:
        sys.stderr.write(f"memjit: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # while parsing, before any command ran
        sys.stderr.write("memjit: interrupted\n")
        sys.exit(Interrupted.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("memjit: aborted\n")
        sys.exit(1)
    except usage_error as exc:
        if no_args_help is not None and isinstance(exc, no_args_help):
            help_text = exc.format_message()  # typer's rich help has printed itself already
            if help_text:
                sys.stdout.write(help_text + "\n")
            sys.exit(0)
        sys.stderr.write(f"memjit: {exc.format_message()}\n")
        sys.exit(2)
    if isinstance(code, int) and code:  # click reports Exit(code) by returning it
        if code == Interrupted.exit_code:
            sys.stderr.write("memjit: interrupted\n")
        sys.exit(code)
