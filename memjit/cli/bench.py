"""`memjit bench ...`: the benchmarks (proving system, VM, trace-size sweeps, batcher, node,
requests from the shell)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from memjit.cli.common import emit_json, output_dir, read_file
from memjit.cli.int_args import IntArgsCommand

app = typer.Typer(no_args_is_help=True, help="Benchmarks: prove/verify timings and sizes.")

MAX_BENCH_SIZE = 10_000_000
"""Most accounts, or facts in a batch, a batcher benchmark builds (its state fits in memory)."""
MAX_PROOF_FACTS = 10_000
"""Most facts in a benchmark batch proof (a chain of segments: memjit.rollup.proving)."""


@app.command("stark")
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


@app.command("sweep")
def bench_sweep(
    out: Path = typer.Option(Path("bench-out"), "--out", help="Directory for CSV, JSON and PNG plots."),
    series: str = typer.Option("fibonacci,range_check,vm_crc32", help="Comma-separated series: fibonacci, range_check, vm_crc32 (the VM AIR proving crc32(n), up to 2^20 rows), vm_segments (crc32 proven in segments, up to 2^24 steps), vm_segments_verify (verification of segmented claims against segments and memory touched)."),
    min_log: int = typer.Option(10, "--min-log", help="Smallest trace: 2^min-log rows."),
    max_log: int = typer.Option(20, "--max-log", help="Largest trace: 2^max-log rows."),
    repeats: int = typer.Option(3, "--repeats", help="Runs per point (medians are reported)."),
    params_log: int = typer.Option(16, "--params-log", help="Trace size of the blowup/queries experiment (0: skip)."),
    params_series: str = typer.Option("fibonacci", "--params-series", help="Series of the blowup/queries experiment."),
    segment_logs: str = typer.Option("16,18,20", "--segment-logs", help="vm_segments: segment sizes 2^K, comma-separated K."),
    cluster_workers: int = typer.Option(0, "--cluster-workers", min=0, max=16, help="vm_segments: also prove on a Dask LocalCluster of this many single-threaded workers (0: serial only)."),
    long_segment_log: int = typer.Option(18, "--long-segment-log", min=6, max=22, help="vm_segments: runs longer than 2^20 steps use this segment size only (the whole grid costs hours)."),
) -> None:
    """Trace-size experiments: per-phase prove time, verify time, proof size, peak memory.
    Series vm_segments proves crc32 filling 2^min-log .. 2^max-log steps (up to 2^24) in
    segments (segments.csv/json/png): every segment size up to 2^20 steps, longer runs at
    --long-segment-log only. Series vm_segments_verify tables the verification of segmented
    claims (segments_verify.csv/json)."""
    from benchmarks.sweep import run_sweep

    output_dir(out, "sweep")
    names = [s.strip() for s in series.split(",") if s.strip()]
    if "vm_segments_verify" in names:
        from benchmarks.segments import verify_growth

        verify_growth(out)
        names.remove("vm_segments_verify")
        if not names:
            return
    if "vm_segments" in names:
        from benchmarks.segments import MAX_LOG_STEPS, run_segments
        from memjit.errors import BadInput

        try:
            logs = tuple(int(k) for k in segment_logs.split(","))
        except ValueError:
            raise BadInput(f"--segment-logs must be integers, not {segment_logs!r}") from None
        if not 6 <= min_log <= max_log <= MAX_LOG_STEPS or not all(6 <= k <= 22 for k in logs):
            raise BadInput(f"vm_segments needs 6 <= --min-log <= --max-log <= {MAX_LOG_STEPS} "
                           f"and segment sizes 2^6 .. 2^22")
        run_segments(out, min_log, max_log, logs, repeats, cluster_workers,
                     long_segment_log=long_segment_log)
        names.remove("vm_segments")
        if not names:
            return
    run_sweep(out, names, min_log, max_log, repeats, params_log or None,
              params_series=params_series)


@app.command("vm", cls=IntArgsCommand)
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


@app.command("precompiles")
def bench_precompiles_cmd(
    repeats: int = typer.Option(3, "--repeats", min=1, max=50,
                                help="Steady-state proofs per worker; the median is reported."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The digits workers on the precompiles beside their plain-C versions (rows per MAC,
    proving time per MAC) and the i64 workers' rows per wasm instruction."""
    from benchmarks.precompiles import bench_precompiles

    result = bench_precompiles(repeats=repeats)
    if json_out:
        emit_json(result)
    else:
        for row in result["digits"] + result["i64"]:
            typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))


@app.command("batcher")
def bench_batcher_cmd(
    accounts: int = typer.Option(10_000, "--accounts", help="Worker accounts in the state tree."),
    sizes: str = typer.Option("10,100,1000", "--sizes", help="Comma-separated batch sizes (facts)."),
    committee: int = typer.Option(1, "--committee", help="Committee size (the node plus N-1 keys)."),
    proof_sizes: str = typer.Option("", "--proof-sizes", help="Comma-separated batch sizes to prove (facts), e.g. 10,100,1000; empty: none."),
    segment_facts: int = typer.Option(0, "--segment-facts", help="With --proof-sizes: at most this many facts per segment STARK (0: as many as a 2^15-row segment holds)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Batch commit throughput, sparse Merkle tree update/proof times, share of BLS; with
    --proof-sizes, batch proofs: prove and verify time, size, peak memory, growth."""
    from benchmarks.batcher import bench_batcher, print_report
    from memjit.errors import BadInput

    try:
        batch_sizes = [int(s) for s in sizes.split(",") if s.strip()]
        proven = [int(s) for s in proof_sizes.split(",") if s.strip()]
    except ValueError:
        batch_sizes = proven = []
    if (not batch_sizes or not 1 <= min(batch_sizes) <= max(batch_sizes) <= MAX_BENCH_SIZE
            or not 1 <= accounts <= MAX_BENCH_SIZE or not 1 <= committee <= 255
            or not all(1 <= n <= MAX_PROOF_FACTS for n in proven)
            or not 0 <= segment_facts <= MAX_PROOF_FACTS):
        raise BadInput(f"--sizes and --accounts must be in 1..{MAX_BENCH_SIZE}, "
                       f"--proof-sizes in 1..{MAX_PROOF_FACTS}, --segment-facts in "
                       f"0..{MAX_PROOF_FACTS}, --committee in 1..255")
    result = bench_batcher(accounts, batch_sizes, committee, proven, segment_facts or None)
    if json_out:
        emit_json(result)
    else:
        print_report(result)


@app.command("network")
def bench_network_cmd(
    nodes: int = typer.Option(8, "--nodes", min=2, max=64, help="DHT nodes on 127.0.0.1."),
    lookups: int = typer.Option(32, "--lookups", min=1, max=1000,
                                help="Provider lookups (blocks provided across the nodes)."),
    batches: int = typer.Option(4, "--batches", min=0, max=64,
                                help="Batches a follower catches up (0: DHT numbers only)."),
    claims: int = typer.Option(2, "--claims", min=1, max=64, help="Claims per batch."),
    churn: bool = typer.Option(False, "--churn", help="Instead: 8 node processes, 3 non-sequencer nodes stopped mid-run and restarted (requests, catch-up, roots)."),
    requests: int = typer.Option(6, "--requests", min=3, max=100, help="--churn: labelled requests sent."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """libp2p DHT on loopback: bootstrap time, publish, find_node and find_providers p50/p95;
    then a follower: bytes per batch, claims re-verified per second, catch-up time for N
    batches over the network. --churn: eight node processes through churn."""
    from benchmarks.network import bench_network

    if churn:
        from benchmarks.churn import bench_churn

        result = bench_churn(requests)
    else:
        result = bench_network(nodes, lookups)
    if batches and not churn:
        from benchmarks.followers import bench_followers

        result.update(bench_followers(batches, claims))
    if json_out:
        emit_json(result)
    else:
        for key, value in result.items():
            typer.echo(f"{key:>22}: {value}")


@app.command("node")
def bench_node_cmd(
    requests: int = typer.Option(8, "--requests", min=1, max=1000, help="Requests to serve (after one warm-up)."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, max=64, help="Requests in flight at once through the gateway."),
    workers: str = typer.Option("constant", "--workers", help="Comma-separated digits workers (digits_NAME.wasm), one operator node each."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Requests through a gateway of a local network (127.0.0.1) vs in-process: requests/s,
    p50/p95 latency, claim checks/s at the gateway, signing's share of the time."""
    from benchmarks.node import bench_node, print_report
    from memjit.errors import BadInput
    from memjit.workers import WORKERS_DIR

    names = tuple(w.strip() for w in workers.split(",") if w.strip())
    if not names or not all((WORKERS_DIR / f"digits_{n}.wasm").is_file() for n in names):
        raise BadInput("--workers: names of digits workers, e.g. constant,small")
    result = bench_node(requests, concurrency, names)
    if json_out:
        emit_json(result)
    else:
        print_report(result)


@app.command("request")
def bench_request_cmd(
    runs: int = typer.Option(5, "--runs", min=1, max=100, help="Timed runs per path (after one warm-up); the median is reported."),
    worker: str = typer.Option("large_dot", "--worker", help="The digits worker asked (digits_NAME.wasm)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """A one-worker `memjit request` timed from the shell (a process per run): through a
    local network's gateway (--node, a warm prover at the operator) and on a local --home."""
    from benchmarks.request import bench_request, print_report
    from memjit.errors import BadInput
    from memjit.workers import WORKERS_DIR

    if not (WORKERS_DIR / f"digits_{worker}.wasm").is_file():
        raise BadInput(f"--worker: no digits_{worker}.wasm among the example workers")
    result = bench_request(runs, worker)
    if json_out:
        emit_json(result)
    else:
        print_report(result)
