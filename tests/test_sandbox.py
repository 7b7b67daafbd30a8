"""Sandbox: every fault kind ends in its typed error (Python API) and its exit code (CLI)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import wasmtime

from memjit.runtime import sandbox
from memjit.errors import (
    BadInput,
    DeadlineExceeded,
    MemoryCapExceeded,
    OutOfFuel,
    Trap,
    UnsupportedModule,
)
from memjit.runtime.sandbox import TRAP_CODES, Limits, check_imports, run

W = wasmtime.wat2wasm

LOOP = W('(module (func (export "f") (loop (br 0))))')
GROW_LOOP = W(
    '(module (memory (export "memory") 1)'
    ' (func (export "f") (loop (drop (memory.grow (i32.const 1))) (br 0))))'
)
DIV = W('(module (func (export "f") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1))))')
LOAD = W('(module (memory 1) (func (export "f") (param i32) (result i32) (i32.load (local.get 0))))')
IMPORTS = W('(module (import "env" "log" (func (param i32))) (func (export "f")))')
TABLE = (
    '(module (type $v (func)) (type $i (func (result i32))) (table 2 funcref)'
    ' (elem (i32.const 0) $g) (func $g (result i32) i32.const 1)'
    ' (func (export "f") (param i32) (call_indirect (type $v) (local.get 0))))'
)

# name -> (module, export, args, limits, error type, trap code or None, CLI exit code)
FAULTS = {
    "fuel": (LOOP, "f", [], Limits(fuel=100_000), OutOfFuel, None, 3),
    "deadline": (LOOP, "f", [], Limits(fuel=10**18, timeout_s=0.5), DeadlineExceeded, None, 3),
    "memory_cap": (GROW_LOOP, "f", [], Limits(memory_mb=2), MemoryCapExceeded, None, 3),
    "divide_by_zero": (DIV, "f", [7, 0], Limits(), Trap, "integer_divide_by_zero", 3),
    "out_of_bounds": (LOAD, "f", [65536], Limits(), Trap, "memory_out_of_bounds", 3),
    "import": (IMPORTS, "f", [], Limits(), UnsupportedModule, None, 2),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_is_typed(name: str) -> None:
    module, export, args, limits, error, code, _ = FAULTS[name]
    start = time.monotonic()
    with pytest.raises(error) as exc:
        run(module, export, args, limits)
    if code is not None:
        assert exc.value.code == code
    if name == "deadline":  # never before the deadline (how long after depends on the load)
        assert time.monotonic() - start >= 0.5
    if name == "import":
        assert "env.log" in str(exc.value)


def _cli_args(limits: Limits) -> list[str]:
    return ["--fuel", str(limits.fuel), "--timeout", str(limits.timeout_s), "--memory-mb", str(limits.memory_mb)]


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_exit_code_and_one_stderr_line(name: str, tmp_path) -> None:
    module, export, args, limits, _, code, exit_code = FAULTS[name]
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(module)
    argv = [sys.executable, "-m", "memjit.cli", "run", str(path), "--export", export, *_cli_args(limits)]
    if args:
        argv += ["--args", *map(str, args)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == exit_code, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("memjit: ")
    if code is not None:
        assert code in lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("wat", "args", "code"),
    [
        (DIV, [-(2**31), -1], "integer_overflow"),
        (W('(module (func (export "f") unreachable))'), [], "unreachable"),
        (W('(module (func $f (export "f") (call $f)))'), [], "stack_overflow"),
        (W(TABLE), [1], "indirect_call_to_null"),
        (W(TABLE), [5], "table_out_of_bounds"),
        (W(TABLE), [0], "indirect_call_type_mismatch"),
        (W('(module (memory 1) (func (export "f") (param i32) (result i32) (i32.load offset=4294967295 (local.get 0))))'), [-1], "memory_out_of_bounds"),
    ],
)
def test_trap_codes(wat: bytes, args: list[int], code: str) -> None:
    assert code in TRAP_CODES
    with pytest.raises(Trap) as exc:
        run(wat, "f", args)
    assert exc.value.code == code
    assert exc.value.exit_code == 3


def test_all_trap_codes_covered() -> None:
    assert len(set(TRAP_CODES)) == 8


def test_grow_past_declared_maximum_is_minus_one_not_a_fault() -> None:
    module = W('(module (memory 1 2) (func (export "f") (param i32) (result i32) (memory.grow (local.get 0))))')
    assert run(module, "f", [5]).results == (-1,)
    assert run(module, "f", [1]).results == (1,)


def test_grow_within_cap_succeeds_and_memory_is_returned() -> None:
    module = W(
        '(module (memory (export "memory") 1)'
        ' (func (export "f") (result i32) (drop (memory.grow (i32.const 31)))'
        ' (i32.store (i32.const 2097148) (i32.const -1)) (memory.size)))'
    )
    result = run(module, "f", [], Limits(memory_mb=2))
    assert result.results == (32,)
    assert result.memory is not None and len(result.memory) == 32 * 65536
    assert result.memory[-4:] == b"\xff\xff\xff\xff"
    with pytest.raises(MemoryCapExceeded):
        run(module, "f", [], Limits(memory_mb=1))


def test_cap_denied_grow_is_a_fault_even_when_the_export_returns() -> None:
    module = W('(module (memory 1) (func (export "f") (result i32) (memory.grow (i32.const 100))))')
    with pytest.raises(MemoryCapExceeded):
        run(module, "f", [], Limits(memory_mb=2))


def test_initial_memory_above_cap() -> None:
    module = W('(module (memory 100) (func (export "f")))')
    with pytest.raises(MemoryCapExceeded):
        run(module, "f", [], Limits(memory_mb=1))
    run(module, "f", [], Limits(memory_mb=7))


def test_every_call_gets_a_fresh_instance_and_zeroed_memory() -> None:
    counter = W(
        '(module (memory (export "memory") 1) (global $g (mut i32) (i32.const 0))'
        ' (data (i32.const 8) "\\05")'
        ' (func (export "f") (result i32)'
        '  (global.set $g (i32.add (global.get $g) (i32.const 1)))'
        '  (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))'
        '  (i32.store8 (i32.const 8) (i32.add (i32.load8_u (i32.const 8)) (i32.const 1)))'
        '  (i32.add (i32.mul (global.get $g) (i32.const 100))'
        '   (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 10)) (i32.load8_u (i32.const 8))))))'
    )
    dirty = W(
        '(module (memory 1) (func (export "f") (local i32)'
        ' (loop (i32.store (local.get 0) (i32.const -1))'
        '  (br_if 0 (i32.ne (local.tee 0 (i32.add (local.get 0) (i32.const 4))) (i32.const 65536))))))'
    )
    for _ in range(5):
        run(dirty, "f", [])
        assert run(counter, "f", []).results == (116,)
    memory = run(counter, "f", []).memory
    assert memory is not None and memory[9:] == bytes(65536 - 9)


def test_reused_memory_is_not_accessible_beyond_its_size() -> None:
    big = W('(module (memory 1) (func (export "f") (drop (memory.grow (i32.const 15))) (i32.store (i32.const 1000000) (i32.const 1))))')
    for _ in range(3):
        run(big, "f", [])
        with pytest.raises(Trap, match="memory_out_of_bounds"):
            run(LOAD, "f", [65536])
        assert run(LOAD, "f", [65532]).results == (0,)


def test_fuel_used_is_wasmtime_accounting() -> None:
    add = W('(module (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))')
    result = run(add, "f", [41])
    assert result.results == (42,)
    assert result.fuel_used == 4  # 1 per function entry + local.get, i32.const, i32.add
    assert result.memory is None
    with pytest.raises(OutOfFuel):
        run(add, "f", [41], Limits(fuel=3))
    assert run(add, "f", [41], Limits(fuel=4)).fuel_used == 4


def test_integer_arguments_and_results() -> None:
    echo = W('(module (func (export "f") (param i32 i64) (result i64) (local.get 1))'
             ' (func (export "g") (param i32 i64) (result i32) (local.get 0)))')
    assert run(echo, "f", [-(2**31), 2**63 - 1]).results == (2**63 - 1,)
    assert run(echo, "g", [-(2**31), 2**63 - 1]).results == (-(2**31),)
    assert run(echo, "f", [2**31 - 1, -(2**63)]).results == (-(2**63),)
    neg = W('(module (func (export "f") (result i32) (i32.const 0xFFFFFFFF)))')
    assert run(neg, "f", []).results == (-1,)  # signed, as wasmtime returns it
    for bad in ([2**31, 0], [0, 2**63], [-(2**31) - 1, 0], [True, 0], ["1", 0]):
        with pytest.raises(BadInput):
            run(echo, "f", bad)
    with pytest.raises(BadInput, match="takes 2 argument"):
        run(echo, "f", [1])


def test_bad_modules_and_exports() -> None:
    with pytest.raises(BadInput, match="invalid WebAssembly module"):
        run(b"\x00asm\x01\x00\x00\x00garbage", "f", [])
    with pytest.raises(BadInput, match="no function export 'g'"):
        run(LOOP, "g", [])
    with pytest.raises(BadInput, match="is a memory"):
        run(GROW_LOOP, "memory", [])
    floats = W('(module (func (export "f") (param f64) (result f64) (local.get 0)))')
    with pytest.raises(UnsupportedModule, match="f64"):
        run(floats, "f", [1])
    for limits in (dict(fuel=-1), dict(timeout_s=0), dict(memory_mb=5000)):
        with pytest.raises(BadInput):
            Limits(**limits)


def test_check_imports_names_the_first_import() -> None:
    check_imports(LOOP)
    with pytest.raises(UnsupportedModule, match="env.log"):
        check_imports(IMPORTS)
    with pytest.raises(UnsupportedModule, match="env.mem"):
        check_imports(W('(module (import "env" "mem" (memory 1)) (func (export "f")))'))


def test_deadline_never_fires_into_a_later_or_concurrent_call() -> None:
    # A deadline fault, then many quick calls: none may be cut short by it (their own
    # deadlines are the default 5 s, far beyond any scheduling stall of a loaded machine).
    with pytest.raises(DeadlineExceeded):
        run(LOOP, "f", [], Limits(fuel=10**18, timeout_s=0.05))
    quick = W('(module (func (export "f") (param i32) (result i32) (local.get 0)))')
    for i in range(200):
        assert run(quick, "f", [i], Limits()).results == (i,)
    # A long-running call in another thread must not be interrupted by this thread's deadline.
    counted = W(
        '(module (func (export "f") (param i32) (result i32)'
        ' (loop (br_if 0 (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))) (local.get 0)))'
    )
    outcome: list[object] = []

    def long_call() -> None:
        outcome.append(run(counted, "f", [1_000_000_000], Limits(fuel=10**12, timeout_s=60)))

    worker = threading.Thread(target=long_call)
    worker.start()
    for _ in range(3):
        with pytest.raises(DeadlineExceeded):
            run(LOOP, "f", [], Limits(fuel=10**18, timeout_s=0.05))
    assert worker.is_alive()  # the deadlines above fired while the long call was running
    worker.join()
    assert len(outcome) == 1 and outcome[0].results == (0,)  # type: ignore[attr-defined]


def test_modules_are_cached_by_cid() -> None:
    module = W('(module (func (export "cached") (result i32) (i32.const 7)))')
    run(module, "cached", [])
    first = sandbox._compile(module)
    assert sandbox._compile(bytes(bytearray(module))) is first  # same content, other object
    from memjit.runtime.store import cid_of

    assert first.cid == cid_of(module)
