"""Segmented proving benchmarks (`memjit bench sweep --series vm_segments`).

crc32(n) sized to fill 2^k steps, proven in segments of 2^s rows, each point in a fresh
subprocess (its peak memory is its own): the wall time of the whole claim against the sum of
its segments' proofs (the overhead of tracing, witnesses and the memory image), the peak
memory, the claim's size and its verification time against the number of segments and the
memory keys they carry; with ``workers`` > 0 the same segments are also proven on a Dask
LocalCluster of that many single-threaded workers (speedup over serial proving).
:func:`verify_growth` tables a segmented claim's verification against its number of segments
and the memory its segments touch.
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
GRID_MAX_LOG = 20
"""Every segment size is run up to 2^20 steps; longer runs only at ``long_segment_log`` (the
whole grid to 2^24 costs hours on this shared 2-core machine)."""
LONG_SEGMENT_LOG = 18


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
           "peak_rss_mb": round(peak_rss_mb(), 1), "security_bits": verdict.security_bits,
           "numba_threads": _numba_threads()}
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
        threads = engine.client.run(_numba_threads)
    return {"workers": workers, "cluster_s": round(cluster_s, 3),
            "speedup": round(serial_s / cluster_s, 3),
            "worker_peak_mb": round(max(peaks.values()), 1),
            "worker_numba_threads": max(threads.values())}


def _peak_rss_mb() -> float:
    from benchmarks.stark import peak_rss_mb

    return peak_rss_mb()


def _numba_threads() -> int:
    import numba

    return numba.get_num_threads()


def point(log_steps: int, segment_log: int, workers: int) -> dict:
    """`measure` in a fresh Python process."""
    args = [sys.executable, "-m", "benchmarks.segments", str(log_steps), str(segment_log),
            str(workers)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"segments point 2^{log_steps} / 2^{segment_log} failed: "
                           f"{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def points(min_log: int, max_log: int, segment_logs: tuple[int, ...],
           long_segment_log: int = LONG_SEGMENT_LOG) -> list[tuple[int, int]]:
    """The (log steps, log segment rows) points: every segment size up to 2^GRID_MAX_LOG steps,
    longer runs in segments of 2^long_segment_log rows only."""
    return [(k, s) for k in range(min_log, max_log + 1) for s in segment_logs
            if s <= k and (k <= GRID_MAX_LOG or s == long_segment_log)]


def run_segments(out: Path, min_log: int, max_log: int, segment_logs: tuple[int, ...],
                 repeats: int, workers: int, console=None,
                 long_segment_log: int = LONG_SEGMENT_LOG) -> list[dict]:
    """The :func:`points` with 2^segment_log <= 2^log_steps; writes segments.csv/json and
    segments.png under ``out``."""
    from rich.console import Console

    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    console.print(f"vm_segments: every segment size up to 2^{GRID_MAX_LOG} steps, longer runs "
                  f"in segments of 2^{long_segment_log} rows only")
    for k, s in points(min_log, max_log, segment_logs, long_segment_log):
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


TOUCH = """(module (memory 1)
  (func (export "touch") (param $n i32) (param $mask i32) (local $i i32) (local $a i32)
    (loop
      (i32.store (local.get $a) (local.get $i))
      (local.set $a (i32.and (i32.add (local.get $a) (i32.const 4)) (local.get $mask)))
      (br_if 0 (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n))))))"""
"""touch(n, mask): n stores cycling over (mask + 1) / 4 words, 16 steps each (the memory a
segment touches grows with mask, its steps do not)."""


def verify_point(module: bytes, export: str, args: list[int], segment_log: int,
                 repeats: int = 3, params=None) -> dict:
    """Verification of one segmented claim (default proof parameters unless ``params``): the
    whole check and the walk alone (medians)."""
    from memjit.runtime.claims import prove_claim, vk_of, vm_program
    from memjit.runtime.wasm import load
    from verifier.claims import verify_claim
    from verifier.params import DEFAULT_PARAMS
    from verifier.segments import walk

    claim = prove_claim(module, export, args, params or DEFAULT_PARAMS, segment_log=segment_log)
    data, vk, vm = claim.encode(), vk_of(module), vm_program(load(module))
    segs = tuple(s for s, _ in claim.segments)

    def timed(check) -> tuple[float, float]:
        """Median wall and CPU seconds (the CPU time is what a loaded machine changes less)."""
        wall, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            check()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return statistics.median(wall), statistics.median(cpu)

    floor = {} if params is None else {"min_security_bits": 0}  # a test's cheap parameters
    check = lambda: verify_claim(data, vk, **floor)  # noqa: E731
    if not check().valid or walk(vm, claim.statement, segs) is not None:
        raise RuntimeError("benchmark claim did not verify")
    row = {"export": export, "args": list(args), "steps": claim.statement.steps,
           "segment_log": segment_log, "segments": len(segs),
           "keys": sum(len(s.keys) for s in segs),
           "keys_per_segment": max(len(s.keys) for s in segs),
           "claim_bytes": len(data)}
    verified, walked = timed(check), timed(lambda: walk(vm, claim.statement, segs))
    row.update(verify_s=round(verified[0], 4), verify_cpu_s=round(verified[1], 4),
               walk_ms=round(1e3 * walked[0], 3), walk_cpu_ms=round(1e3 * walked[1], 3))
    return row


def verify_growth(out: Path, console=None) -> list[dict]:
    """How verifying a segmented claim grows with its number of segments (crc32 filling 2^14
    steps in segments of 2^8 .. 2^12 rows) and with the memory its segments touch (touch:
    ~2^15 steps in segments of 2^13 rows, 1 to 512 words each); writes
    segments_verify.csv/json under ``out``."""
    import wasmtime
    from rich.console import Console
    from memjit.workers import load

    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    crc, touch = load("crc32"), wasmtime.wat2wasm(TOUCH)
    n, _ = crc32_steps(14)
    cases = [(crc, "crc32", [n, 1], s) for s in (12, 11, 10, 9, 8)]
    cases += [(touch, "touch", [2040, 4 * words - 1], 13) for words in (1, 16, 128, 512)]
    rows = []
    for module, export, args, s in cases:
        rows.append(verify_point(module, export, args, s))
        console.print(rows[-1])
    with open(out / "segments_verify.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "segments_verify.json").write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":  # one measurement point, printed as JSON (used by `point`)
    if sys.argv[1:2] == ["verify"]:  # or the verification table: python -m ... verify OUT
        verify_growth(Path(sys.argv[2]))
    else:
        print(json.dumps(measure(*map(int, sys.argv[1:4]))))
