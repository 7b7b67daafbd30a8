"""Segmented proving benchmarks (`memjit bench sweep --series vm_segments`).

crc32(n) sized to fill 2^k steps, proven in segments of 2^s rows, each point in a fresh
subprocess (its peak memory is its own): the wall time of the whole claim against the sum of
its segments' proofs (the overhead of tracing, witnesses and the memory image), the peak
memory, the claim's size and its verification time against the number of segments and the
memory keys they carry; with ``workers`` > 0 the same segments are also proven on a Dask
LocalCluster of that many single-threaded workers (speedup over serial proving).
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

SEGMENT_LOGS = (16, 18, 20)
MAX_LOG_STEPS = 24


def crc32_steps(log_steps: int) -> tuple[int, int]:
    """The largest crc32 input length running fewer than 2^log_steps steps, and its steps
    (the loop costs a fixed number of steps per byte: extrapolated from two short runs)."""
    from memjit.runtime.tracer import trace
    from memjit.workers import load

    module = load("crc32")
    a, b = (trace(module, "crc32", [n, 1]).steps for n in (64, 128))
    per_byte, fixed = (b - a) / 64, a - 64 * (b - a) / 64
    n = int(((1 << log_steps) - 1 - fixed) // per_byte)
    return n, int(fixed + per_byte * n)


class TimedEngine:
    """The serial engine, timing each segment's proof (and logging it to stderr: a long run
    shows its progress)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def prove_all(self, jobs):
        from benchmarks.stark import peak_rss_mb
        from memjit.runtime.segments import prove_segment

        started = time.perf_counter()
        for job in jobs:
            start = time.perf_counter()
            proof = prove_segment(job)
            self.seconds.append(time.perf_counter() - start)
            print(f"segment {job.segment.index}: {self.seconds[-1]:.1f} s (sum "
                  f"{sum(self.seconds):.1f} s, wall {time.perf_counter() - started:.1f} s, "
                  f"peak {peak_rss_mb():.0f} MB)", file=sys.stderr, flush=True)
            yield proof


def measure(log_steps: int, segment_log: int, workers: int) -> dict:
    """One point: prove crc32 filling 2^log_steps steps in 2^segment_log-row segments."""
    from benchmarks.stark import peak_rss_mb
    from memjit.runtime.claims import prove_claim, vk_of
    from memjit.workers import load
    from verifier.claims import verify_claim

    module = load("crc32")
    prove_claim(module, "crc32", [4, 1], segment_log=8)  # JIT warm-up (segment kernels)
    n, _ = crc32_steps(log_steps)
    engine = TimedEngine()
    start = time.perf_counter()
    claim = prove_claim(module, "crc32", [n, 1], segment_log=segment_log, engine=engine)
    prove_s = time.perf_counter() - start
    data, vk = claim.encode(), vk_of(module)
    start = time.perf_counter()
    verdict = verify_claim(data, vk)
    verify_s = time.perf_counter() - start
    if not verdict.valid:
        raise RuntimeError(f"benchmark claim did not verify: {verdict.reason}")
    segs = [s for s, _ in claim.segments] or [None]
    row = {"log_steps": log_steps, "segment_log": segment_log, "steps": claim.statement.steps,
           "segments": len(claim.segments) or 1, "prove_s": round(prove_s, 3),
           "segments_sum_s": round(sum(engine.seconds), 3),
           "overhead": round(prove_s / sum(engine.seconds) - 1, 4) if engine.seconds else 0.0,
           "verify_s": round(verify_s, 3), "claim_bytes": len(data),
           "keys": sum(len(s.keys) for s in segs if s is not None),
           "peak_rss_mb": round(peak_rss_mb(), 1), "security_bits": verdict.security_bits}
    if workers:
        row.update(measure_cluster(module, n, segment_log, workers, row["segments_sum_s"]))
    return row


def measure_cluster(module: bytes, n: int, segment_log: int, workers: int,
                    serial_s: float) -> dict:
    """The same claim on a LocalCluster of ``workers`` single-threaded workers."""
    from memjit.cluster import DaskEngine
    from memjit.runtime.claims import prove_claim

    with DaskEngine(workers=workers) as engine:
        prove_claim(module, "crc32", [4, 1], segment_log=8, engine=engine)  # workers warm up
        start = time.perf_counter()
        prove_claim(module, "crc32", [n, 1], segment_log=segment_log, engine=engine)
        cluster_s = time.perf_counter() - start
        peaks = engine.client.run(_peak_rss_mb)
    return {"workers": workers, "cluster_s": round(cluster_s, 3),
            "speedup": round(serial_s / cluster_s, 3),
            "worker_peak_mb": round(max(peaks.values()), 1)}


def _peak_rss_mb() -> float:
    from benchmarks.stark import peak_rss_mb

    return peak_rss_mb()


def point(log_steps: int, segment_log: int, workers: int) -> dict:
    """`measure` in a fresh Python process."""
    args = [sys.executable, "-m", "benchmarks.segments", str(log_steps), str(segment_log),
            str(workers)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"segments point 2^{log_steps} / 2^{segment_log} failed: "
                           f"{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_segments(out: Path, min_log: int, max_log: int, segment_logs: tuple[int, ...],
                 repeats: int, workers: int, console=None) -> list[dict]:
    """Every (steps, segment size) point with 2^segment_log <= 2^log_steps; writes
    segments.csv/json and segments.png under ``out``."""
    from rich.console import Console

    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(min_log, max_log + 1):
        for s in segment_logs:
            if s > k:
                continue
            console.print(f"vm_segments: 2^{k} steps in segments of 2^{s} rows")
            runs = [point(k, s, workers) for _ in range(repeats)]
            row = dict(runs[0])
            for key in ("prove_s", "segments_sum_s", "overhead", "verify_s", "peak_rss_mb",
                        "cluster_s", "speedup"):
                if key in row:
                    row[key] = round(statistics.median(r[key] for r in runs), 4)
            rows.append(row)
            console.print(row)
    with open(out / "segments.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    (out / "segments.json").write_text(json.dumps(rows, indent=1))
    plot(rows, out / "segments.png")
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Prove time, peak memory and verify time against steps, one line per segment size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for s in sorted({r["segment_log"] for r in rows}):
        pts = sorted((r for r in rows if r["segment_log"] == s), key=lambda r: r["steps"])
        xs = [r["steps"] for r in pts]
        for ax, key in zip(axes, ("prove_s", "peak_rss_mb", "verify_s")):
            ax.plot(xs, [r[key] for r in pts], "o-", label=f"segments of 2^{s} rows")
    for ax, title in zip(axes, ("prove time (s)", "peak memory (MB)", "verify time (s)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("steps")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":  # one measurement point, printed as JSON (used by `point`)
    print(json.dumps(measure(*map(int, sys.argv[1:4]))))
