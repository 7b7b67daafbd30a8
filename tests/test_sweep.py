"""The trace-size sweep writes its tables and plots (tiny sizes: behaviour, not timings)."""

import csv
import json

import pytest

from benchmarks.sweep import equal_security_params, fit_exponent, run_sweep
from memjit.errors import BadInput
from verifier import ProofParams
from verifier.params import AirShape


def test_fit_exponent_recovers_a_power_law():
    xs = [2.0 ** k for k in range(10, 16)]
    assert fit_exponent(xs, [3 * x ** 1.5 for x in xs]) == pytest.approx(1.5)


def test_equal_security_parameter_sets_reach_the_target():
    # The experiment equalizes the query term; every other term of the VM AIR stays above it.
    vm = AirShape(16, max_degree=3, segments=2, lookup_denominators=42 << 16, lookup_width=11)
    for p in equal_security_params():
        pp = ProofParams(log_blowup=p.log_blowup, num_queries=p.num_queries, grinding_bits=p.grinding_bits)
        assert 100 <= pp.security(vm).terms["fri_queries"] < 100 + p.log_blowup
        assert pp.security(vm).bits >= 100


def test_small_sweep_writes_csv_json_and_plots(tmp_path):
    summary = run_sweep(tmp_path, ["fibonacci"], 6, 7, 1, 6)
    rows = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert [int(r["log_rows"]) for r in rows] == [6, 7]
    assert all(float(r["prove_s"]) > 0 and int(r["proof_bytes"]) > 0 for r in rows)
    assert len(list(csv.DictReader((tmp_path / "params.csv").open()))) == 4
    assert json.loads((tmp_path / "sweep.json").read_text())["exponents"]["fibonacci"]
    for png in ("growth.png", "phases.png", "params.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    assert summary["rows"][0]["security_bits"] >= 100


def test_sweep_refuses_bad_ranges(tmp_path):
    with pytest.raises(BadInput):
        run_sweep(tmp_path, ["nope"], 6, 7, 1, None)
    with pytest.raises(BadInput):
        run_sweep(tmp_path, ["fibonacci"], 9, 7, 1, None)


def test_vm_series_fills_its_trace(tmp_path):
    from benchmarks.sweep import crc32_size
    n, steps = crc32_size(10)
    assert steps + 1 <= 1024 < crc32_size(11)[1] and n > 0
    summary = run_sweep(tmp_path, ["vm_crc32"], 9, 9, 1, None)
    (row,) = summary["rows"]
    assert row["series"] == "vm_crc32" and row["security_bits"] >= 100 and row["steps"] < 512


def test_vm_parameter_experiment(tmp_path):
    summary = run_sweep(tmp_path, ["fibonacci"], 6, 6, 1, 8, params_series="vm_crc32")
    params = summary["params"]
    assert [p["series"] for p in params] == ["vm_crc32"] * 4
    assert [p["log_blowup"] for p in params] == [1, 2, 3, 4]
    assert all(p["security_bits"] >= 100 for p in params)
    with pytest.raises(BadInput, match="params-log"):
        run_sweep(tmp_path, ["fibonacci"], 6, 6, 1, 22, params_series="vm_crc32")
