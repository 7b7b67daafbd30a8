"""`memjit bench stark`, `memjit bench vm` and `memjit demo` end to end, as a user runs them."""

import json
import re
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


def test_bench_batcher_proves_a_batch_as_the_segments_asked_for():
    proc = memjit("bench", "batcher", "--accounts", "50", "--sizes", "5", "--proof-sizes", "3",
                  "--segment-facts", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    (point,) = json.loads(proc.stdout)["proofs"]["points"]
    assert (point["facts"], point["segments"], point["segment_facts"]) == (3, 2, 2)
    assert point["security_bits"] >= 100 and point["proof_kb"] > 0
    proc = memjit("bench", "batcher", "--proof-sizes", "3", "--segment-facts", "-1")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1


def test_bench_vm_reports_the_median_of_its_repeats():
    proc = memjit("bench", "vm", "memjit/workers/fib.wasm", "--export", "fib", "--args", "6",
                  "--repeats", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["repeats"] == 3 and report["steps"] > 0 and report["security_bits"] >= 100
    runs = report["prove_s_runs"]  # each rounded to 1 ms, as prove_s (rounding is monotone)
    assert len(runs) == 3 and runs == sorted(runs)
    assert report["prove_s"] == runs[1] and report["prove_s_range"] == [runs[0], runs[2]]
    assert report["max_degree"] == 3
    # steps_per_s is the steps over the median's unrounded time t, |t - prove_s| <= 0.5 ms
    steps, median, speed = report["steps"], report["prove_s"], report["steps_per_s"]
    assert steps / (median + 0.0005) - 0.5 <= speed
    assert median <= 0.0005 or speed <= steps / (median - 0.0005) + 0.5


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
    # the network round ends with today's period closed and its facts committed in batches
    network = proc.stdout[proc.stdout.index("A network on loopback"):]
    assert re.search(r"[1-9]\d* batch\(es\)\s+committed\s+by\s+the\s+sequencer", network), network
    # modules, the scorer, every claim and every batch's data block stay in the content store
    assert len(list((tmp_path / "home" / "blocks").iterdir())) > 4
