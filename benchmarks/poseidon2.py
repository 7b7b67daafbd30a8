"""Poseidon2 throughput: permutations per second of the compiled kernel (prover.poseidon2) and
of the numpy reference (circuits.poseidon2), on random states.

    python -m benchmarks.poseidon2 [--log-n 18] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from numba import get_num_threads

from circuits import poseidon2 as ref
from circuits.field import P
from prover import poseidon2 as fast


def bench_poseidon2(log_n: int = 18, repeats: int = 3, seed: int = 1) -> dict:
    """Median permutations/s of the compiled kernel over 2^log_n states, and of the reference."""
    states = np.random.default_rng(seed).integers(0, P, size=(1 << log_n, 16), dtype=np.uint64)
    fast.permute(states[:64])  # compile (or load the cache) outside the timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fast.permute(states)
        times.append(time.perf_counter() - start)
    small = states[:4096]
    start = time.perf_counter()
    ref.permute(small)
    ref_s = time.perf_counter() - start
    return {"states": len(states), "threads": get_num_threads(),
            "numba_perm_per_s": round(len(states) / statistics.median(times)),
            "reference_perm_per_s": round(len(small) / ref_s)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-n", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for key, value in bench_poseidon2(args.log_n, args.repeats).items():
        print(f"{key:>22}: {value}")
