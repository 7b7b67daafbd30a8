"""`memjit trace`: report, JSON, saved trace, argument forms, one stderr line per error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import wasmtime

from helpers import cli
from memjit.runtime.tracer import COLUMNS, trace
from memjit.workers import load, wasm_path


def test_trace_report(capsys, monkeypatch) -> None:
    code, out, err = cli(capsys, monkeypatch, "trace", str(wasm_path("fib")), "--export", "fib",
                         "--args", "20")
    assert (code, err) == (0, "")
    tr = trace(load("fib"), "fib", [20])
    lines = out.splitlines()
    assert lines[:3] == [f"steps: {tr.steps}", "result: 6765", f"fuel: {tr.fuel}"]
    assert "opcode histogram" in out and "local.get" in out and "call" in out
    assert any(line.startswith("memory: 2 pages") for line in lines)


def test_trace_json(capsys, monkeypatch) -> None:
    code, out, err = cli(capsys, monkeypatch, "trace", str(wasm_path("sort")), "--export", "sort",
                         "--args", "300", "5", "--json")
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 1
    obj = json.loads(out)
    tr = trace(load("sort"), "sort", [300, 5])
    assert obj["steps"] == tr.steps and obj["results"] == list(tr.results)
    assert obj["trap"] is None and obj["fuel"] == tr.fuel and obj["args"] == [300, 5]
    assert sum(obj["histogram"].values()) == tr.steps
    assert obj["memory"]["bytes_written"] > 0 and obj["memory"]["pages"] == 2


@pytest.mark.parametrize("arg_form", [
    ["--args", "700", "-5"], ["--args", "700", "--args", "-5"], ["--args=700", "--args", "-5"],
])
def test_argument_forms_and_negative_values(capsys, monkeypatch, arg_form: list[str]) -> None:
    code, out, err = cli(capsys, monkeypatch, "trace", str(wasm_path("crc32")), "--export",
                         "crc32", *arg_form, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["results"] == list(trace(load("crc32"), "crc32", [700, -5]).results)


def test_single_negative_argument(capsys, monkeypatch) -> None:
    code, out, _ = cli(capsys, monkeypatch, "trace", str(wasm_path("fib")), "--args", "-3",
                       "--export", "fib")
    assert code == 0 and out.splitlines()[1] == "result: -3"


def test_out_saves_a_loadable_npz(capsys, monkeypatch, tmp_path) -> None:
    target = tmp_path / "fib-trace"
    code, out, err = cli(capsys, monkeypatch, "trace", str(wasm_path("fib")), "--export", "fib",
                         "--args", "10", "--out", str(target))
    assert (code, err) == (0, "")
    saved = tmp_path / "fib-trace.npz"
    assert f"saved: {saved}" in out
    with np.load(saved) as npz:
        meta = json.loads(npz["meta"].tobytes())
        assert meta["results"] == [55] and set(COLUMNS) <= set(npz.files)
        assert len(npz["pc"]) == meta["steps"]


def test_trapping_call_is_reported_saved_and_exits_3(capsys, monkeypatch, tmp_path) -> None:
    target = tmp_path / "trap.npz"
    code, out, err = cli(capsys, monkeypatch, "trace", str(wasm_path("sort")), "--export", "sort",
                         "--args", "5000", "1", "--out", str(target))
    assert code == 3
    assert err.count("\n") == 1 and err.startswith("memjit: trap: unreachable in 'sort'")
    assert "trap: unreachable" in out and target.exists()


def test_too_long_a_trace_is_a_worker_fault(capsys, monkeypatch) -> None:
    code, out, err = cli(capsys, monkeypatch, "trace", str(wasm_path("fib")), "--export", "fib",
                         "--args", "25", "--max-steps", "1000")
    assert code == 3 and out == ""
    assert err == "memjit: trace too long: 'fib' runs more than 1000 steps\n"


@pytest.mark.parametrize("text, message", [
    ('(module (func (export "f") (result i32) f32.const 1 f32.const 2 f32.add '
     'i32.trunc_f32_s))', "unsupported instruction f32.const in function 0 at offset 0x"),
    ('(module (import "env" "clock" (func (result i32))) (func (export "f") (result i32) '
     'call 0))', "imports function env.clock"),
])
def test_refused_modules_exit_2(capsys, monkeypatch, tmp_path, text: str, message: str) -> None:
    path = tmp_path / "m.wasm"
    path.write_bytes(wasmtime.wat2wasm(text))
    code, out, err = cli(capsys, monkeypatch, "trace", str(path), "--export", "f")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize("argv, message", [
    (["missing.wasm", "--export", "f"], "cannot read missing.wasm"),
    ([str(wasm_path("fib")), "--export", "nope"], "no function export 'nope'"),
    ([str(wasm_path("fib")), "--export", "fib", "--args", "1", "2"], "takes 1 argument"),
    ([str(wasm_path("fib")), "--export", "fib", "--args", "x"], "--args"),
    ([str(wasm_path("fib")), "--export", "fib", "--args", "1", "--out", "/nonexistent/dir/t"],
     "cannot write"),
    ([str(wasm_path("fib")), "--export", "fib", "--args", "1", "--max-steps", "0"],
     "Invalid value for '--max-steps'"),
])
def test_bad_input_exits_2(capsys, monkeypatch, argv: list[str], message: str) -> None:
    code, _, err = cli(capsys, monkeypatch, "trace", *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("memjit: ") and message in err


def test_malformed_module_exits_2(capsys, monkeypatch, tmp_path) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(b"\0asm\x01\0\0\0\x01\x05\x01")
    code, _, err = cli(capsys, monkeypatch, "trace", str(path), "--export", "f")
    assert code == 2 and "malformed module" in err
