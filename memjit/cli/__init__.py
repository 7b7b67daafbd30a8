"""The `memjit` command line (docs/architecture.md, "CLI contract").

Every command is a thin shell over a Python API, in one module per command group: the engine
(run, trace, vk, prove, verify), the market (worker, validator, balance, request), the rollup
(batch), benchmarks (bench) and the demo. Each module imports what its command needs only when
it runs, so a command pays for no other. Errors become one line on stderr and the documented
exit code (0 ok, 1 rejected, 2 bad input, 3 worker fault, 130 interrupted). The global options
(`--home`, `--node`) are accepted before the command and after it, as users type them.
"""

from __future__ import annotations

import sys


LIGHT_COMMANDS = {"verify": "memjit.cli.verify:verify_command",
                  "request": "memjit.cli.request:request_command"}
"""Commands parsed with argparse, without the typer application and its imports (pydantic
among them, 0.2-0.5 s): nodes and scripts verify claims one process at a time, and a request
is answered in real time."""
GLOBAL_OPTIONS = ("--home", "--node")


def main() -> None:
    """Console-script entry point: run the command, map every error to one line and its exit
    code. A light command (LIGHT_COMMANDS) runs without the typer application."""
    from memjit.errors import Interrupted, MemjitError

    try:
        light = _light_command(sys.argv[1:])
        if light is not None:
            import importlib

            module, function = LIGHT_COMMANDS[light[0]].split(":")
            getattr(importlib.import_module(module), function)(light[1])
        else:
            _run_app()
    except MemjitError as exc:
        sys.stderr.write(f"memjit: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # outside a command (the app maps its own: memjit.cli.app)
        sys.stderr.write("memjit: interrupted\n")
        sys.exit(Interrupted.exit_code)


def _light_command(argv: list[str]) -> tuple[str, list[str]] | None:
    """The light command `argv` runs and its arguments, the global options typed before it
    first (its parser lets the last of each win, as the app lets the one nearest the command
    win); None for any other command line."""
    at, leading = 0, []
    while at < len(argv) and argv[at].split("=", 1)[0] in GLOBAL_OPTIONS:
        step = 1 if "=" in argv[at] else 2
        leading += argv[at:at + step]
        at += step
    if at < len(argv) and argv[at] in LIGHT_COMMANDS:
        return argv[at], leading + argv[at + 1:]
    return None


def _run_app() -> None:
    """Run the typer application; click's own outcomes become the contract's exit codes.
    `memjit` (or `memjit batch`) without a command prints the help and exits 0, as cargo
    does."""
    import typer

    from memjit.cli.app import click_errors, command
    from memjit.errors import Interrupted

    usage_error, no_args_help = click_errors()
    try:
        code = command().main(prog_name="memjit", standalone_mode=False)
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
