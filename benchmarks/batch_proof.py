"""Batch proofs: proving time, verification time, proof size and peak memory of the batch AIR
(circuits.rollup.batch) against the number of facts, with the fitted growth exponents.

Each point runs in a fresh interpreter (so its peak RSS is its own): random facts over a state
tree of `accounts` accounts, proven as memjit.rollup.proving proves a batch (a chain of
segments of at most segment_capacity() facts, one after another, each segment's witness then
its proof at the default parameters, 100 bits), and the bundle's verification against a header
(check_bundle: the chain, then every segment's STARK; the best of VERIFY_RUNS runs, each on
the bundle decoded afresh from its bytes, as a follower reads it; the decoding timed apart).
The prover's compiled field kernels are loaded here, as in every check_bundle caller. Wall
and CPU time (process time, every thread summed: on a loaded machine it tells more than wall
time), and the load average at the end of the point.

    python -m benchmarks.batch_proof --facts 100 [--accounts 1000] [--segment-facts F]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import Counter

import numpy as np

from verifier.params import DEFAULT_MIN_SECURITY_BITS

VERIFY_RUNS = 5


def _fit(xs: list[float], ys: list[float]) -> float | None:
    """The least-squares slope of log y against log x (None for fewer than two points)."""
    if len(xs) < 2:
        return None
    return round(float(np.polyfit(np.log(xs), np.log(ys), 1)[0]), 2)


def one_point(facts: int, accounts: int = 1000, seed: int = 3,
              segment_facts: int | None = None) -> dict:
    """Prove and verify one batch of `facts` random facts (in this process), as
    memjit.rollup.proving does: a chain of segments of at most `segment_facts` facts (default:
    segment_capacity()), proven one after another; verified by check_bundle against a header."""
    from circuits.rollup.batch import BatchAir, BatchFact, BatchInputs, apply_fact, batch_trace
    from circuits.rollup.leaf import USEFULNESS, key_hash
    from memjit.rollup.header import Header, root_bytes
    from memjit.rollup.proving import Rules, check_bundle, segment_capacity, segment_ranges
    from memjit.rollup.tree import StateTree
    from prover import prove
    from prover.poseidon2 import air_columns
    from prover.stark import ProverStats
    from verifier.batch import Bundle, Segment, decode_bundle

    rng = random.Random(seed)
    workers = [rng.randbytes(32) for _ in range(accounts)]
    keys = [tuple(int(x) for x in key_hash(w)) for w in workers]
    tree = StateTree()
    tree.build({i: apply_fact(np.zeros(16, np.uint64), BatchFact(i, keys[i], 500_000, 1000, 0),
                              1) for i in range(accounts)})
    before = tuple(int(x) for x in tree.root)
    per = segment_capacity() if segment_facts is None else segment_facts
    segments, scores, rows = [], Counter(), 0
    witness_s = prove_s = prove_cpu_s = 0.0
    stats = ProverStats()
    for part in segment_ranges(facts, per):  # one segment's trace in memory at a time
        start = time.perf_counter()
        old_root, old_sub = tuple(int(x) for x in tree.root), tuple(int(x) for x in tree.subroot)
        chosen, olds, news, sibs = [], [], [], []
        for _ in part:
            i = rng.randrange(accounts)
            score = rng.randrange(1_000_001)
            fact = BatchFact(i, keys[i], score, 200, rng.randrange(1, 1000) if score else 0,
                             prior=int(tree.limbs(i)[USEFULNESS]))
            w = tree.update(i, apply_fact(tree.limbs(i), fact, 2))
            chosen.append(fact), olds.append(w.old), news.append(w.new), sibs.append(w.siblings)
            scores[workers[i]] += score
        inputs = BatchInputs(1, 2, 10_000, old_root, tuple(int(x) for x in tree.root),
                             tuple(chosen), bytes(32), bytes(32), first=part.start,
                             old_subroot=old_sub, new_subroot=tuple(int(x) for x in tree.subroot))
        main = batch_trace(inputs, np.stack(olds), np.stack(news), np.stack(sibs), air_columns)
        witness_s += time.perf_counter() - start
        air = BatchAir(inputs)
        rows = max(rows, air.trace_length)
        start, cpu = time.perf_counter(), time.process_time()
        segments.append(Segment(inputs, prove(air, main, stats=stats)))
        prove_s += time.perf_counter() - start
        prove_cpu_s += time.process_time() - cpu
        del main
    minted = sum(f.reward for s in segments for f in s.inputs.facts)
    header = Header(1, bytes(32), root_bytes(before), root_bytes(tree.root), bytes(32), facts,
                    minted, 2 * 86_400_000, tuple(sorted(scores.items())), (b"k" * 48,),
                    b"s" * 96)
    encoded = Bundle(header.hash, tuple(segments)).encode()
    rules = Rules(10_000, 1000, 200)
    check_bundle(header, decode_bundle(encoded), before, DEFAULT_MIN_SECURITY_BITS,
                 rules)  # warm-up
    verify_s = verify_cpu_s = decode_s = float("inf")
    for _ in range(VERIFY_RUNS):  # the best of a few: one run on a shared machine is noise
        start = time.perf_counter()
        bundle = decode_bundle(encoded)  # as a follower reads it: nothing cached from a run
        decode_s = min(decode_s, time.perf_counter() - start)
        start, cpu = time.perf_counter(), time.process_time()
        verdict = check_bundle(header, bundle, before, DEFAULT_MIN_SECURITY_BITS, rules)
        verify_s = min(verify_s, time.perf_counter() - start)
        verify_cpu_s = min(verify_cpu_s, time.process_time() - cpu)
    if not verdict.valid:
        raise RuntimeError(f"benchmark batch proof rejected: {verdict.reason}")
    return {"facts": facts, "segments": len(segments), "segment_facts": per, "rows": rows,
            "load_avg": round(os.getloadavg()[0], 1), "columns": BatchAir.width,
            "witness_s": round(witness_s, 3), "prove_s": round(prove_s, 3),
            "prove_cpu_s": round(prove_cpu_s, 3), "verify_ms": round(verify_s * 1000, 1),
            "verify_cpu_ms": round(verify_cpu_s * 1000, 1),
            "decode_ms": round(decode_s * 1000, 1),
            "proof_kb": round(sum(len(s.proof) for s in segments) / 1024, 1),
            "bundle_kb": round(len(encoded) / 1024, 1),
            "security_bits": verdict.security_bits,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "phases": {k: round(v, 3) for k, v in stats.phases.items()}}


def bench_batch_proofs(sizes: list[int], accounts: int = 1000,
                       segment_facts: int | None = None) -> dict:
    """One fresh process per size; the points (each with the 1-minute load average at its
    end: above ~1 on this 2-core machine the numbers are loaded) and the growth exponents.
    `segment_facts` caps a segment's facts (default: as many as a 2^15-row STARK holds)."""
    points = []
    cap = [] if segment_facts is None else ["--segment-facts", str(segment_facts)]
    for facts in sizes:
        out = subprocess.run([sys.executable, "-m", "benchmarks.batch_proof", "--facts",
                              str(facts), "--accounts", str(accounts), *cap],
                             check=True, capture_output=True, text=True)
        points.append(json.loads(out.stdout.splitlines()[-1]))
    xs = [p["facts"] for p in points]
    return {"accounts": accounts, "points": points,
            "growth": {"prove_s": _fit(xs, [p["prove_s"] for p in points]),
                       "prove_cpu_s": _fit(xs, [p["prove_cpu_s"] for p in points]),
                       "verify_ms": _fit(xs, [p["verify_ms"] for p in points]),
                       "verify_cpu_ms": _fit(xs, [p["verify_cpu_ms"] for p in points]),
                       "proof_kb": _fit(xs, [p["proof_kb"] for p in points]),
                       "bundle_kb": _fit(xs, [p["bundle_kb"] for p in points]),
                       "peak_rss_mb": _fit(xs, [p["peak_rss_mb"] for p in points])}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, required=True)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--segment-facts", type=int, default=None)
    args = parser.parse_args()
    if not 1 <= args.facts <= 1 << 20 or not 1 <= args.accounts <= 1 << 24 \
            or (args.segment_facts is not None and not 1 <= args.segment_facts <= 1 << 20):
        sys.exit("--facts and --segment-facts in 1..2^20, --accounts in 1..2^24")
    print(json.dumps(one_point(args.facts, args.accounts, segment_facts=args.segment_facts)))
