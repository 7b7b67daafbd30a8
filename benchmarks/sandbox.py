"""Sandbox benchmark: per-call overhead on a cached module, and the wall time of each worker.

`python -m benchmarks.sandbox [--calls N] [--json]`. The overhead is the median wall time of
`memjit.runtime.sandbox.run` on a trivial export (fresh Store + Instance per call, as always), with and
without a linear memory; the issue's target is <= 50 us. Worker times are medians too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable, Sequence

import wasmtime

from memjit.runtime.sandbox import run
from memjit.workers import load

TRIVIAL = {
    "no_memory": '(module (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))',
    "memory_1_page": (
        '(module (memory (export "memory") 1)'
        ' (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))'
    ),
}

WORKER_CALLS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("fib", "fib", (20,)),
    ("fib", "fib", (25,)),
    ("crc32", "crc32", (4096, 1)),
    ("sort", "sort", (1024, 7)),
    ("sort", "sort", (4096, 7)),
    ("mlp", "classify", (3,)),
    ("mlp", "classify_input", ()),
)


def median_us(fn: Callable[[], object], calls: int) -> float:
    """Median wall time of `fn()` in microseconds, after a warm-up of calls // 10."""
    for _ in range(max(calls // 10, 1)):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def bench_sandbox(calls: int = 5000) -> dict:
    """Call overhead (us) per trivial module and (us, fuel, result) per worker call."""
    overhead = {}
    for name, wat in TRIVIAL.items():
        module = wasmtime.wat2wasm(wat)
        overhead[name] = round(median_us(lambda m=module: run(m, "f", [1]), calls), 2)
    workers = []
    for name, export, args in WORKER_CALLS:
        module = load(name)
        result = run(module, export, list(args))
        repeat = max(10, min(calls, int(0.5 / max(result.elapsed_s, 1e-6))))
        us = median_us(lambda m=module, e=export, a=list(args): run(m, e, a), repeat)
        workers.append(
            {
                "call": f"{name}.{export}({', '.join(map(str, args))})",
                "result": list(result.results),
                "fuel": result.fuel_used,
                "median_us": round(us, 1),
                "mfuel_per_s": round(result.fuel_used / us, 1),
            }
        )
    return {"call_overhead_us": overhead, "workers": workers}


def main(argv: Sequence[str] | None = None) -> None:
    """Print the benchmark as a table, or as one JSON object with --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per overhead measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options = parser.parse_args(argv)
    report = bench_sandbox(options.calls)
    if options.json:
        print(json.dumps(report, sort_keys=True))
        return
    for name, us in report["call_overhead_us"].items():
        print(f"call overhead, trivial export, {name:>14}: {us:8.2f} us (median)")
    print(f"{'worker call':<28}{'result':>14}{'fuel':>12}{'median us':>12}{'Mfuel/s':>10}")
    for row in report["workers"]:
        result = " ".join(map(str, row["result"]))
        print(f"{row['call']:<28}{result:>14}{row['fuel']:>12}{row['median_us']:>12}{row['mfuel_per_s']:>10}")


if __name__ == "__main__":
    main()
