"""`memjit bench sweep`: how proving cost grows with the trace.

For each series (an AIR family with a size knob) and each trace size 2^min_log .. 2^max_log,
every measurement runs in a fresh subprocess (so peak memory is that point's own), several times;
the medians go to CSV and JSON, and matplotlib draws time and size against trace length on log
axes with the fitted growth exponent. A second experiment trades blowup against query count at
equal conjectured security.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memjit.errors import BadInput
from verifier.params import DEFAULT_PARAMS

SERIES = ("fibonacci", "range_check", "vm_crc32")  # vm_crc32: the VM AIR proving crc32(n)
VM_MAX_LOG = 20  # 2^20 rows of the VM AIR fit this 24 GB machine (uint32 LDEs)
PHASES = ("run", "witness", "lde", "merkle", "constraints", "deep", "fri", "grinding", "openings",
          "aux_trace")
SECURITY_TARGET = 100


@dataclass(frozen=True)
class Params:
    """A sweep point's proof parameters (the prover's defaults unless the experiment varies
    them)."""

    log_blowup: int = DEFAULT_PARAMS.log_blowup
    num_queries: int = DEFAULT_PARAMS.num_queries
    grinding_bits: int = DEFAULT_PARAMS.grinding_bits


def equal_security_params(target: int = SECURITY_TARGET, grinding: int = 16) -> list[Params]:
    """Blowup 2, 4, 8, 16 with just enough queries for `target` conjectured bits."""
    return [Params(lb, math.ceil((target - grinding) / lb), grinding) for lb in (1, 2, 3, 4)]


def crc32_size(log_rows: int) -> tuple[int, int]:
    """The largest CRC-32 input length whose VM trace fits 2^log_rows rows, and its steps."""
    from memjit.runtime.tracer import trace
    from memjit.workers import load

    module = load("crc32")
    steps = lambda n: trace(module, "crc32", [n, 1]).steps  # noqa: E731
    lo, hi = 0, 1
    while steps(hi) + 1 <= 1 << log_rows:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if steps(mid) + 1 <= 1 << log_rows else (lo, mid)
    return lo, steps(lo)


def bench_vm_crc32(log_rows: int, params) -> dict:
    """Trace capture, proof and verification of crc32(n) filling 2^log_rows trace rows."""
    from benchmarks.stark import peak_rss_mb
    from memjit.runtime.claims import prove_claim, vk_of
    from memjit.runtime.tracer import trace
    from memjit.workers import load
    from prover import ProverStats
    from verifier.claims import verify_claim

    module = load("crc32")
    prove_claim(module, "crc32", [8, 1], params)  # JIT warm-up
    n, steps = crc32_size(log_rows)
    start = time.perf_counter()
    trace(module, "crc32", [n, 1])
    trace_s = time.perf_counter() - start
    stats = ProverStats()
    start = time.perf_counter()
    claim = prove_claim(module, "crc32", [n, 1], params, stats=stats)
    prove_s = time.perf_counter() - start
    data, vk = claim.encode(), vk_of(module)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        verdict = verify_claim(data, vk)
        times.append(time.perf_counter() - start)
    if not verdict.valid:
        raise RuntimeError(f"benchmark claim did not verify: {verdict.reason}")
    return {"prove_s": round(prove_s, 4), "verify_s": round(statistics.median(times), 5),
            "proof_bytes": len(claim.proof), "security_bits": verdict.security_bits,
            "peak_rss_mb": round(peak_rss_mb(), 1), "steps": steps, "trace_s": round(trace_s, 5),
            "phases_s": {k: round(v, 4) for k, v in stats.phases.items()}}


def measure(series: str, log_rows: int, params: Params) -> dict:
    """One measurement in this process (called in a fresh subprocess by `point`)."""
    from benchmarks.stark import bench_stark
    from verifier import ProofParams

    pp = ProofParams(log_blowup=params.log_blowup, num_queries=params.num_queries,
                     grinding_bits=params.grinding_bits)
    if series == "vm_crc32":
        r = bench_vm_crc32(log_rows, pp)
    else:
        r = bench_stark(series, log_rows, pp, repeat_verify=5)
        r["steps"], r["trace_s"] = 1 << log_rows, 0.0
    row = {"series": series, "log_rows": log_rows, **asdict(params), "prove_s": r["prove_s"],
           "verify_s": r["verify_s"], "proof_bytes": r["proof_bytes"],
           "security_bits": r["security_bits"], "peak_rss_mb": r["peak_rss_mb"],
           "steps": r["steps"], "trace_s": r["trace_s"]}
    row.update({f"{p}_s": r["phases_s"].get(p, 0.0) for p in PHASES})
    return row


def point(series: str, log_rows: int, params: Params) -> dict:
    """`measure` in a fresh Python process, so its peak RSS is its own."""
    args = [sys.executable, "-m", "benchmarks.sweep", series, str(log_rows),
            str(params.log_blowup), str(params.num_queries), str(params.grinding_bits)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark point {series} 2^{log_rows} failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def median_row(rows: list[dict]) -> dict:
    """Median of every numeric field over repeated runs of one point."""
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, float):
            out[key] = round(statistics.median(r[key] for r in rows), 5)
    out["runs"] = len(rows)
    return out


def fit_exponent(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x): cost ~ x^slope."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / den if den else float("nan")


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_growth(rows: list[dict], out: Path) -> dict[str, dict[str, float]]:
    """Time and size against trace length (log-log) per series; returns fitted exponents."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exponents: dict[str, dict[str, float]] = {}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for series in sorted({r["series"] for r in rows}):
        pts = [r for r in rows if r["series"] == series]
        xs = [2 ** r["log_rows"] for r in pts]
        exponents[series] = {}
        for ax, key, label in zip(axes, ("prove_s", "verify_s", "proof_bytes"),
                                  ("prove time (s)", "verify time (s)", "proof size (bytes)")):
            ys = [r[key] for r in pts]
            k = fit_exponent(xs, ys)
            exponents[series][key] = round(k, 3)
            ax.plot(xs, ys, "o-", label=f"{series} (~n^{k:.2f})")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("trace rows")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    fig.suptitle("memjit STARK cost against trace length (medians)")
    fig.tight_layout()
    fig.savefig(out / "growth.png", dpi=110)
    plt.close(fig)
    return exponents


def plot_phases(rows: list[dict], out: Path) -> None:
    """Share of prover time per phase, per size, for each series (stacked bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series_names = sorted({r["series"] for r in rows})
    fig, axes = plt.subplots(1, len(series_names), figsize=(7 * len(series_names), 4.5), squeeze=False)
    for ax, series in zip(axes[0], series_names):
        pts = [r for r in rows if r["series"] == series]
        labels = [f"2^{r['log_rows']}" for r in pts]
        bottom = [0.0] * len(pts)
        for phase in PHASES:
            shares = [r[f"{phase}_s"] / max(sum(r[f"{p}_s"] for p in PHASES), 1e-12) for r in pts]
            if any(shares):
                ax.bar(labels, shares, bottom=bottom, label=phase)
                bottom = [b + s for b, s in zip(bottom, shares)]
        ax.set_title(f"{series}: share of prover time per phase")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(out / "phases.png", dpi=110)
    plt.close(fig)


def plot_params(rows: list[dict], out: Path) -> None:
    """Prove time, verify time and proof size for each blowup at equal security."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"blowup {2 ** r['log_blowup']}\n{r['num_queries']} queries" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, title in zip(axes, ("prove_s", "verify_s", "proof_bytes"),
                              ("prove time (s)", "verify time (s)", "proof size (bytes)")):
        ax.bar(labels, [r[key] for r in rows])
        ax.set_title(title)
    fig.suptitle(f"Equal conjectured security ({SECURITY_TARGET} bits), "
                 f"{rows[0]['series']} at 2^{rows[0]['log_rows']} rows")
    fig.tight_layout()
    fig.savefig(out / "params.png", dpi=110)
    plt.close(fig)


def measurable(series: str, log_rows: int) -> bool:
    """Whether ``series`` has a point at 2^log_rows rows (range_check needs its 256-entry table,
    the VM series a crc32 input and at most VM_MAX_LOG rows)."""
    low, high = {"range_check": (8, 22), "vm_crc32": (8, VM_MAX_LOG)}.get(series, (2, 22))
    return low <= log_rows <= high


def run_sweep(out: Path, series: list[str], min_log: int, max_log: int, repeats: int,
              params_log: int | None, console: Console | None = None,
              params_series: str = "fibonacci") -> dict:
    """The whole experiment; writes sweep.csv/json, params.csv and the PNG plots under `out`
    (the blowup/queries experiment runs ``params_series`` at 2^params_log rows)."""
    for s in (*series, params_series):
        if s not in SERIES:
            raise BadInput(f"unknown series {s!r}; choose from {', '.join(SERIES)}")
    if not 2 <= min_log <= max_log <= 22 or repeats < 1:
        raise BadInput("need 2 <= --min-log <= --max-log <= 22 and --repeats >= 1")
    if params_log and not measurable(params_series, params_log):
        raise BadInput(f"--params-log {params_log} is out of range for {params_series}")
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    sizes = [(s, k) for s in series for k in range(min_log, max_log + 1) if measurable(s, k)]
    param_sets = equal_security_params() if params_log else []
    started = time.time()
    rows, param_rows = [], []
    with Progress(console=console) as progress:
        task = progress.add_task("sweep", total=(len(sizes) + len(param_sets)) * repeats)
        for s, k in sizes:
            progress.update(task, description=f"{s} 2^{k}")
            runs = []
            for _ in range(repeats):
                runs.append(point(s, k, Params()))
                progress.advance(task)
            rows.append(median_row(runs))
        for ps in param_sets:
            progress.update(task, description=f"blowup {2 ** ps.log_blowup}")
            runs = []
            for _ in range(repeats):
                runs.append(point(params_series, params_log, ps))
                progress.advance(task)
            param_rows.append(median_row(runs))
    write_csv(out / "sweep.csv", rows)
    exponents = plot_growth(rows, out)
    plot_phases(rows, out)
    if param_rows:
        write_csv(out / "params.csv", param_rows)
        plot_params(param_rows, out)
    summary = {"rows": rows, "params": param_rows, "exponents": exponents,
               "seconds": round(time.time() - started, 1)}
    (out / "sweep.json").write_text(json.dumps(summary, indent=1))
    table = Table(title="Trace-size sweep (medians)")
    for col in ("series", "rows", "steps", "trace ms", "prove s", "verify ms", "proof KB", "peak MB"):
        table.add_column(col, justify="left" if col == "series" else "right")
    for r in rows:
        table.add_row(r["series"], f"2^{r['log_rows']}", str(r["steps"]), f"{r['trace_s'] * 1e3:.1f}",
                      f"{r['prove_s']:.3f}",
                      f"{r['verify_s'] * 1e3:.1f}", f"{r['proof_bytes'] / 1024:.1f}",
                      f"{r['peak_rss_mb']:.0f}")
    console.print(table)
    for s, ex in exponents.items():
        console.print(f"{s}: prove ~ n^{ex['prove_s']}, verify ~ n^{ex['verify_s']}, "
                      f"size ~ n^{ex['proof_bytes']}")
    console.print(f"wrote {out}/sweep.csv, sweep.json, growth.png, phases.png"
                  + (", params.csv, params.png" if param_rows else ""))
    return summary


if __name__ == "__main__":  # one measurement point, printed as JSON (used by `point`)
    name, log_rows, lb, q, g = sys.argv[1], *map(int, sys.argv[2:6])
    print(json.dumps(measure(name, log_rows, Params(lb, q, g))))
