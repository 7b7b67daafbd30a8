"""The `memjit` command line (DESIGN.md, "CLI contract").

Every command is a thin shell over a Python API; errors become one line on stderr and the
documented exit code (0 ok, 1 rejected, 2 bad input, 3 worker fault).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
import typer.core

from memjit.errors import MemjitError

if TYPE_CHECKING:
    from memjit.ledger import Worker
    from memjit.tracer import Trace

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: prove/verify timings and sizes.")
app.add_typer(bench_app, name="bench")
worker_app = typer.Typer(no_args_is_help=True, help="The worker registry: add, list, show.")
app.add_typer(worker_app, name="worker")

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


@app.command("demo")
def demo_cmd(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", help="State directory for the demo."),
) -> None:
    """Tour the engine end to end: store, sandbox, trace, prove and verify."""
    from memjit.demo import run_demo

    run_demo((home.expanduser() if home else ctx.obj))


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


@bench_app.command("sweep")
def bench_sweep(
    out: Path = typer.Option(Path("bench-out"), "--out", help="Directory for CSV, JSON and PNG plots."),
    series: str = typer.Option("fibonacci,range_check,vm_crc32", help="Comma-separated series: fibonacci, range_check, vm_crc32 (the VM AIR proving crc32(n), up to 2^18 rows)."),
    min_log: int = typer.Option(10, "--min-log", help="Smallest trace: 2^min-log rows."),
    max_log: int = typer.Option(20, "--max-log", help="Largest trace: 2^max-log rows."),
    repeats: int = typer.Option(3, "--repeats", help="Runs per point (medians are reported)."),
    params_log: int = typer.Option(16, "--params-log", help="Trace size of the blowup/queries experiment (0: skip)."),
) -> None:
    """Trace-size experiments: per-phase prove time, verify time, proof size, peak memory."""
    from benchmarks.sweep import run_sweep

    run_sweep(out, [s.strip() for s in series.split(",") if s.strip()], min_log, max_log,
              repeats, params_log or None)


class _IntArgsCommand(typer.core.TyperCommand):
    """A command whose `--args` option also takes several integers: `--args 1 -2 3`.

    Rewrites `--args 1 -2 3` to `--args 1 --args -2 --args 3` before parsing, preserving
    order, so negative numbers are never mistaken for options.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        expanded: list[str] = []
        extending = False  # inside `--args V1 V2 ...`: integer tokens are further values
        for prev, token in zip([None, *args], args):
            if extending and _INT_TOKEN.fullmatch(token):
                expanded += ["--args", token]
                continue
            extending = prev == "--args"
            expanded.append(token)
        return super().parse_args(ctx, expanded)


_INT_TOKEN = re.compile(r"[+-]?\d+")

INPUT_HELP = "Bytes to write to the worker's memjit_input buffer before the call."
OUTPUT_LEN_HELP = ("Output bytes to read from the worker's memjit_output buffer after the call: "
                   "a count, or 'result' for the call's result.")
OUTPUT_HELP = "Save the output bytes here (otherwise they are printed in hex)."


@app.command("run", cls=_IntArgsCommand)
def run_cmd(
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    export: str = typer.Option(..., "--export", help="Exported function to call."),
    args: Optional[List[int]] = typer.Option(
        None, "--args", help="Integer arguments, decimal, negative allowed: --args 1 -2 3."
    ),
    fuel: Optional[int] = typer.Option(None, "--fuel", help="Fuel budget (default 1000000000)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Deadline in seconds (default 5)."),
    memory_mb: Optional[int] = typer.Option(None, "--memory-mb", help="Memory cap in MiB (default 64)."),
    input_file: Optional[Path] = typer.Option(None, "--input", help=INPUT_HELP),
    output_len: Optional[str] = typer.Option(None, "--output-len", help=OUTPUT_LEN_HELP),
    output_file: Optional[Path] = typer.Option(None, "--output", help=OUTPUT_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run one export of a worker in the sandbox; print its result(s) and the fuel used."""
    from memjit.sandbox import Limits, run
    from memjit.tensor_io import output_length, read_output
    from memjit.wasm import load

    given = {"fuel": fuel, "timeout_s": timeout, "memory_mb": memory_mb}
    limits = Limits(**{key: value for key, value in given.items() if value is not None})
    module = read_file(wasm)
    input_bytes = read_file(input_file) if input_file is not None else b""
    result = run(module, export, list(args or ()), limits, input_bytes)
    output = read_output(load(module), result.memory,
                         output_length(_parse_output_len(output_len), result.results))
    _save_output(output_file, output)
    if json_out:
        emit_json(
            {
                "export": export,
                "results": list(result.results),
                "fuel_used": result.fuel_used,
                "elapsed_s": result.elapsed_s,
                "memory_bytes": None if result.memory is None else len(result.memory),
                **_io_fields(input_bytes, output, output_len is not None),
            }
        )
    else:
        typer.echo("result: " + (" ".join(str(r) for r in result.results) or "(none)"))
        typer.echo(f"fuel: {result.fuel_used}")
        _echo_io(input_bytes, output, output_len is not None, output_file)


def _parse_output_len(text: str | None) -> int | str | None:
    """--output-len: a byte count, 'result', or absent."""
    from memjit.errors import BadInput
    from memjit.tensor_io import RESULT

    if text is None or text == RESULT:
        return text
    if not text.isdigit():
        raise BadInput(f"--output-len must be a byte count or {RESULT!r}, got {text!r}")
    return int(text)


def _save_output(path: Path | None, output: bytes) -> None:
    from memjit.errors import BadInput

    if path is not None:
        try:
            path.write_bytes(output)
        except OSError as exc:
            raise BadInput(f"cannot write {path}: {exc.strerror or exc}") from None


def _io_fields(input_bytes: bytes, output: bytes, has_output: bool) -> dict:
    """JSON fields of a call's tensor input and output: sizes, blake3 digests, output hex."""
    import blake3

    fields: dict = {}
    if input_bytes:
        fields.update(input_bytes=len(input_bytes),
                      input_blake3=blake3.blake3(input_bytes).hexdigest())
    if has_output:
        fields.update(output_bytes=len(output), output_blake3=blake3.blake3(output).hexdigest(),
                      output_hex=output.hex())
    return fields


def _echo_io(input_bytes: bytes, output: bytes, has_output: bool, saved: Path | None) -> None:
    """The human-readable lines for a call's tensor input and output."""
    fields = _io_fields(input_bytes, output, has_output)
    if input_bytes:
        typer.echo(f"input: {fields['input_bytes']} bytes, blake3 {fields['input_blake3']}")
    if has_output:
        where = f"saved to {saved}" if saved is not None else (
            output.hex() if len(output) <= 64 else output[:64].hex() + "...")
        typer.echo(f"output: {len(output)} bytes, blake3 {fields['output_blake3']}: {where}")


@app.command("trace", cls=_IntArgsCommand)
def trace_cmd(
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    export: str = typer.Option(..., "--export", help="Exported function to call."),
    args: Optional[List[int]] = typer.Option(
        None, "--args", help="Integer arguments, decimal, negative allowed: --args 1 -2 3."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Save the trace as .npz."),
    max_steps: int = typer.Option(1 << 24, "--max-steps", help="Longest trace to record."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Trace one call (cross-checked against wasmtime): steps, opcode histogram, memory footprint.

    A call that traps is still traced (and saved); the command then exits 3 naming the trap.
    """
    from memjit.errors import BadInput, Trap
    from memjit.sandbox import Limits
    from memjit.tracer import trace_checked

    if max_steps < 1:
        raise BadInput(f"--max-steps must be positive, got {max_steps}")
    tr = trace_checked(read_file(wasm), export, list(args or ()), Limits(), max_steps)
    saved = None
    if out is not None:
        saved = out if out.suffix == ".npz" else out.with_name(out.name + ".npz")
        try:
            tr.save(saved)
        except OSError as exc:
            raise BadInput(f"cannot write {saved}: {exc.strerror or exc}") from None
    histogram = tr.opcode_histogram()
    footprint = tr.memory_footprint()
    if json_out:
        emit_json({"export": export, "args": list(tr.args), "steps": tr.steps,
                   "results": list(tr.results), "trap": tr.trap, "fuel": tr.fuel,
                   "histogram": histogram, "memory": footprint,
                   "out": None if saved is None else str(saved)})
    else:
        _print_trace(tr, histogram, footprint, saved)
    if tr.trap is not None:
        raise Trap(tr.trap, f"trap: {tr.trap} in {export!r} after {tr.steps} steps")


def _print_trace(
    tr: "Trace", histogram: dict, footprint: dict, saved: Optional[Path]
) -> None:
    """The human-readable `memjit trace` report (rich table for the histogram)."""
    from rich.console import Console
    from rich.table import Table

    outcome = f"trap: {tr.trap}" if tr.trap else "result: " + (
        " ".join(str(r) for r in tr.results) or "(none)")
    typer.echo(f"steps: {tr.steps}\n{outcome}\nfuel: {tr.fuel}")
    table = Table(title="opcode histogram")
    table.add_column("op")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for name, count in histogram.items():
        table.add_row(name, str(count), f"{100 * count / max(tr.steps, 1):.1f}%")
    Console(highlight=False).print(table)
    typer.echo(
        f"memory: {footprint['pages']} pages ({footprint['memory_bytes']} bytes), touched "
        f"{footprint['pages_touched']} pages / {footprint['bytes_touched']} bytes "
        f"({footprint['bytes_written']} written)")
    typer.echo(f"stack: {footprint['stack_slots']} slots, call depth {footprint['max_depth']}")
    if saved is not None:
        typer.echo(f"saved: {saved}")


@app.command("vk")
def vk_cmd(
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the verification key here."),
) -> None:
    """Print a module's verification-key digest (hex); --out saves the key itself."""
    from memjit.claims import vk_of
    from memjit.errors import BadInput
    from verifier.claims import vk_digest

    vk = vk_of(read_file(wasm))
    if out is not None:
        try:
            out.write_bytes(vk)
        except OSError as exc:
            raise BadInput(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(vk_digest(vk).hex())


@app.command("prove", cls=_IntArgsCommand)
def prove_cmd(
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    export: str = typer.Option(..., "--export", help="Exported function to call."),
    args: Optional[List[int]] = typer.Option(
        None, "--args", help="Integer arguments, decimal, negative allowed: --args 1 -2 3."
    ),
    out: Path = typer.Option(..., "--out", help="Write the claim (statement + proof) here."),
    input_file: Optional[Path] = typer.Option(None, "--input", help=INPUT_HELP),
    output_len: Optional[str] = typer.Option(None, "--output-len", help=OUTPUT_LEN_HELP),
) -> None:
    """Run one call and prove it: writes a claim file that `memjit verify` checks.

    Input and output bytes (--input, --output-len) are part of the proven statement.
    A run that ends at `unreachable` is proven as a trap statement; other traps exit 3."""
    from memjit.claims import prove_claim
    from memjit.errors import BadInput

    input_bytes = read_file(input_file) if input_file is not None else b""
    claim = prove_claim(read_file(wasm), export, list(args or ()), input_bytes=input_bytes,
                        output_len=_parse_output_len(output_len))
    data = claim.encode()
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise BadInput(f"cannot write {out}: {exc.strerror or exc}") from None
    st = claim.statement
    outcome = f"trap: {st.trap}" if st.trap else "result: " + (
        "(none)" if st.result is None else str(st.result - (st.result >> 31 << 32)))
    typer.echo(f"{outcome}\nsteps: {st.steps}")
    _echo_io(st.input, st.output, output_len is not None, None)
    typer.echo(f"claim: {out} ({len(data)} bytes)")


@app.command("verify")
def verify_cmd(
    proof: Path = typer.Argument(..., help="Claim file written by `memjit prove`."),
    program: Optional[Path] = typer.Option(None, "--program", help="The worker module (.wasm)."),
    vk: Optional[Path] = typer.Option(None, "--vk", help="Its verification key (from `memjit vk`)."),
    output_file: Optional[Path] = typer.Option(
        None, "--output", help="Save the claim's output bytes here once it verifies."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Verify a claim against a module or its verification key (exit 0 valid, 1 invalid)."""
    from memjit.claims import vk_of
    from memjit.errors import BadInput, Rejected
    from verifier.claims import ClaimFormatError, decode_claim, verify_claim

    if (program is None) == (vk is None):
        raise BadInput("give exactly one of --program WASM or --vk VK")
    key = vk_of(read_file(program)) if program is not None else read_file(vk)
    data = read_file(proof)
    try:
        st = decode_claim(data).statement
    except ClaimFormatError as exc:
        raise BadInput(f"malformed claim {proof}: {exc}") from None
    verdict = verify_claim(data, key)
    result = None if st.result is None else st.result - (st.result >> 31 << 32)
    if json_out:
        emit_json({"valid": verdict.valid, "reason": verdict.reason, "export": st.export,
                   "args": [a - (a >> 31 << 32) for a in st.args], "result": result,
                   "trap": st.trap, "steps": st.steps, "security_bits": verdict.security_bits,
                   **_io_fields(st.input, st.output, st.output_len > 0)})
    elif verdict.valid:
        outcome = f"trapped ({st.trap})" if st.trap else \
            f"returned {'(none)' if result is None else result}"
        typer.echo(f"valid: {st.export} {outcome} after {st.steps} steps "
                   f"({verdict.security_bits}-bit security)")
        _echo_io(st.input, st.output, st.output_len > 0, output_file)
    if not verdict.valid:
        raise Rejected(f"invalid claim: {verdict.reason}")
    _save_output(output_file, st.output)


@bench_app.command("vm", cls=_IntArgsCommand)
def bench_vm_cmd(
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    export: str = typer.Option(..., "--export", help="Exported function to call."),
    args: Optional[List[int]] = typer.Option(None, "--args", help="Integer arguments."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Prove and verify one call of a worker: rows, columns, times, proof size, memory."""
    from benchmarks.vm import bench_vm

    result = bench_vm(read_file(wasm), export, list(args or ()))
    if json_out:
        emit_json(result)
    else:
        for key, value in result.items():
            typer.echo(f"{key:>16}: {value}")


def _worker_fields(worker: "Worker") -> dict:
    """A worker as plain JSON-able fields (keys and hashes in hex)."""
    from verifier.claims import vk_digest

    return {"id": worker.id, "owner": worker.owner.hex(), "cid": worker.cid, "task": worker.task,
            "vk": None if worker.vk is None else vk_digest(worker.vk).hex(),
            "stake": worker.stake, "usefulness": worker.usefulness, "status": worker.status,
            "registered_at": worker.registered_at, "last_used_at": worker.last_used_at,
            "unbonding_amount": worker.unbonding_amount, "unbonding_at": worker.unbonding_at}


@worker_app.command("add")
def worker_add(
    ctx: typer.Context,
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    stake: int = typer.Option(..., "--stake", help="Stake to bond (SWT units; at least the minimum)."),
    owner: str = typer.Option("default", "--owner", help="Owner identity (created if new)."),
    task: str = typer.Option("digits", "--task", help="Task the worker serves."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Register a worker: store the module, sign with the owner's BLS key, bond the stake."""
    from memjit.identity import load_or_create
    from memjit.ledger import Ledger
    from memjit.registry import register
    from memjit.store import Store

    module = read_file(wasm)
    with Ledger(ctx.obj) as ledger:
        worker = register(ledger, Store(ctx.obj), load_or_create(ctx.obj, owner), module, stake,
                          task)
    if json_out:
        emit_json(_worker_fields(worker))
    else:
        typer.echo(f"registered worker {worker.id}\ncid: {worker.cid}\nstake: {worker.stake}")


@worker_app.command("list")
def worker_list(
    ctx: typer.Context,
    task: Optional[str] = typer.Option(None, "--task", help="Only the workers of this task."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List registered workers with stake, usefulness and status."""
    from rich.console import Console
    from rich.table import Table

    from memjit.ledger import Ledger

    with Ledger(ctx.obj) as ledger:
        workers = ledger.workers(task)
    if json_out:
        emit_json({"workers": [_worker_fields(w) for w in workers]})
        return
    table = Table(title=f"{len(workers)} worker(s)")
    for column in ("id", "task", "stake", "usefulness", "status", "cid"):
        table.add_column(column, justify="right" if column in ("stake", "usefulness") else "left")
    for w in workers:
        table.add_row(w.id[:16], w.task, str(w.stake), f"{w.usefulness / 1e6:.3f}", w.status, w.cid)
    Console(highlight=False, width=200).print(table)


@worker_app.command("show")
def worker_show(
    ctx: typer.Context,
    worker_id: str = typer.Argument(..., metavar="ID", help="Worker id (hex)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show one worker: owner, CID, VK digest, stake, unbonding, usefulness."""
    from memjit.ledger import Ledger

    with Ledger(ctx.obj) as ledger:
        fields = _worker_fields(ledger.worker(worker_id))
    if json_out:
        emit_json(fields)
    else:
        for key, value in fields.items():
            typer.echo(f"{key:>16}: {'-' if value is None else value}")


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


if __name__ == "__main__":
    main()
