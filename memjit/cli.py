"""The `memjit` command line (DESIGN.md, "CLI contract").

Every command is a thin shell over a Python API; errors become one line on stderr and the
documented exit code (0 ok, 1 rejected, 2 bad input, 3 worker fault).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from memjit.errors import MemjitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: prove/verify timings and sizes.")
app.add_typer(bench_app, name="bench")


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


@bench_app.command("stark")
def bench_stark(
    air: str = typer.Option("fibonacci", help="AIR to prove: fibonacci or range_check."),
    log_rows: int = typer.Option(16, "--log-rows", help="log2 of the trace length."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Prove and verify one proof of an example AIR; print time, size and security."""
    from benchmarks.stark import bench_stark as run

    result = run(air, log_rows)
    if json_out:
        emit_json(result)
    else:
        for key, value in result.items():
            typer.echo(f"{key:>16}: {value}")


def main() -> None:
    """Console-script entry point: run the app, map MemjitError to one line and its exit code."""
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
    except Exception as exc:  # click usage errors arrive here in standalone_mode=False
        import click

        if isinstance(exc, click.exceptions.ClickException):
            sys.stderr.write(f"memjit: {exc.format_message()}\n")
            sys.exit(2)
        raise
