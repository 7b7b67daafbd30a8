"""`memjit bench stark`: prove and verify one proof of an example AIR and report the numbers."""

from __future__ import annotations

import resource
import time

import numpy as np

from circuits.examples.fibonacci import FibonacciAir, fibonacci_trace
from circuits.examples.range_check import RangeCheckAir, range_check_trace
from prover import ProverStats, prove
from verifier import DEFAULT_PARAMS, ProofParams, verify
from memjit.errors import BadInput

AIRS = ("fibonacci", "range_check")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def example(air: str, log_rows: int):
    """The AIR class, statement and trace of an example AIR at 2^log_rows rows."""
    if air == "fibonacci":
        trace, pi = fibonacci_trace(1 << log_rows)
        return FibonacciAir, pi, trace
    if air == "range_check":
        values = np.random.default_rng(log_rows).integers(0, 256, 1 << log_rows)
        trace, pi = range_check_trace(values)
        return RangeCheckAir, pi, trace
    raise BadInput(f"unknown AIR {air!r}; choose one of {', '.join(AIRS)}")


def warm_up(air: str) -> None:
    """Compile every numba kernel once, serial and parallel variants (the size crosses every
    small-input threshold), so timings exclude JIT compilation."""
    cls, pi, trace = example(air, 14)
    verify(cls, pi, prove(cls(pi), trace))


def bench_stark(air: str, log_rows: int, params: ProofParams = DEFAULT_PARAMS,
                repeat_verify: int = 20) -> dict:
    """Prove once and verify (median of several runs); times in seconds, sizes in bytes."""
    if not 1 <= log_rows <= 24:
        raise BadInput("--log-rows must be between 1 and 24")
    warm_up(air)
    cls, pi, trace = example(air, log_rows)
    stats = ProverStats()
    start = time.perf_counter()
    proof = prove(cls(pi), trace, params, stats=stats)
    prove_s = time.perf_counter() - start
    times = []
    for _ in range(repeat_verify):
        start = time.perf_counter()
        verdict = verify(cls, pi, proof)
        times.append(time.perf_counter() - start)
    if not verdict.valid:
        raise RuntimeError(f"benchmark proof did not verify: {verdict.reason}")
    return {
        "air": air,
        "log_rows": log_rows,
        "prove_s": round(prove_s, 4),
        "verify_s": round(float(np.median(times)), 5),
        "proof_bytes": len(proof),
        "security_bits": verdict.security_bits,
        "limited_by": verdict.limited_by,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "phases_s": {k: round(v, 4) for k, v in stats.phases.items()},
    }
