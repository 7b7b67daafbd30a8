"""`memjit bench stark`, `memjit bench vm` and `memjit demo` end to end, as a user runs them."""

import json
import subprocess
import sys


def memjit(*argv: str, env_home=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memjit.cli", *argv], capture_output=True,
                          text=True, timeout=600)


def test_bench_stark_json_reports_the_contract_keys():
    proc = memjit("bench", "stark", "--air", "fibonacci", "--log-rows", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("prove_s", "verify_s", "proof_bytes", "security_bits", "log_rows", "peak_rss_mb"):
        assert key in report
    assert report["log_rows"] == 10 and report["security_bits"] >= 100
    assert 0 < report["proof_bytes"] < 120_000


def test_bench_stark_bad_input_is_one_line_exit_2():
    proc = memjit("bench", "stark", "--air", "nope", "--log-rows", "10")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and "unknown AIR" in proc.stderr
    proc = memjit("bench", "stark", "--log-rows", "60")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1


def test_bench_vm_reports_the_median_of_its_repeats():
    proc = memjit("bench", "vm", "memjit/workers/fib.wasm", "--export", "fib", "--args", "6",
                  "--repeats", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["repeats"] == 3 and report["steps"] > 0 and report["security_bits"] >= 100
    low, high = report["prove_s_range"]
    assert low <= report["prove_s"] <= high
    assert report["max_degree"] == 3
    assert abs(report["steps_per_s"] * report["prove_s"] / report["steps"] - 1) < 0.01


def test_bench_vm_bad_input_is_one_line_exit_2():
    proc = memjit("bench", "vm", "memjit/workers/fib.wasm", "--export", "nope")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and "nope" in proc.stderr


def test_demo_runs_on_a_fresh_home(tmp_path):
    proc = memjit("demo", "--home", str(tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr
    for fragment in ("crc32(512, 1)", "-1170800641", "fibonacci", "range_check", "bafkr4i"):
        assert fragment in proc.stdout
    for fragment in ("Leaderboard", "large", "committed batch", "SWT minted"):
        assert fragment in proc.stdout
    # modules, the scorer, every claim and every batch's data block stay in the content store
    assert len(list((tmp_path / "home" / "blocks").iterdir())) > 4
