"""Tracer benchmark: traced steps per second on the example workers, numba compile time apart.

`python -m benchmarks.tracer [--repeat N] [--json]`. Each call is timed with its program
already lowered and the kernel compiled (best of N runs of `memjit.runtime.tracer.trace`, which
executes the call twice: a counting run, then the recording run). The kernel's compile time is
measured in a fresh interpreter with an empty numba cache; the first call of a process with a
warm cache (loading the cached machine code) is reported too. The issue's target is >= 1 M
steps/s on the sort worker.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from memjit.runtime.sandbox import run
from memjit.runtime.tracer import trace
from memjit.runtime.wasm import load as lower
from memjit.workers import load

CALLS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("mlp", "classify", (3,)),
    ("crc32", "crc32", (4096, 1)),
    ("fib", "fib", (20,)),
    ("sort", "sort", (2000, 1)),
    ("sort", "sort", (4096, 7)),
    ("fib", "fib", (25,)),
)

_FIRST_CALL = """
import time
t = time.perf_counter()
from memjit.runtime.tracer import trace
from memjit.workers import load
imported = time.perf_counter()
trace(load("fib"), "fib", [5])
print(imported - t, time.perf_counter() - imported)
"""


def first_call_s(cache_dir: str) -> tuple[float, float]:
    """(import s, first trace s) in a fresh interpreter using ``cache_dir`` as numba's cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def bench_call(worker: str, export: str, args: tuple[int, ...], repeat: int) -> dict:
    data = load(worker)
    program = lower(data)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        tr = trace(program, export, args)
        best = min(best, time.perf_counter() - start)
    run(data, export, args)  # compile and cache the module first
    wasmtime_s = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run(data, export, args)
        wasmtime_s = min(wasmtime_s, time.perf_counter() - start)
    row_bytes = sum(c.itemsize * (c.shape[1] if c.ndim == 2 else 1)
                    for c in tr.columns.values())
    return {"call": f"{worker}:{export}{args}", "steps": tr.steps, "trace_s": best,
            "steps_per_s": tr.steps / best, "wasmtime_s": wasmtime_s,
            "trace_mb": tr.steps * row_bytes / 2**20}


def bench_tracer(repeat: int = 5) -> dict:
    """Compile/first-call times and per-call throughput, as one JSON-ready dict."""
    with tempfile.TemporaryDirectory() as cold:
        compile_import, compile_first = first_call_s(cold)
        warm_import, warm_first = first_call_s(cold)  # now the cache is filled
    trace(load("fib"), "fib", [5])  # compile (or load) in this process before timing
    return {
        "numba_compile_s": compile_first,
        "first_call_cached_s": warm_first,
        "import_s": warm_import,
        "calls": [bench_call(w, e, a, repeat) for w, e, a in CALLS],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per call (best is kept)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    opts = parser.parse_args(argv)
    result = bench_tracer(opts.repeat)
    if opts.json:
        print(json.dumps(result))
        return
    print(f"numba compile (empty cache): {result['numba_compile_s']:.2f} s; first call with a "
          f"warm cache: {result['first_call_cached_s']:.2f} s; import: {result['import_s']:.2f} s")
    print(f"{'call':<28}{'steps':>10}{'trace ms':>10}{'M steps/s':>11}{'wasmtime ms':>13}"
          f"{'trace MB':>10}")
    for c in result["calls"]:
        print(f"{c['call']:<28}{c['steps']:>10}{1e3 * c['trace_s']:>10.1f}"
              f"{c['steps_per_s'] / 1e6:>11.2f}{1e3 * c['wasmtime_s']:>13.2f}"
              f"{c['trace_mb']:>10.1f}")


if __name__ == "__main__":
    main()
