"""`memjit bench vm`: trace, prove and verify one call of a worker; report sizes and speed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.stark import peak_rss_mb
from circuits.wasm_vm import VmAir, VmInputs, decode_vk
from memjit.runtime.claims import prove_claim, vk_of
from prover import ProverStats
from verifier.claims import verify_claim

WARM_UP = Path(__file__).resolve().parent.parent / "memjit" / "workers" / "fib.wasm"


def bench_vm(module: bytes, export: str, args: list[int], repeat_verify: int = 10,
             repeats: int = 1, input_bytes: bytes = b"") -> dict:
    """Prove ``export(*args)`` and verify it (median of runs).

    Two prove times: ``first_prove_s`` is the first proof of this size in the process (after a
    JIT warm-up on a tiny claim), which also pays for faulting in fresh pages; ``prove_s`` is
    the median of the next ``repeats`` proofs (``prove_s_runs``, sorted; ``prove_s_range``), the
    steady state of a prover node serving requests; phases are those of the median proof."""
    prove_claim(WARM_UP.read_bytes(), "fib", [3])
    vk = vk_of(module)
    start = time.perf_counter()
    prove_claim(module, export, args, input_bytes=input_bytes)
    first_prove_s = time.perf_counter() - start
    runs = []
    for _ in range(max(1, repeats)):
        stats = ProverStats()
        start = time.perf_counter()
        claim = prove_claim(module, export, args, stats=stats, input_bytes=input_bytes)
        runs.append((time.perf_counter() - start, stats))
    runs.sort(key=lambda r: r[0])
    prove_s, stats = runs[(len(runs) - 1) // 2]
    data = claim.encode()
    times = []
    for _ in range(repeat_verify):
        start = time.perf_counter()
        verdict = verify_claim(data, vk)
        times.append(time.perf_counter() - start)
    if not verdict.valid:
        raise RuntimeError(f"benchmark claim did not verify: {verdict.reason}")
    st = claim.statement
    air = VmAir(VmInputs(decode_vk(vk), st))
    return {
        "export": export,
        "args": list(args),
        "steps": st.steps,
        "trace_rows": air.trace_length,
        "main_columns": air.width,
        "aux_columns": air.aux_width,
        "columns": air.width + 4 * air.aux_width,
        "constraints": len(air.constraint_degrees()),
        "max_degree": air.max_degree(),
        "first_prove_s": round(first_prove_s, 3),
        "prove_s": round(prove_s, 3),
        "prove_s_range": [round(runs[0][0], 3), round(runs[-1][0], 3)],
        "prove_s_runs": [round(t, 3) for t, _ in runs],
        "repeats": len(runs),
        "verify_ms": round(1000 * float(np.median(times)), 2),
        "proof_kb": round(len(claim.proof) / 1024, 1),
        "claim_kb": round(len(data) / 1024, 1),
        "security_bits": verdict.security_bits,
        "limited_by": verdict.limited_by,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "steps_per_s": round(st.steps / prove_s),
        "phases_s": {k: round(v, 3) for k, v in stats.phases.items()},
    }
