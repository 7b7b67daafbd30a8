"""The `memjit` command line (docs/architecture.md, "CLI contract").

Every command is a thin shell over a Python API, in one module per command group: the engine
(run, trace, vk, prove, verify), the market (worker, validator, balance, request), the rollup
(batch), benchmarks (bench) and the demo. Each module imports what its command needs only when
it runs, so a command pays for no other. Errors become one line on stderr and the documented exit code
(0 ok, 1 rejected, 2 bad input, 3 worker fault).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point: run the command, map every error to one line and its exit
    code. ``memjit verify ...`` runs without the typer application and its imports (pydantic
    among them, ~0.2 s): nodes and scripts verify claims one process at a time."""
    from memjit.errors import MemjitError

    try:
        if sys.argv[1:2] == ["verify"]:
            from memjit.cli.verify import verify_command

            verify_command(sys.argv[2:])
        else:
            _run_app()
    except MemjitError as exc:
        sys.stderr.write(f"memjit: {exc}\n")
        sys.exit(exc.exit_code)


def _run_app() -> None:
    import typer

    from memjit.cli.app import app, usage_error_type

    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("memjit: aborted\n")
        sys.exit(1)
    except usage_error_type() as exc:
        sys.stderr.write(f"memjit: {exc.format_message()}\n")
        sys.exit(2)
