"""`memjit run`: argument forms, output, JSON, and one stderr line + exit code per error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from helpers import cli
from memjit.runtime.sandbox import run
from memjit.workers import load, wasm_path


def test_run_fib(capsys, monkeypatch) -> None:
    code, out, err = cli(capsys, monkeypatch, "run", str(wasm_path("fib")), "--export", "fib", "--args", "20")
    assert (code, err) == (0, "")
    fuel = run(load("fib"), "fib", [20]).fuel_used
    assert out.splitlines() == ["result: 6765", f"fuel: {fuel}"]


@pytest.mark.parametrize(
    "arg_form",
    [["--args", "1000", "-5"], ["--args", "1000", "--args", "-5"], ["--args=1000", "--args", "-5"]],
)
def test_args_forms_and_negative_numbers(capsys, monkeypatch, arg_form: list[str]) -> None:
    code, out, err = cli(capsys, monkeypatch, "run", str(wasm_path("crc32")), "--export", "crc32", *arg_form)
    assert (code, err) == (0, "")
    expected = run(load("crc32"), "crc32", [1000, -5]).results[0]
    assert out.splitlines()[0] == f"result: {expected}"


def test_args_before_export_and_negative_result(capsys, monkeypatch) -> None:
    code, out, _ = cli(capsys, monkeypatch, "run", str(wasm_path("fib")), "--args", "-5", "--export", "fib")
    assert code == 0 and out.splitlines()[0] == "result: -5"


def test_json_output(capsys, monkeypatch) -> None:
    code, out, err = cli(
        capsys, monkeypatch, "run", str(wasm_path("sort")), "--export", "sort", "--args", "100", "3", "--json"
    )
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 1
    obj = json.loads(out)
    expected = run(load("sort"), "sort", [100, 3])
    assert obj["results"] == list(expected.results)
    assert obj["fuel_used"] == expected.fuel_used
    assert obj["export"] == "sort" and obj["memory_bytes"] == len(expected.memory or b"")


def test_no_args_and_i64_result(capsys, monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "wide.wasm"
    path.write_bytes(wasmtime.wat2wasm('(module (func (export "f") (result i64) (i64.const -9000000000)))'))
    code, out, _ = cli(capsys, monkeypatch, "run", str(path), "--export", "f")
    assert code == 0 and out.splitlines() == ["result: -9000000000", "fuel: 2"]


def test_multi_value_results_refused(capsys, monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "multi.wasm"
    path.write_bytes(wasmtime.wat2wasm('(module (func (export "f") (result i32 i64) (i32.const -1) (i64.const 1)))'))
    code, _, err = cli(capsys, monkeypatch, "run", str(path), "--export", "f")
    assert code == 2 and "multi-value" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "exit_code", "fragment"),
    [
        (["--export", "fib", "--args", "1", "2"], 2, "takes 1 argument"),
        (["--export", "nope"], 2, "no function export 'nope'"),
        (["--export", "fib", "--args", "2147483648"], 2, "out of i32 range"),
        (["--export", "fib", "--args", "5", "--fuel", "-1"], 2, "fuel must be"),
        (["--export", "fib", "--args", "5", "--memory-mb", "5000"], 2, "memory cap must be"),
        (["--export", "fib", "--args", "30", "--fuel", "1000"], 3, "out of fuel"),
        (["--export", "fib", "--args", "40", "--fuel", "100000000000", "--timeout", "0.3"], 3, "deadline exceeded"),
        (["--export", "fib", "--args", "100000"], 3, "stack_overflow"),
    ],
)
def test_errors_are_one_line_with_exit_code(capsys, monkeypatch, argv: list[str], exit_code: int, fragment: str) -> None:
    code, out, err = cli(capsys, monkeypatch, "run", str(wasm_path("fib")), *argv)
    assert code == exit_code
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("memjit: ") and fragment in err


def test_missing_and_invalid_module(capsys, monkeypatch, tmp_path: Path) -> None:
    code, _, err = cli(capsys, monkeypatch, "run", str(tmp_path / "absent.wasm"), "--export", "f")
    assert code == 2 and len(err.splitlines()) == 1 and "cannot read" in err
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"not wasm")
    code, _, err = cli(capsys, monkeypatch, "run", str(bad), "--export", "f")
    assert code == 2 and len(err.splitlines()) == 1 and "malformed module: missing the \\0asm magic header" in err


def test_usage_error_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "memjit.cli", "run", str(wasm_path("fib")), "--export", "fib", "--args", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1


def test_console_script() -> None:
    script = Path(sys.executable).parent / "memjit"
    if not script.exists():
        pytest.skip("memjit console script not installed in this environment")
    proc = subprocess.run(
        [str(script), "run", str(wasm_path("fib")), "--export", "fib", "--args", "20"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("result: 6765\n")


def test_float_instruction_refused_before_running(capsys, monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "float.wasm"
    path.write_bytes(wasmtime.wat2wasm(
        '(module (func (export "f") (result i32) (i32.trunc_f32_s (f32.const 1.5))))'))
    code, out, err = cli(capsys, monkeypatch, "run", str(path), "--export", "f")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "unsupported instruction f32.const in function 0" in err


FAULTS = {
    "loop": '(module (func (export "f") (loop (br 0))))',
    "grow": '(module (memory 1) (func (export "f") (loop (drop (memory.grow (i32.const 1))) (br 0))))',
    "div": '(module (func (export "f") (param i32) (result i32) (i32.div_u (i32.const 7) (local.get 0))))',
    "oob": '(module (memory 1) (func (export "f") (param i32) (result i32) (i32.load (local.get 0))))',
    "import": '(module (import "env" "clock" (func $c (result i32))) (func (export "f") (result i32) (call $c)))',
}


@pytest.mark.parametrize(("module", "argv", "exit_code", "fragment"), [
    ("loop", ["--fuel", "100000"], 3, "out of fuel"),
    ("loop", ["--fuel", "1000000000000", "--timeout", "0.2"], 3, "deadline exceeded"),
    ("grow", ["--memory-mb", "2"], 3, "memory cap"),
    ("div", ["--args", "0"], 3, "integer_divide_by_zero"),
    ("oob", ["--args", "65535"], 3, "memory_out_of_bounds"),
    ("import", [], 2, "env.clock"),
])
def test_every_fault_is_one_line_and_its_exit_code(capsys, monkeypatch, tmp_path: Path, module: str,
                                                   argv: list[str], exit_code: int, fragment: str) -> None:
    path = tmp_path / f"{module}.wasm"
    path.write_bytes(wasmtime.wat2wasm(FAULTS[module]))
    code, out, err = cli(capsys, monkeypatch, "run", str(path), "--export", "f", *argv)
    assert (code, out) == (exit_code, "")
    assert len(err.splitlines()) == 1 and fragment in err, err
