"""i64 on the 32-bit VM: every i64 instruction is lowered to i32 rows (memjit.runtime.wasm.int64) and
proven by the unchanged i32 AIR. Completeness on generated programs and the 64-bit workers;
one malicious prover per i64 family; trapping i64 divisions as trap statements."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings, strategies as st

from circuits.wasm_vm import VmAir, VmInputs
from circuits.wasm_vm.columns import COL, reg
from circuits.wasm_vm.statement import RETURNED_I64, StatementFormatError, decode_statement
from memjit.runtime.claims import check_supported, prove_claim, vk_of, vm_program, witness
from memjit.runtime.tracer import trace, trace_checked
from memjit.runtime.wasm import load
from memjit.runtime.wasm.opcodes import OP
from memjit.workers import load as load_worker
from tests.test_vm_air import FAST, assert_rejected, constraints_hold, fast_verdict, \
    lie_by_substitution
from verifier.claims import decode_claim, verify_claim

M64 = (1 << 64) - 1
EDGES = [0, 1, 2, -1, -2, 31, 32, 33, 63, 64, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
         0xFFFFFFFF, 1 << 32, (1 << 32) + 1, -(1 << 32), 1 << 48, (1 << 63) - 1, -(1 << 63),
         0x0123456789ABCDEF, -0x0123456789ABCDEF]
i64s = st.one_of(st.sampled_from(EDGES), st.integers(-(1 << 63), (1 << 63) - 1))
BINOPS = ["add", "sub", "mul", "and", "or", "xor", "shl", "shr_u", "shr_s", "rotl", "rotr",
          "div_u", "div_s", "rem_u", "rem_s"]
COMPARES = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
UNOPS = ["clz", "ctz", "popcnt", "extend8_s", "extend16_s", "extend32_s"]


def module64(body: str) -> bytes:
    return wasmtime.wat2wasm(
        f'(module (memory 1) (global $g (mut i64) (i64.const -3)) '
        f'(func (export "f") (param i64 i64) (result i64) {body}))')


def honest64(module: bytes, args: list[int], export: str = "f"):
    """Trace (checked against wasmtime) and build the witness."""
    prog = load(module)
    check_supported(prog)
    vm = vm_program(prog)
    main, st_ = witness(trace_checked(module, export, args), vm)
    return vm, st_, main


@st.composite
def expression(draw, depth: int = 3) -> str:
    """A random i64 expression over constants and both parameters: arithmetic, comparisons,
    bit counts, sign extensions, conversions, select and memory (never traps: divisors are
    forced odd, and positive for div_s)."""
    kind = draw(st.integers(0, 7 if depth else 1))
    if kind == 0:
        return f"(i64.const {draw(i64s)})"
    if kind == 1:
        return f"(local.get {draw(st.integers(0, 1))})"
    sub = lambda: draw(expression(depth - 1))  # noqa: E731
    if kind == 2:
        return f"(i64.{draw(st.sampled_from(UNOPS))} {sub()})"
    if kind == 3:
        cmp = draw(st.sampled_from(COMPARES))
        return f"(i64.extend_i32_{draw(st.sampled_from('su'))} (i64.{cmp} {sub()} {sub()}))"
    if kind == 4:
        conv = draw(st.sampled_from(["i64.extend_i32_s", "i64.extend_i32_u"]))
        return f"({conv} (i32.wrap_i64 {sub()}))"
    if kind == 5:
        return f"(select {sub()} {sub()} (i64.eqz {sub()}))"
    if kind == 6:
        load_op = draw(st.sampled_from(["i64.load", "i64.load8_s", "i64.load16_u",
                                        "i64.load32_s", "i64.load32_u"]))
        store_op, width = draw(st.sampled_from([("i64.store", 8), ("i64.store8", 1),
                                                ("i64.store16", 2), ("i64.store32", 4)]))
        addr = 8 * draw(st.integers(0, 5))  # aligned: the VM proves aligned accesses
        return (f"(i64.store offset=8 (i32.const {addr}) {sub()}) "
                f"(global.set $g (i64.add (global.get $g) {sub()})) "
                f"({store_op} (i32.const {addr + 8 + 8 - width}) (global.get $g)) "
                f"({load_op} offset=8 (i32.const {addr}))")
    op = draw(st.sampled_from(BINOPS))
    lhs, rhs = sub(), sub()
    if op in ("div_u", "div_s", "rem_u", "rem_s"):
        rhs = f"(i64.or {rhs} (i64.const 1))"
        if op == "div_s":
            rhs = f"(i64.and {rhs} (i64.const 0x7FFFFFFFFFFFFFFF))"
    return f"(i64.{op} {lhs} {rhs})"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression(), i64s, i64s)
def test_generated_i64_programs_match_wasmtime_and_satisfy_the_air(body, a, b):
    constraints_hold(*honest64(module64(body), [a, b]))


def test_i64_parameters_and_result_prove_and_verify():
    body = ("(i64.add (i64.div_s (local.get 0) (i64.or (local.get 1) (i64.const 1))) "
            "(i64.rotl (i64.mul (local.get 0) (local.get 1)) (local.get 1)))")
    module = module64(body)
    for args in ([-(1 << 63), 6], [0x0123456789ABCDEF, 0xFEDCBA98]):
        claim = prove_claim(module, "f", args, FAST)
        expected = trace_checked(module, "f", args).results[0]
        assert claim.statement.wide and claim.statement.result == expected & M64
        assert verify_claim(claim.encode(), vk_of(module), min_security_bits=0).valid


@pytest.mark.parametrize("worker, export, args", [("fnv64", "fnv", [8, 7]),
                                                  ("mix64", "mix", [3, 12345])])
def test_64_bit_workers_prove_and_verify(worker, export, args):
    verdict = fast_verdict(*honest64(load_worker(worker), args, export))
    assert verdict.valid, verdict.reason


# --- traps ----------------------------------------------------------------------------------

@pytest.mark.parametrize("op, args, trap", [
    ("i64.div_u", [5, 0], "integer_divide_by_zero"),
    ("i64.rem_s", [-(1 << 63), 0], "integer_divide_by_zero"),
    ("i64.div_s", [-(1 << 63), -1], "integer_overflow"),
])
def test_trapping_i64_division_verifies_as_a_trap_and_never_as_a_result(op, args, trap):
    module = module64(f"({op} (local.get 0) (local.get 1))")
    vk = vk_of(module)
    claim = prove_claim(module, "f", args, FAST)
    assert claim.statement.trap == trap and claim.statement.result is None
    assert verify_claim(claim.encode(), vk, min_security_bits=0).valid
    as_result = dataclasses.replace(claim.statement, trap=None, result=0, wide=True)
    forged = dataclasses.replace(claim, statement=as_result).encode()
    assert not verify_claim(forged, vk, min_security_bits=0).valid
    assert decode_claim(forged).statement.result == 0


def test_i64_remainder_of_int_min_by_minus_one_is_zero():
    module = module64("(i64.rem_s (local.get 0) (local.get 1))")
    vm, st_, main = honest64(module, [-(1 << 63), -1])
    assert st_.trap is None and st_.result == 0
    assert fast_verdict(vm, st_, main).valid


# --- malicious provers ----------------------------------------------------------------------

def test_wrong_i64_carry_rejected():
    # the carry of the low words is an i32.lt_u row; the lie computes it as gt_u
    module = module64("(i64.add (local.get 0) (local.get 1))")
    assert_rejected(*lie_by_substitution(module, [0xFFFFFFFF, 1], "i32.lt_u", "i32.gt_u"))


def test_wrong_i64_quotient_rejected():
    # 32-bit operands: an i32.div_u row
    module = module64("(i64.div_u (local.get 0) (local.get 1))")
    assert_rejected(*lie_by_substitution(module, [1000, 7], "i32.div_u", "i32.rem_u"))


def lie_by_advice(module: bytes, args: list[int], kinds: dict[int, int]):
    """The honest ROM, but the prover's advice words of kind k are those of kind kinds[k]
    (say the remainder for the quotient): the checks' rows compute a non-zero word that only
    the ``assert_eqz`` row's constraint refuses."""
    prog = load(module)
    vm = vm_program(prog)
    rows = prog.op == OP["advice"]
    assert rows.any()
    imm = prog.imm.copy()
    for k, as_k in kinds.items():
        imm[rows & (prog.imm & 3 == k)] = (prog.imm[rows & (prog.imm & 3 == k)] & ~3) | as_k
    lying = dataclasses.replace(prog, imm=imm)
    main, st_ = witness(trace(lying, "f", args), vm_program(lying))
    hit = np.isin(main[COL["pc"]], np.flatnonzero(rows)) & (main[COL["s_pad"]] == 0)
    main[COL["imm_lo"], hit] = prog.imm[main[COL["pc"], hit].astype(np.int64)] & 0xFFFF
    return vm, dataclasses.replace(st_, vk=vm.digest()), main


@pytest.mark.parametrize("op, args, kinds", [
    ("div_u", [-5, 0x123456789], {0: 2, 2: 0}),  # quotient and remainder swapped
    ("div_u", [-5, 0x123456789], {1: 0}),  # a quotient past 2^64 / d: q*d wraps
    ("rem_s", [-(1 << 62), 0x1234567], {2: 3}),  # a remainder of the wrong size
])
def test_wrong_i64_division_advice_rejected(op, args, kinds):
    vm, st_, main = lie_by_advice(module64(f"(i64.{op} (local.get 0) (local.get 1))"), args,
                                  kinds)
    at = main[COL["s_assert_eqz"]] == 1
    assert at.any() and main[reg("X")][:, at].any()  # the check's word is not zero
    assert_rejected(vm, st_, main)


def test_wrong_high_word_of_a_product_rejected():
    # i32.mulhu run as i32.mul: the row claims the low word as the high word
    module = module64("(i64.mul (local.get 0) (local.get 1))")
    assert_rejected(*lie_by_substitution(module, [0x123456789, 0xFEDCBA987], "i32.mulhu",
                                         "i32.mul"))


def test_wrong_i64_high_word_of_the_result_rejected():
    vm, st_, main = honest64(module64("(i64.mul (local.get 0) (local.get 1))"),
                             [0x100000001, 0x300000005])
    lie = st_.result ^ (1 << 40)
    assert_rejected(vm, dataclasses.replace(st_, result=lie), main)
    # also lying consistently in the memory table's final value of slot 1
    main[reg("mfin")[2], 1] ^= 1
    assert_rejected(vm, dataclasses.replace(st_, result=lie), main)


def test_i64_result_needs_a_wide_statement():
    vm, st_, main = honest64(module64("(local.get 0)"), [7, 0])
    with pytest.raises(ValueError, match="signature"):
        VmAir(VmInputs(vm, dataclasses.replace(st_, wide=False)))
    assert st_.args == (7, 0, 0, 0)  # two i64 parameters: four 32-bit words


def test_i64_shift_by_constant_folds_the_constant():
    by_constant = honest64(module64("(i64.shr_u (local.get 0) (i64.const 12))"), [-1, 0])
    by_variable = honest64(module64("(i64.shr_u (local.get 0) (local.get 1))"), [-1, 12])
    assert by_constant[1].result == by_variable[1].result == M64 >> 12
    assert by_constant[1].steps < by_variable[1].steps // 2
    constraints_hold(*by_constant)


def test_wide_statement_encoding_round_trips_and_is_strict():
    _, st_, _ = honest64(module64("(i64.sub (local.get 0) (local.get 1))"), [1, 2])
    data = st_.encode()
    back, used = decode_statement(data)
    assert used == len(data) and back.wide and back.result == M64 and back.signed_result == -1
    assert back.encode() == data
    at = data.index(bytes([RETURNED_I64]) + struct.pack("<II", *st_.result_words))
    with pytest.raises(StatementFormatError):
        decode_statement(data[:at] + bytes([RETURNED_I64 + 1]) + data[at + 1:])
    with pytest.raises(StatementFormatError):
        decode_statement(data[:at + 5])  # the high word is missing


@pytest.mark.parametrize("op", ["shl", "shr_u", "shr_s"])
def test_shift_of_a_local_by_a_constant_reads_the_high_word_from_the_local(op):
    # local.get / local.tee then i64.const 7 and the shift: the high word is never pushed
    x = -0x123456789
    expected = {"shl": x << 7, "shr_u": (x & M64) >> 7, "shr_s": x >> 7}[op] & M64
    for source in ("(local.get 0)", "(local.tee 1 (local.get 0))"):
        vm, st_, main = honest64(module64(f"(i64.{op} {source} (i64.const 7))"), [x, 0])
        assert st_.result == expected
        constraints_hold(vm, st_, main)
