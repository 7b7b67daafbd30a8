"""`memjit bench precompiles`: the digits workers on memjit's precompiles beside their plain-C
versions, and the i64 workers' rows per wasm instruction (see docs/precompiles.md)."""

from __future__ import annotations

from benchmarks.vm import bench_vm
from memjit.market.tasks import read_test_set
from memjit.runtime.tracer import trace_checked
from memjit.workers import WORKERS_DIR
from memjit.workers.train_digits import read_header

DIGITS = ("large", "large_dot", "xl_dot")
"""Proven: the plain 64-32-10 model, the same on the precompiles, the 64-256-10 one."""
I64 = (("fnv64", "fnv", [280, 7]), ("mix64", "mix", [12, 7]))


def macs(name: str) -> int:
    """Multiply-accumulates of one answer of digits_<name>: 64 h + 10 h."""
    model = read_header(WORKERS_DIR / f"digits_{name.removesuffix('_dot')}_weights.h")
    return (64 + 10) * model["W1"].shape[0]


def bench_precompiles(repeats: int = 3, workers: tuple[str, ...] = DIGITS) -> dict:
    """Per digits worker: steps, trace rows, tensor-table rows, rows per MAC, prove time
    (median of ``repeats``) and per MAC; per i64 worker: rows per wasm instruction."""
    image = read_test_set()[0][0].tobytes()
    digits = []
    for name in workers:
        module = (WORKERS_DIR / f"digits_{name}.wasm").read_bytes()
        r = bench_vm(module, "classify", [], repeat_verify=3, repeats=repeats, input_bytes=image)
        n = macs(name)
        table = n // 4 if name.endswith("_dot") else 0
        digits.append({"worker": name, "macs": n, "steps": r["steps"], "table_rows": table,
                       "trace_rows": r["trace_rows"], "columns": r["columns"],
                       "table_rows_per_mac": round(table / n, 3),
                       "steps_per_mac": round(r["steps"] / n, 2),
                       "prove_s": r["prove_s"], "prove_s_range": r["prove_s_range"],
                       "prove_us_per_mac": round(1e6 * r["prove_s"] / n, 1),
                       "verify_ms": r["verify_ms"], "proof_kb": r["proof_kb"]})
    i64 = []
    for name, export, args in I64:
        tr = trace_checked((WORKERS_DIR / f"{name}.wasm").read_bytes(), export, args)
        i64.append({"worker": name, "call": f"{export}{tuple(args)}", "rows": tr.steps,
                    "wasm_instructions": tr.fuel, "rows_per_instruction":
                    round(tr.steps / tr.fuel, 2)})
    return {"digits": digits, "i64": i64}
