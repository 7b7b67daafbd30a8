"""`memjit demo`: the end-to-end tour on the embedded defaults.

Stores the example workers in the content store, runs each in the wasmtime sandbox, traces the
same call with the instrumented runtime (cross-checked against wasmtime), proves and verifies
claims about worker executions with the VM AIR, then STARKs of the example AIRs, printing what
a node operator would look at.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memjit import workers
from memjit.claims import prove_claim, vk_of
from memjit.sandbox import run
from memjit.store import Store
from memjit.tracer import trace_checked
from verifier.claims import verify_claim

PROVEN = {  # worker -> (export, args) proven and verified end to end
    "fib": ("fib", (10,)),
    "crc32": ("crc32", (64, 1)),
    "mlp": ("classify", (3,)),
}
CALLS = {  # worker -> (export, args)
    "fib": ("fib", (15,)),
    "crc32": ("crc32", (512, 1)),
    "sort": ("sort", (1000, 7)),
    "mlp": ("classify", (3,)),
}


def run_demo(home: Path, console: Console | None = None) -> None:
    """Run the demo with state under `home`."""
    from benchmarks.stark import bench_stark

    console = console or Console(width=max(Console().width, 100))
    store = Store(home)
    table = Table(title="Workers: content store, sandbox and tracer")
    for col in ("worker", "call", "result", "fuel", "run ms", "steps", "trace M/s"):
        table.add_column(col, justify="left" if col in ("worker", "call") else "right", no_wrap=True)
    cids = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("running workers", total=len(CALLS))
        for name, (export, args) in CALLS.items():
            module = workers.load(name)
            cids.append((name, store.put(module)))
            result = run(module, export, args)
            trace_checked(module, export, args)  # compile / warm the tracer
            start = time.perf_counter()
            tr = trace_checked(module, export, args)
            elapsed = time.perf_counter() - start
            table.add_row(name, f"{export}({', '.join(map(str, args))})", str(result.results[0]),
                          str(result.fuel_used), f"{result.elapsed_s * 1e3:.2f}", str(tr.steps),
                          f"{tr.steps / elapsed / 1e6:.1f}")
            progress.advance(task)
    console.print(table)
    for name, cid in cids:
        console.print(f"  {name:6} {cid}")

    claims = Table(title="Proven worker executions (VM AIR, >= 100-bit security)")
    for col in ("call", "result", "steps", "rows", "prove s", "verify ms", "KB", "ok"):
        claims.add_column(col, justify="left" if col == "call" else "right", no_wrap=True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("proving worker claims", total=len(PROVEN))
        for name, (export, args) in PROVEN.items():
            module = workers.load(name)
            start = time.perf_counter()
            claim = prove_claim(module, export, args)
            prove_s = time.perf_counter() - start
            data = claim.encode()
            start = time.perf_counter()
            verdict = verify_claim(data, vk_of(module))
            verify_ms = (time.perf_counter() - start) * 1e3
            st = claim.statement
            claims.add_row(f"{name}.{export}({', '.join(map(str, args))})",
                           f"trap {st.trap}" if st.trap else str(st.result), str(st.steps),
                           f"2^{st.log_n}", f"{prove_s:.2f}", f"{verify_ms:.1f}",
                           f"{len(data) / 1024:.0f}", "yes" if verdict.valid else verdict.reason)
            progress.advance(task)
    console.print(claims)

    proofs = Table(title="STARK proofs (>= 100-bit conjectured security)")
    for col in ("AIR", "rows", "prove s", "verify ms", "proof KB", "bits"):
        proofs.add_column(col, justify="right" if col != "AIR" else "left")
    with Progress(console=console, transient=True) as progress:
        cases = [("fibonacci", 16), ("range_check", 14)]
        task = progress.add_task("proving", total=len(cases))
        for air, log_rows in cases:
            r = bench_stark(air, log_rows, repeat_verify=5)
            proofs.add_row(air, f"2^{log_rows}", f"{r['prove_s']:.2f}", f"{r['verify_s'] * 1e3:.1f}",
                           f"{r['proof_bytes'] / 1024:.1f}", str(r["security_bits"]))
            progress.advance(task)
    console.print(proofs)
    console.print(f"state kept under {home}")
