"""Timings of the STARK core kernels: `python -m benchmarks.kernels`.

Each kernel is called once untimed first (numba compiles it, or loads it from its on-disk cache;
that warm-up total is printed separately), then the best of several runs is reported.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import numpy as np

from circuits.field import P
from circuits.ntt import coset_intt, intt, lde, ntt
from prover.blake3_batch import grind, hash_pairs, hash_rows
from prover.merkle import MerkleTree
from verifier.merkle import verify_batch


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of `repeats` calls, in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    rng = np.random.default_rng(0)
    small = rng.integers(0, P, (2, 1 << 16), dtype=np.uint64)
    large = rng.integers(0, P, (2, 1 << 20), dtype=np.uint64)
    ext = rng.integers(0, P, (4, 1 << 19), dtype=np.uint64)
    rows8 = rng.integers(0, 256, (1 << 19, 8), dtype=np.uint8)
    rows64 = rng.integers(0, 256, (1 << 19, 64), dtype=np.uint8)
    nodes = rng.integers(0, 256, (1 << 19, 32), dtype=np.uint8)
    lde19 = lde(small, 8, 31).T
    lde23 = lde(large, 8, 31).T
    tree19 = MerkleTree.from_field_rows(lde19)
    queries = sorted(random.Random(0).sample(range(1 << 19), 28))
    opened = [lde19[i].astype("<u4").tobytes() for i in queries]
    siblings = tree19.open(queries)
    seed = bytes(range(32))

    cases: list[tuple[str, Callable[[], object], int]] = [
        ("ntt  2 x 2^16", lambda: ntt(small), 20),
        ("intt 2 x 2^16", lambda: intt(small), 20),
        ("lde  2 x 2^16 -> 2^19 (blowup 8)", lambda: lde(small, 8, 31), 10),
        ("coset_intt 4 x 2^19", lambda: coset_intt(ext, 31), 5),
        ("ntt  2 x 2^20", lambda: ntt(large), 5),
        ("intt 2 x 2^20", lambda: intt(large), 5),
        ("lde  2 x 2^20 -> 2^23 (blowup 8)", lambda: lde(large, 8, 31), 3),
        ("hash_rows 2^19 x 8 B", lambda: hash_rows(rows8), 10),
        ("hash_rows 2^19 x 64 B", lambda: hash_rows(rows64), 10),
        ("hash_pairs 2^19 nodes -> 2^18", lambda: hash_pairs(nodes), 10),
        ("MerkleTree 2^19 leaves (2 field cols)", lambda: MerkleTree.from_field_rows(lde19), 5),
        ("MerkleTree 2^23 leaves (2 field cols)", lambda: MerkleTree.from_field_rows(lde23), 3),
        ("MerkleTree.open 28 of 2^19", lambda: tree19.open(queries), 20),
        ("verify_batch 28 queries, depth 19",
         lambda: verify_batch(tree19.root, 19, queries, opened, siblings), 50),
        ("grind 16 bits", lambda: grind(seed, 16), 5),
    ]
    start = time.perf_counter()
    for _, fn, _ in cases:
        fn()
    print(f"warm-up (compile or cache load + first runs): {time.perf_counter() - start:.2f} s")
    for name, fn, repeats in cases:
        print(f"{name:42s} {best_of(fn, repeats):10.2f} ms")


if __name__ == "__main__":
    main()
