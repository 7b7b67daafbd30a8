"""Precompiles: the memjit.dot_* imports in the front end, the sandbox and the tracer, and the
AIR's tensor table, with malicious provers that break each of its rules."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import wasmtime

from circuits.wasm_vm.columns import COL, reg
from circuits.wasm_vm.tensor import TCOL
from memjit.errors import UnsupportedModule
from memjit.runtime.claims import vk_of
from memjit.runtime.sandbox import Limits, run
from memjit.runtime.tracer import trace_checked
from memjit.runtime.wasm import load
from memjit.workers import WORKERS_DIR
from tests.test_vm_air import assert_rejected, constraints_hold, fast_verdict, honest

A = bytes([1, 2, 3, 0xFD, 5, 0x86, 7, 8, 0x80, 0x7F, 0xFF, 0, 9, 10, 11, 12])
B = bytes([0xFF, 2, 0x80, 4, 5, 6, 7, 0xF8, 1, 1, 1, 1, 0x90, 0x91, 0x92, 0x93])


def module(body: str, imports: str = "") -> bytes:
    """Operands a at 0 and b at 32 (16 bytes each); f(x, y) runs ``body``."""
    data = "".join(f"\\{x:02x}" for x in A), "".join(f"\\{x:02x}" for x in B)
    return wasmtime.wat2wasm(
        f'(module {imports}'
        f'(import "memjit" "dot_i8i8" (func $dot (param i32 i32 i32) (result i32)))'
        f'(import "memjit" "dot_i8u8" (func $dotu (param i32 i32 i32) (result i32)))'
        f'(memory (export "memory") 1) (data (i32.const 0) "{data[0]}") '
        f'(data (i32.const 32) "{data[1]}") '
        f'(func (export "f") (param i32 i32) (result i32) {body}))')


TWO_CALLS = module("(i32.sub (call $dot (i32.const 0) (i32.const 32) (local.get 0)) "
                   "(call $dotu (i32.const 4) (i32.const 36) (local.get 1)))")


def reference(n: int, m: int) -> int:
    a, b = np.frombuffer(A, np.int8).astype(int), np.frombuffer(B, np.int8).astype(int)
    return int(a[:n] @ b[:n] - a[4:4 + m] @ (b[4:4 + m] % 256))


def test_precompiles_run_trace_and_prove():
    result = run(TWO_CALLS, "f", [16, 12])
    assert result.results == (reference(16, 12),)
    tr = trace_checked(TWO_CALLS, "f", [16, 12])  # fuel and result agree with wasmtime
    assert tr.results == result.results and tr.fuel == result.fuel_used
    vm, st, main = honest(TWO_CALLS, "f", [16, 12])
    assert main[TCOL["t_act"]].sum() == 4 + 3  # one row per word of each call
    constraints_hold(vm, st, main)
    assert fast_verdict(vm, st, main).valid


def test_a_call_sees_what_the_program_stored_before_it():
    body = ("(i32.store (i32.const 0) (local.get 0)) "
            "(call $dot (i32.const 0) (i32.const 32) (i32.const 8))")
    vm, st, main = honest(module(body), "f", [0x01020304, 0])
    b = np.frombuffer(B, np.int8).astype(int)
    assert st.result == (4 * b[0] + 3 * b[1] + 2 * b[2] + b[3] + np.frombuffer(A, np.int8)[4:8]
                         .astype(int) @ b[4:8]) & 0xFFFFFFFF
    constraints_hold(vm, st, main)


def test_fuel_is_charged_by_size():
    small, large = (run(TWO_CALLS, "f", [n, 4]).fuel_used for n in (4, 16))
    assert large - small == 3  # one per 4 bytes
    with pytest.raises(Exception, match="fuel"):
        trace_checked(TWO_CALLS, "f", [1 << 20, 4], Limits(fuel=1000))


def test_out_of_bounds_operands_trap_in_both():
    body = "(call $dot (i32.const 65532) (i32.const 0) (local.get 0))"
    assert trace_checked(module(body), "f", [8, 0]).trap == "memory_out_of_bounds"


@pytest.mark.parametrize("body", [
    "(call $dot (i32.const 1) (i32.const 32) (i32.const 8))",  # unaligned
    "(call $dot (i32.const 0) (i32.const 32) (i32.const 6))",  # not a multiple of 4
    "(call $dot (i32.const 0) (i32.const 4) (i32.const 8))",  # overlapping
    "(call $dot (i32.const 0) (i32.const 32) (i32.const 0))",  # empty
])
def test_calls_outside_the_table_are_refused_per_call(body):
    with pytest.raises(UnsupportedModule, match="not provable"):
        honest(module(body), "f", [0, 0])


@pytest.mark.parametrize("imports, match", [
    ('(import "env" "f" (func (param i32)))', "only memjit's precompiles"),
    ('(import "memjit" "dot_i8i8" (func (param i32 i32) (result i32)))', "type"),
    ('(import "memjit" "sqrt" (func (param i32 i32 i32) (result i32)))', "only memjit's"),
])
def test_other_imports_are_refused(imports, match):
    wasm = wasmtime.wat2wasm(f'(module {imports} (memory (export "memory") 1))')
    with pytest.raises(UnsupportedModule, match=match):
        load(wasm)
    with pytest.raises(UnsupportedModule):
        vk_of(wasm)


def test_the_key_names_the_precompiles_it_uses():
    plain, dot = ((WORKERS_DIR / f"digits_large{s}.wasm").read_bytes() for s in ("", "_dot"))
    assert b"memjit.dot" not in vk_of(plain)
    from circuits.wasm_vm import decode_vk
    assert decode_vk(vk_of(dot)).precompiles == ("memjit.dot_i8u8",)
    assert decode_vk(vk_of(plain)).precompiles == ()


# --- malicious provers --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_calls():
    return honest(TWO_CALLS, "f", [16, 12])


def call_rows(main, k: int) -> np.ndarray:
    """Table rows of the k-th call."""
    starts = np.flatnonzero((main[TCOL["t_n"]] == 1) & (main[TCOL["t_act"]] == 1))
    end = starts[k + 1] if k + 1 < len(starts) else int(main[TCOL["t_act"]].sum())
    return np.arange(starts[k], end)


def test_wrong_sum_rejected(two_calls):
    vm, st, main = two_calls
    main = main.copy()
    last = call_rows(main, 0)[-1]
    main[TCOL["t_acc"], last] += 1
    assert_rejected(vm, st, main)


def test_wrong_product_rejected(two_calls):
    vm, st, main = two_calls  # a byte of a read as another (the memory holds the true one)
    main = main.copy()
    main[TCOL["t_x0"], call_rows(main, 0)[0]] ^= 1
    assert_rejected(vm, st, main)


def test_operands_from_another_address_rejected(two_calls):
    vm, st, main = two_calls
    main = main.copy()
    main[TCOL["t_b"], call_rows(main, 1)] -= 1  # b's previous words: a + 0..
    assert_rejected(vm, st, main)


def test_operands_from_another_time_rejected(two_calls):
    vm, st, main = two_calls
    main = main.copy()
    rows = call_rows(main, 1)
    main[TCOL["t_clk"], rows] = main[TCOL["t_clk"], call_rows(main, 0)[0]]
    assert_rejected(vm, st, main)


def test_a_length_other_than_the_calls_rejected(two_calls):
    vm, st, main = two_calls
    main = main.copy()
    rows = call_rows(main, 0)
    main[TCOL["t_last"], rows[-2]] = 1  # end the run a word early: a 12-byte product
    main[TCOL["t_acc"], rows[-2]] = main[TCOL["t_acc"], rows[-1]]
    assert_rejected(vm, st, main)


def test_a_result_the_table_never_produced_rejected(two_calls):
    vm, st, main = two_calls
    main = main.copy()
    row = int(np.flatnonzero(main[COL["s_memjit.dot_i8i8"]] == 1)[0])
    for r in ("R", "Z"):
        main[reg(r)[0], row] ^= 1
    assert_rejected(vm, st, main)


def test_a_signed_operand_read_unsigned_rejected(two_calls):
    vm, st, main = two_calls  # the i8u8 call's run claims to be i8i8
    main = main.copy()
    main[TCOL["t_kind"], call_rows(main, 1)] = 0
    assert_rejected(vm, st, main)


def test_a_wrong_sign_bit_rejected(two_calls):
    vm, st, main = two_calls  # byte 3 of a's first word is 0xFD: claim it positive
    main = main.copy()
    row = call_rows(main, 0)[0]
    main[TCOL["t_sa3"], row] = 0
    assert_rejected(vm, st, main)


def test_statement_tampering_rejected(two_calls):
    vm, st, main = two_calls
    assert_rejected(vm, dataclasses.replace(st, result=st.result ^ 1), main)


def test_a_worker_that_calls_a_precompile_and_grows_its_memory_is_refused():
    body = ("(drop (memory.grow (i32.const 1))) "
            "(call $dot (i32.const 0) (i32.const 32) (i32.const 8))")
    with pytest.raises(UnsupportedModule, match="grows its memory"):
        honest(module(body), "f", [0, 0])
