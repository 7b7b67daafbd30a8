"""The engine commands: run, trace, vk, prove, verify (one call of one module, its proof and
its verification)."""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from memjit.cli.common import check_output, echo_io, emit_json, io_fields, read_file, write_output
from memjit.cli.int_args import IntArgsCommand

if TYPE_CHECKING:
    from memjit.runtime.sandbox import Limits
    from memjit.runtime.tracer import Trace
    from memjit.runtime.wasm.program import Program

app = typer.Typer()


INPUT_HELP = "Bytes to write to the worker's memjit_input buffer before the call."

OUTPUT_LEN_HELP = ("Output bytes to read from the worker's memjit_output buffer after the call: "
                   "a count, or 'result' for the call's result.")

OUTPUT_HELP = "Save the output bytes here (otherwise they are printed in hex)."

SEGMENT_HELP = ("Prove a longer run in segments of at most this many trace rows (2^K, K from "
                "6 to 22; default: the largest that fits the memory available now).")

CLUSTER_HELP = ("Where segments are proven: 'local' (a Dask LocalCluster of --workers processes, "
                "started only for a run of several segments), 'serial' (in this process), or a "
                "Dask scheduler tcp://HOST:8786.")

CAP_HELP = ("Memory cap in MiB (default 64): the key of a module that grows its memory binds "
            "it, so vk, prove and verify --program must agree on it.")


@app.command("run", cls=IntArgsCommand)
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
    from memjit.runtime.sandbox import Limits, run
    from memjit.runtime.tensor_io import output_length, read_output
    from memjit.runtime.wasm import load

    given = {"fuel": fuel, "timeout_s": timeout, "memory_mb": memory_mb}
    limits = Limits(**{key: value for key, value in given.items() if value is not None})
    if output_file is not None:
        check_output(output_file)
    parsed_len = _parse_output_len(output_len)
    module = read_file(wasm)
    input_bytes = read_file(input_file) if input_file is not None else b""
    program = load(module)
    _check_memory_cap(program, limits)
    result = run(module, export, list(args or ()), limits, input_bytes)
    output = read_output(program, result.memory, output_length(parsed_len, result.results))
    if output_file is not None:
        write_output(output_file, output)
    if json_out:
        emit_json(
            {
                "export": export,
                "results": list(result.results),
                "fuel_used": result.fuel_used,
                "elapsed_s": result.elapsed_s,
                "memory_bytes": None if result.memory is None else len(result.memory),
                **io_fields(input_bytes, output, output_len is not None),
            }
        )
    else:
        typer.echo("result: " + (" ".join(str(r) for r in result.results) or "(none)"))
        typer.echo(f"fuel: {result.fuel_used}")
        echo_io(input_bytes, output, output_len is not None, output_file)


def _parse_output_len(text: str | None) -> int | str | None:
    """--output-len: a byte count, 'result', or absent."""
    from memjit.errors import BadInput
    from memjit.runtime.tensor_io import RESULT

    if text is None or text == RESULT:
        return text
    if not text.isdigit():
        raise BadInput(f"--output-len must be a byte count or {RESULT!r}, got {text!r}")
    return int(text)


def _check_memory_cap(program: "Program", limits: "Limits") -> None:
    """Refuse (BadInput) a memory cap below the module's declared initial memory: such a
    module could never start under it, whatever it is called with."""
    from memjit.errors import BadInput
    from memjit.runtime.wasm.program import PAGE

    needed = program.mem_min * PAGE if program.has_memory else 0
    if needed > limits.memory_mb << 20:
        raise BadInput(f"--memory-mb {limits.memory_mb} is below the module's initial memory "
                       f"({program.mem_min} pages, {-(-needed // (1 << 20))} MiB)")


@app.command("trace", cls=IntArgsCommand)
def trace_cmd(
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    export: str = typer.Option(..., "--export", help="Exported function to call."),
    args: Optional[List[int]] = typer.Option(
        None, "--args", help="Integer arguments, decimal, negative allowed: --args 1 -2 3."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Save the trace as .npz."),
    max_steps: int = typer.Option(1 << 24, "--max-steps", min=1, max=1 << 40,
                                  help="Longest trace to record."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Trace one call (cross-checked against wasmtime): steps, opcode histogram, memory footprint.

    A call that traps is still traced (and saved); the command then exits 3 naming the trap.
    """
    from memjit.errors import BadInput, Trap
    from memjit.runtime.sandbox import Limits
    from memjit.runtime.tracer import trace_checked

    saved = None
    if out is not None:
        check_output(out, "trace")  # a directory is refused, not given a sibling DIR.npz
        saved = out if out.suffix == ".npz" else out.with_name(out.name + ".npz")
        check_output(saved, "trace")
    tr = trace_checked(read_file(wasm), export, list(args or ()), Limits(), max_steps)
    if saved is not None:
        try:
            tr.save(saved)
        except OSError as exc:
            raise BadInput(f"cannot write the trace to {saved}: {exc.strerror or exc}") from None
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
    memory_mb: int = typer.Option(64, "--memory-mb", help=CAP_HELP),
) -> None:
    """Print a module's verification-key digest (hex); --out saves the key itself. A module
    whose instantiation traps, or that the VM cannot prove, has none (exit 2)."""
    from memjit.runtime.claims import vk_of
    from verifier.claims import vk_digest

    if out is not None:
        check_output(out, "verification key")
    vk = vk_of(read_file(wasm), _memory_cap(memory_mb))
    if out is not None:
        write_output(out, vk, "verification key")
    typer.echo(vk_digest(vk).hex())


@app.command("prove", cls=IntArgsCommand)
def prove_cmd(
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    export: str = typer.Option(..., "--export", help="Exported function to call."),
    args: Optional[List[int]] = typer.Option(
        None, "--args", help="Integer arguments, decimal, negative allowed: --args 1 -2 3."
    ),
    out: Path = typer.Option(..., "--out", help="Write the claim (statement + proof) here."),
    input_file: Optional[Path] = typer.Option(None, "--input", help=INPUT_HELP),
    output_len: Optional[str] = typer.Option(None, "--output-len", help=OUTPUT_LEN_HELP),
    memory_mb: int = typer.Option(64, "--memory-mb", help=CAP_HELP),
    segment_rows: Optional[str] = typer.Option(None, "--segment-rows", help=SEGMENT_HELP),
    cluster: str = typer.Option("local", "--cluster", help=CLUSTER_HELP),
    workers: int = typer.Option(2, "--workers", min=1, max=64,
                                help="Worker processes of the local cluster."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (with phase times)."),
) -> None:
    """Run one call and prove it: writes a claim file that `memjit verify` checks.

    A run longer than a segment (--segment-rows) is proven in segments (continuations), in
    parallel on a Dask cluster (--cluster), and written as one claim.

    Input and output bytes (--input, --output-len) are part of the proven statement.
    A run that traps with a provable trap (unreachable, divide by zero, overflow, indirect-call
    faults, memory out of bounds) is proven as a trap statement; a stack overflow exits 3.
    A module or call outside what the VM proves exits 2; exit 70 is a bug in memjit."""
    from rich.console import Console

    from memjit.runtime.claims import prove_claim
    from memjit.runtime.sandbox import Limits
    from prover import ProverStats

    check_output(out, "claim")
    engine = _engine(cluster, workers)
    segment_log = _segment_log(segment_rows, 1 if engine is None else workers)
    parsed_len = _parse_output_len(output_len)
    input_bytes = read_file(input_file) if input_file is not None else b""
    start = time.perf_counter()
    console = Console(stderr=True)
    with console.status("tracing", spinner="dots") if sys.stderr.isatty() else nullcontext() \
            as status:
        stats = ProverStats(on_phase=None if status is None else
                            lambda phase: status.update(f"proving: {phase.replace('_', ' ')}"))
        try:
            claim = prove_claim(read_file(wasm), export, list(args or ()),
                                input_bytes=input_bytes, output_len=parsed_len, stats=stats,
                                limits=Limits(memory_mb=memory_mb), segment_log=segment_log,
                                engine=engine)
        finally:
            if engine is not None:
                engine.close()
    seconds = time.perf_counter() - start
    data = claim.encode()
    write_output(out, data, "claim")
    st = claim.statement
    result = st.signed_result
    if json_out:
        emit_json({"export": st.export, "args": list(args or ()),
                   "result": result, "trap": st.trap, "steps": st.steps, "log_rows": st.log_n,
                   "segments": max(len(claim.segments), 1),
                   "claim": str(out), "claim_bytes": len(data), "prove_s": round(seconds, 3),
                   "security_bits": stats.security_bits, "limited_by": stats.limited_by,
                   "phases_s": {k: round(v, 3) for k, v in stats.phases.items()},
                   **io_fields(st.input, st.output, output_len is not None)})
        return
    outcome = f"trap: {st.trap}" if st.trap else "result: " + ("(none)" if result is None else str(result))
    shape = f"{len(claim.segments)} segments of at most 2^{st.log_n} rows" if claim.segments \
        else f"trace of 2^{st.log_n} rows"
    typer.echo(f"{outcome}\nsteps: {st.steps} ({shape})")
    echo_io(st.input, st.output, output_len is not None, None)
    typer.echo(f"claim: {out} ({len(data)} bytes, proved in {seconds:.2f} s, "
               f"{stats.security_bits}-bit security)")


@app.command("verify", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def verify_cmd(ctx: typer.Context) -> None:
    """Verify a claim against a module or its verification key (exit 0 valid, 1 invalid).
    `memjit verify --help` for its options."""
    from memjit.cli.verify import verify_command

    verify_command(ctx.args)


def _segment_log(text: str | None, workers: int) -> int:
    """--segment-rows as log2 (2^K or a power of two); default: the largest segment whose
    proof fits the memory available now, shared by ``workers`` local provers."""
    from memjit.errors import BadInput
    from memjit.runtime.segments import available_memory, default_segment_log

    if text is None:
        return default_segment_log(available_memory() // workers)
    base, _, exp = text.strip().partition("^")
    try:
        log = int(exp) if exp and base == "2" else int(base).bit_length() - 1
        if not exp and int(base) != 1 << log:
            raise ValueError
    except ValueError:
        raise BadInput(f"--segment-rows must be 2^K or a power of two, not {text!r}") from None
    return log


def _engine(cluster: str, workers: int):
    """The segment engine of --cluster: None (serial, here), a LocalCluster, or a scheduler."""
    from memjit.errors import BadInput

    if cluster == "serial":
        return None
    if cluster != "local" and not cluster.startswith(("tcp://", "tls://")):
        raise BadInput(f"--cluster must be local, serial or tcp://HOST:PORT, not {cluster!r}")
    from memjit.cluster import DaskEngine

    return DaskEngine(None if cluster == "local" else cluster, workers)


def _memory_cap(memory_mb: int) -> int:
    """A --memory-mb value checked as the sandbox checks it (BadInput otherwise)."""
    from memjit.runtime.sandbox import Limits

    return Limits(memory_mb=memory_mb).memory_mb
