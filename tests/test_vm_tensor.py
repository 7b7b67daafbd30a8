"""Precompiles: the memjit.dot_* imports in the front end, the sandbox and the tracer, and the
AIR's tensor table, with malicious provers that break each of its rules; a call whose operand
leaves the memory is a proven trap."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import wasmtime

from circuits.field import P
from circuits.wasm_vm.columns import COL, reg
from circuits.wasm_vm.tensor import TCOL
from memjit.errors import Trap, UnsupportedModule
from memjit.runtime.claims import prove_claim, vk_of, vm_program, witness
from memjit.runtime.sandbox import Limits, run
from memjit.runtime.tracer import trace, trace_checked
from memjit.runtime.wasm import load
from memjit.runtime.wasm.opcodes import DOT_I8I8
from memjit.workers import WORKERS_DIR
from verifier.claims import verify_claim
from tests.test_vm_air import assert_rejected, constraints_hold, fast_verdict, honest

A = bytes([1, 2, 3, 0xFD, 5, 0x86, 7, 8, 0x80, 0x7F, 0xFF, 0, 9, 10, 11, 12])
B = bytes([0xFF, 2, 0x80, 4, 5, 6, 7, 0xF8, 1, 1, 1, 1, 0x90, 0x91, 0x92, 0x93])


def module(body: str, imports: str = "", pages: int = 1) -> bytes:
    """Operands a at 0 and b at 32 (16 bytes each) in a memory of ``pages``; f(x, y) runs
    ``body``."""
    data = "".join(f"\\{x:02x}" for x in A), "".join(f"\\{x:02x}" for x in B)
    return wasmtime.wat2wasm(
        f'(module {imports}'
        f'(import "memjit" "dot_i8i8" (func $dot (param i32 i32 i32) (result i32)))'
        f'(import "memjit" "dot_i8u8" (func $dotu (param i32 i32 i32) (result i32)))'
        f'(memory (export "memory") {pages}) (data (i32.const 0) "{data[0]}") '
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
    with pytest.raises(Trap, match="memory_out_of_bounds"):
        run(module(body), "f", [8, 0])


OUT_OF_BOUNDS = [  # (body, args): a call whose operand leaves the 64 KiB memory
    ("(call $dot (i32.const 65532) (i32.const 0) (local.get 0))", [8, 0]),  # a, one word out
    ("(call $dotu (i32.const 0) (local.get 1) (local.get 0))", [8, 65534]),  # b, unaligned
    ("(call $dot (local.get 1) (i32.const 0) (local.get 0))", [0, 65537]),  # empty, past the end
    ("(call $dot (local.get 1) (i32.const 0) (local.get 0))", [4, -4]),  # a = 2^32 - 4
    ("(drop (call $dotu (i32.const 0) (i32.const 32) (i32.const 8))) "  # after a proven call
     "(call $dot (i32.const 8) (local.get 1) (local.get 0))", [16, 65536 - 12]),
]


@pytest.mark.parametrize("body, args", OUT_OF_BOUNDS)
def test_an_out_of_bounds_call_is_a_proven_trap(body, args):
    """WebAssembly's semantics: the call traps; its row is the run's last, a trap row."""
    vm, st, main = honest(module(body), "f", args)
    assert (st.trap, st.result) == ("memory_out_of_bounds", None)
    name = body.rsplit("(call $", 1)[1].split()[0]
    op = "memjit.dot_i8u8" if name == "dotu" else "memjit.dot_i8i8"
    assert main[COL[f"s_{op}/oob"], st.steps - 1] == 1
    constraints_hold(vm, st, main)
    assert fast_verdict(vm, st, main).valid


def test_a_trapped_claim_verifies_end_to_end():
    body, args = OUT_OF_BOUNDS[0]
    wasm = module(body)
    claim = prove_claim(wasm, "f", args)
    assert claim.statement.trap == "memory_out_of_bounds"
    verdict = verify_claim(claim.encode(), vk_of(wasm))
    assert verdict.valid, verdict.reason


def _cut(tr, rows: int, trap: str | None):
    """A forged trace: ``tr``'s first ``rows`` rows, ending as ``trap`` says."""
    return dataclasses.replace(tr, steps=rows, trap=trap, results=(),
                               columns={k: v[:rows] for k, v in tr.columns.items()})


def test_a_trap_claimed_for_an_in_bounds_call_rejected():
    """The run cut at an in-bounds call whose row claims the out-of-bounds trap: its operand's
    distance past the end is negative, so the cheater's best (both halves balanced in the
    field) needs a carry no 12-bit limb holds."""
    wasm = module("(call $dot (i32.const 65528) (local.get 1) (local.get 0))")  # the last word
    prog = load(wasm)
    tr = trace(prog, "f", [8, 0])
    row = int(np.flatnonzero(tr.op >= DOT_I8I8)[0])
    vm = vm_program(prog)
    main, st = witness(_cut(tr, row + 1, "memory_out_of_bounds"), vm)
    assert main[COL["s_memjit.dot_i8i8/oob"], row] == 1
    half = lambda r, k: sum(int(main[reg(r)[4 * k + i], row]) << (4 * i) for i in range(4))
    for o0 in (0, 1):  # either operand (a in Q, b in Y) claimed out of bounds
        forged = main.copy()
        op = "Y" if o0 else "Q"
        forged[COL["o0"], row] = o0
        low = half(op, 0) + half("X", 0) + 65535
        forged[COL["cm0"], row] = low >> 16
        forged[reg("Z")[:4], row] = [(low >> (4 * i)) & 15 for i in range(4)]
        high = half(op, 1) + half("X", 1) + (low >> 16) - 1 - int(main[COL["pages"], row])
        forged[reg("Z")[4:], row] = 0
        forged[COL["cm1"], row] = high * pow(65536, -1, P) % P  # negative: no 12-bit limb
        assert_rejected(vm, st, forged)


def test_a_result_claimed_for_an_out_of_bounds_call_rejected():
    """The call reads a's last word one word past the memory (the memory table's end
    sentinel holds zero there); the cheater claims the product over those zeros as the
    result. The call's room in memory is then -1 word: no pair of 12-bit limbs holds it."""
    body, args = OUT_OF_BOUNDS[0]
    wide = trace(load(module(body, pages=2)), "f", args)  # in bounds in two pages: returns
    assert wide.trap is None
    prog = load(module(body))
    forged_trace = dataclasses.replace(
        wide, program=prog, columns={**wide.columns, "pages": np.ones_like(wide.pages)},
        initial_memory=wide.initial_memory[:65536], final_memory=wide.final_memory[:65536])
    vm = vm_program(prog)
    main, st = witness(forged_trace, vm)
    assert st.trap is None and st.result is not None
    assert_rejected(vm, st, main)  # no room left: cm0 = cm1 = 0 leave the slack unbalanced
    row = int(np.flatnonzero(main[COL["s_memjit.dot_i8i8"]] == 1)[0])
    main[COL["cm0"], row], main[COL["cm1"], row] = P - 1, 0  # 4 (cm0 + 4096 cm1) = -4
    assert_rejected(vm, st, main)


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
