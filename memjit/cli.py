"""The `memjit` command line (DESIGN.md, "CLI contract").

Every command is a thin shell over a Python API; errors become one line on stderr and the
documented exit code (0 ok, 1 rejected, 2 bad input, 3 worker fault).
"""

from __future__ import annotations

import json
import re
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
import typer.core

from memjit.errors import MemjitError

if TYPE_CHECKING:
    from memjit.batcher import Batcher, BatchRecord
    from memjit.ledger import Ledger, Worker
    from memjit.tracer import Trace

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: prove/verify timings and sizes.")
app.add_typer(bench_app, name="bench")
worker_app = typer.Typer(no_args_is_help=True, help="The worker registry: add, list, show.")
app.add_typer(worker_app, name="worker")
batch_app = typer.Typer(no_args_is_help=True, help="Rollup batches: commit, list, show, audit, proof, revert.")
app.add_typer(batch_app, name="batch")

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
    """Tour the engine (store, sandbox, trace, prove, verify), then run the market: register
    the digits workers, send requests, print the leaderboard (trained models rise, cheats are
    slashed)."""
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
    series: str = typer.Option("fibonacci,range_check,vm_crc32", help="Comma-separated series: fibonacci, range_check, vm_crc32 (the VM AIR proving crc32(n), up to 2^20 rows)."),
    min_log: int = typer.Option(10, "--min-log", help="Smallest trace: 2^min-log rows."),
    max_log: int = typer.Option(20, "--max-log", help="Largest trace: 2^max-log rows."),
    repeats: int = typer.Option(3, "--repeats", help="Runs per point (medians are reported)."),
    params_log: int = typer.Option(16, "--params-log", help="Trace size of the blowup/queries experiment (0: skip)."),
    params_series: str = typer.Option("fibonacci", "--params-series", help="Series of the blowup/queries experiment."),
) -> None:
    """Trace-size experiments: per-phase prove time, verify time, proof size, peak memory."""
    from benchmarks.sweep import run_sweep

    run_sweep(out, [s.strip() for s in series.split(",") if s.strip()], min_log, max_log,
              repeats, params_log or None, params_series=params_series)


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
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (with phase times)."),
) -> None:
    """Run one call and prove it: writes a claim file that `memjit verify` checks.

    Input and output bytes (--input, --output-len) are part of the proven statement.
    A run that traps with a provable trap (unreachable, divide by zero, overflow, indirect-call
    faults) is proven as a trap statement; other traps (out-of-bounds memory) exit 3."""
    from rich.console import Console

    from memjit.claims import prove_claim
    from memjit.errors import BadInput
    from prover import ProverStats

    input_bytes = read_file(input_file) if input_file is not None else b""
    start = time.perf_counter()
    console = Console(stderr=True)
    with console.status("tracing", spinner="dots") if sys.stderr.isatty() else nullcontext() \
            as status:
        stats = ProverStats(on_phase=None if status is None else
                            lambda phase: status.update(f"proving: {phase.replace('_', ' ')}"))
        claim = prove_claim(read_file(wasm), export, list(args or ()), input_bytes=input_bytes,
                            output_len=_parse_output_len(output_len), stats=stats)
    seconds = time.perf_counter() - start
    data = claim.encode()
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise BadInput(f"cannot write {out}: {exc.strerror or exc}") from None
    st = claim.statement
    result = st.signed_result
    if json_out:
        emit_json({"export": st.export, "args": list(args or ()),
                   "result": result, "trap": st.trap, "steps": st.steps, "log_rows": st.log_n,
                   "claim": str(out), "claim_bytes": len(data), "prove_s": round(seconds, 3),
                   "phases_s": {k: round(v, 3) for k, v in stats.phases.items()},
                   **_io_fields(st.input, st.output, output_len is not None)})
        return
    outcome = f"trap: {st.trap}" if st.trap else "result: " + ("(none)" if result is None else str(result))
    typer.echo(f"{outcome}\nsteps: {st.steps} (trace of 2^{st.log_n} rows)")
    _echo_io(st.input, st.output, output_len is not None, None)
    typer.echo(f"claim: {out} ({len(data)} bytes, proved in {seconds:.2f} s)")


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
    module = read_file(program) if program is not None else None
    key = vk_of(module) if module is not None else read_file(vk)
    data = read_file(proof)
    try:
        st = decode_claim(data).statement
    except ClaimFormatError as exc:
        raise BadInput(f"malformed claim {proof}: {exc}") from None
    verdict = verify_claim(data, key)
    result = st.signed_result
    if json_out:
        emit_json({"valid": verdict.valid, "reason": verdict.reason, "export": st.export,
                   "args": _statement_args(st.args, module, st.export), "result": result,
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


def _statement_args(words: tuple[int, ...], module: bytes | None, export: str) -> list[int]:
    """A statement's argument words as the export's signed arguments (with the module; a
    verification key alone has no types: then one signed i32 per word, an i64 as two)."""
    from memjit.wasm import load
    from memjit.wasm.program import typed_results

    if module is not None:
        params = load(module).exports.get(export)
        if params is not None and len(params.params) + params.params.count("i64") == len(words):
            return list(typed_results(params.params, words))
    return [a - (a >> 31 << 32) for a in words]


@bench_app.command("vm", cls=_IntArgsCommand)
def bench_vm_cmd(
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    export: str = typer.Option(..., "--export", help="Exported function to call."),
    args: Optional[List[int]] = typer.Option(None, "--args", help="Integer arguments."),
    repeats: int = typer.Option(1, "--repeats", min=1, max=50,
                                help="Steady-state proofs; the median is reported."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Prove and verify one call of a worker: rows, columns, times, proof size, memory."""
    from benchmarks.vm import bench_vm

    result = bench_vm(read_file(wasm), export, list(args or ()), repeats=repeats)
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


@app.command("request")
def request_cmd(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="Task to serve the request (e.g. digits)."),
    input_file: Path = typer.Option(..., "--input", help="Input bytes (digits: a 64-byte 8x8 image, pixels 0..16)."),
    label: Optional[int] = typer.Option(None, "--label", help="The true label, to score the answers against; default: the consensus of the verified answers."),
    top_k: int = typer.Option(5, "--top-k", help="How many workers to ask."),
    requester: str = typer.Option("requester", "--requester", help="Requester identity (created, and funded by the genesis grant, if new)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Ask the top workers of a task; every answer is proven and verified, cheats are slashed.

    Prints the best verified answer; exits 1 (3 if every worker faulted) when none verified."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from memjit.errors import Rejected, WorkerFault
    from memjit.identity import load_or_create
    from memjit.ledger import Ledger
    from memjit.pool import request
    from memjit.store import Store

    input_bytes = read_file(input_file)
    with Ledger(ctx.obj) as ledger, Progress(console=Console(stderr=True), transient=True,
                                             disable=not sys.stderr.isatty()) as progress:
        answers = progress.add_task("proving answers", total=None)
        result = request(ledger, Store(ctx.obj), load_or_create(ctx.obj, requester), task,
                         input_bytes, label=label, top_k=top_k,
                         on_delivery=lambda worker, _: progress.advance(answers))
    best = result.best
    if json_out:
        emit_json({"request": result.seq, "scored_against": result.scored_against,
                   "result": None if best is None else best.result,
                   "worker": None if best is None else best.worker,
                   "calls": [asdict(call) for call in result.calls]})
    else:
        if best is not None:
            typer.echo(f"result: {best.result} (worker {best.worker[:16]}, "
                       f"score {best.score / 1e6:.3f})")
        typer.echo(f"request {result.seq}: scored against "
                   f"{'-' if result.scored_against is None else result.scored_against}"
                   f"{' (consensus)' if label is None else ''}")
        table = Table()
        for column in ("worker", "outcome", "result", "score", "fee", "reward", "slashed",
                       "reason"):
            table.add_column(column)
        for c in result.calls:
            table.add_row(c.worker[:16], c.outcome, "-" if c.result is None else str(c.result),
                          f"{c.score / 1e6:.3f}", str(c.fee), str(c.reward), str(c.slashed),
                          c.reason)
        Console(highlight=False, width=200).print(table)
    if best is None:
        error = WorkerFault if all(c.outcome == "fault" for c in result.calls) else Rejected
        raise error(f"no verified answer: {len(result.calls)} worker(s) asked, every one "
                    "failed and was slashed")


def _batcher(ledger: "Ledger", home: Path, **config: float) -> "Batcher":
    """A batcher over `ledger` and the content store under `home` (BatchConfig overrides)."""
    from memjit.batcher import BatchConfig, Batcher
    from memjit.store import Store

    return Batcher(ledger, Store(home), home, BatchConfig(**config))


def _batch_fields(record: "BatchRecord", now: float) -> dict:
    """A committed batch as plain JSON-able fields (hashes and keys in hex)."""
    h = record.header
    return {"number": h.number, "hash": h.hash.hex(), "status": record.status(now),
            "prev_hash": h.prev_hash.hex(), "state_root_before": h.state_root_before.hex(),
            "state_root_after": h.state_root_after.hex(), "facts_root": h.facts_root.hex(),
            "fact_count": h.fact_count, "diff_digest": h.diff_digest.hex(), "minted": h.minted,
            "timestamp": h.timestamp_ms / 1000, "committed_at": record.committed_at,
            "final_at": record.final_at, "data_cid": record.data_cid,
            "scores": {w.hex(): s for w, s in h.scores},
            "committee": [k.hex() for k in h.committee], "signature": h.signature.hex()}


@batch_app.command("commit")
def batch_commit(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Commit every pending fact, due or not."),
    max_facts: int = typer.Option(1000, "--max-facts", help="Cut a batch at this many facts."),
    max_age: float = typer.Option(60.0, "--max-age", help="...or once the oldest pending fact is this old (s)."),
    window: float = typer.Option(3600.0, "--challenge-window", help="Seconds before a batch is final."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Cut and commit the batches that are due: signed by the committee, one transaction each."""
    from memjit.errors import BadInput
    from memjit.ledger import Ledger

    if max_facts < 1 or max_age < 0 or window < 0:
        raise BadInput("--max-facts must be positive, --max-age and --challenge-window >= 0")
    with Ledger(ctx.obj) as ledger:
        batcher = _batcher(ledger, ctx.obj, max_facts=max_facts, max_age_s=max_age,
                           challenge_window_s=window)
        headers = batcher.commit_pending(force)
        fields = [_batch_fields(batcher.record(h.number), ledger.clock()) for h in headers]
        pending = len(batcher.pending())
    if json_out:
        emit_json({"committed": fields, "pending_facts": pending})
        return
    for f in fields:
        typer.echo(f"committed batch {f['number']} {f['hash'][:16]}: {f['fact_count']} facts, "
                   f"{f['minted']} SWT minted, state root {f['state_root_after']}")
    typer.echo(f"{len(fields) or 'no'} batch(es) committed, {pending} fact(s) pending")


@batch_app.command("list")
def batch_list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List committed batches: hash, facts, SWT minted, state roots, committed or final."""
    from rich.console import Console

    from memjit.batcher import batches_table
    from memjit.ledger import Ledger
    from memjit.store import Store

    with Ledger(ctx.obj) as ledger:
        batcher = _batcher(ledger, ctx.obj)
        fields = [_batch_fields(r, ledger.clock()) for r in batcher.records()]
        pending = len(batcher.pending())
        table = None if json_out else batches_table(ledger, Store(ctx.obj), ctx.obj)
    if json_out:
        emit_json({"batches": fields, "pending_facts": pending})
        return
    Console(highlight=False, width=200).print(table)
    typer.echo(f"{pending} fact(s) pending")


@batch_app.command("show")
def batch_show(
    ctx: typer.Context,
    number: int = typer.Argument(..., metavar="N", help="Batch number."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show one batch header: roots, diff digest, scores per worker, committee, status."""
    from memjit.ledger import Ledger

    with Ledger(ctx.obj) as ledger:
        fields = _batch_fields(_batcher(ledger, ctx.obj).record(number), ledger.clock())
    if json_out:
        emit_json(fields)
        return
    for key, value in fields.items():
        if key == "scores":
            value = ", ".join(f"{w[:16]}: {s}" for w, s in value.items()) or "-"
        elif key == "committee":
            value = ", ".join(k[:16] for k in value)
        typer.echo(f"{key:>17}: {value}")


@batch_app.command("audit")
def batch_audit(
    ctx: typer.Context,
    number: int = typer.Argument(..., metavar="N", help="Batch number."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Re-verify every proof of batch N from the content store and recompute its roots
    (exit 1 if anything does not match)."""
    from rich.console import Console
    from rich.table import Table

    from memjit.errors import Rejected
    from memjit.ledger import Ledger

    with Ledger(ctx.obj) as ledger:
        report = _batcher(ledger, ctx.obj).audit(number)
    if json_out:
        emit_json({"number": report.number, "ok": report.ok, "problems": report.problems,
                   "facts": report.facts, "seconds": round(report.seconds, 3)})
    else:
        table = Table(title=f"batch {number}: {len(report.facts)} fact(s) re-verified")
        for col in ("worker", "call", "score", "reward", "proof"):
            table.add_column(col, justify="right" if col in ("score", "reward") else "left")
        for row in report.facts:
            table.add_row(row["worker"][:16], row["call"], str(row["score"]), str(row["reward"]),
                          "valid" if row["ok"] else row["reason"])
        Console(highlight=False, width=200).print(table)
        if report.ok:
            typer.echo(f"batch {number}: signature, proofs, facts root, diff and state roots "
                       f"all check ({report.seconds:.2f} s)")
    if not report.ok:
        raise Rejected(f"batch {number} fails its audit: {report.problems[0]}")


@batch_app.command("proof")
def batch_proof(
    ctx: typer.Context,
    worker_id: str = typer.Argument(..., metavar="WORKER", help="Worker id (64 hex digits)."),
    number: Optional[int] = typer.Option(None, "--batch", help="Batch number (default: the last)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Prove a worker's account (or its absence) under a batch's state root; the proof checks
    offline with memjit.smt.verify_proof(state_root, key, leaf, proof)."""
    from memjit.batch_state import Account
    from memjit.ledger import Ledger

    with Ledger(ctx.obj) as ledger:
        p = _batcher(ledger, ctx.obj).prove(worker_id, number)
    account = None if p.leaf is None else Account.decode(p.leaf).__dict__
    fields = {"batch": p.number, "batch_hash": p.batch_hash.hex(), "state_root": p.state_root.hex(),
              "key": p.key.hex(), "included": p.leaf is not None, "account": account,
              "leaf": None if p.leaf is None else p.leaf.hex(), "proof": p.proof.hex(),
              "valid": p.verify()}
    if json_out:
        emit_json(fields)
        return
    for key, value in fields.items():
        typer.echo(f"{key:>10}: {'-' if value is None else value}")


@batch_app.command("revert")
def batch_revert(
    ctx: typer.Context,
    number: int = typer.Argument(..., metavar="N", help="First batch to revert."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Revert batches N..last while still in their challenge window: facts pending again."""
    from memjit.ledger import Ledger

    with Ledger(ctx.obj) as ledger:
        batcher = _batcher(ledger, ctx.obj)
        reverted = batcher.revert(number)
        root = batcher.tree().root.hex()
        pending = len(batcher.pending())
    if json_out:
        emit_json({"reverted": reverted, "state_root": root, "pending_facts": pending})
    else:
        typer.echo(f"reverted batch(es) {', '.join(map(str, sorted(reverted)))}; state root "
                   f"{root}; {pending} fact(s) pending")


@batch_app.command("committee")
def batch_committee(
    ctx: typer.Context,
    add: Optional[str] = typer.Option(None, "--add", help="Add the key NAME under --home/keys (created if new)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the committee that signs batches (the local node plus configured keys)."""
    from memjit.batch_committee import NODE_KEY, add_local, members
    from memjit.ledger import Ledger

    with Ledger(ctx.obj) as ledger:
        if add is not None:
            add_local(ledger, ctx.obj, add)
        found = [{"name": m.name, "public_key": m.public_key.hex()} for m in members(ledger)]
    if json_out:
        emit_json({"committee": found})
    else:
        for m in found:
            typer.echo(f"{m['name']:>16}: {m['public_key']}")
        if all(m["name"] != NODE_KEY for m in found):
            typer.echo(f"the local key {NODE_KEY!r} joins at the first commit")


@bench_app.command("batcher")
def bench_batcher_cmd(
    accounts: int = typer.Option(10_000, "--accounts", help="Worker accounts in the state tree."),
    sizes: str = typer.Option("10,100,1000", "--sizes", help="Comma-separated batch sizes (facts)."),
    committee: int = typer.Option(1, "--committee", help="Committee size (the node plus N-1 keys)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Batch commit throughput, sparse Merkle tree update/proof times, share of BLS."""
    from benchmarks.batcher import bench_batcher, print_report
    from memjit.errors import BadInput

    try:
        batch_sizes = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        batch_sizes = []
    if not batch_sizes or min(batch_sizes) < 1 or accounts < 1 or not 1 <= committee <= 255:
        raise BadInput("--sizes and --accounts must be positive, --committee in 1..255")
    result = bench_batcher(accounts, batch_sizes, committee)
    if json_out:
        emit_json(result)
    else:
        print_report(result)


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
