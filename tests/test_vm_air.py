"""The VM AIR: completeness on the workers and generated programs; one malicious prover per
constraint family (each lies in one way, skips its own checks, and is rejected)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings, strategies as st

from circuits.field import sub
from circuits.wasm_vm import VmAir, VmInputs
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.columns import COL, reg
from circuits.wasm_vm.isa import OP_IDS
from memjit.runtime.claims import check_supported, vm_program, witness
from memjit.runtime.tracer import trace
from memjit.runtime.wasm import load
from memjit.runtime.wasm.opcodes import OP
from memjit.workers import load as load_worker
from prover import prove
from prover.composition import ConstraintViolation, check_trace
from verifier import DEFAULT_PARAMS, ProofParams, verify_air
from verifier.params import AirShape
from verifier.transcript import Transcript

FAST = ProofParams(num_queries=8, grinding_bits=2)  # soundness tests: shape, not security
CHALLENGES = [np.array([3, 1, 4, 1], np.uint64), np.array([5, 9, 2, 6], np.uint64)]


def honest(module: bytes, export: str, args: list[int]):
    prog = load(module)
    check_supported(prog)
    vm = vm_program(prog)
    main, st = witness(trace(prog, export, args), vm)
    return vm, st, main


def constraints_hold(vm, st, main) -> None:
    """The prover's own check with fixed challenges (fast completeness test)."""
    air = VmAir(VmInputs(vm, st))
    check_trace(air, main, air.build_aux_trace(main, CHALLENGES), CHALLENGES)


def fast_verdict(vm, st, main):
    """Prove without the prover's checks and verify (FAST parameters)."""
    air = VmAir(VmInputs(vm, st))
    return verify_air(air, prove(air, main, FAST, check=False), min_security_bits=0)


def wat(body: str, params: int = 2) -> bytes:
    ps = " ".join(["i32"] * params)
    return wasmtime.wat2wasm(
        f'(module (memory 1) (data (i32.const 16) "\\81\\02\\f3\\04\\85\\86\\07\\88") '
        f'(func (export "f") (param {ps}) (result i32) {body}))')


# --- completeness -------------------------------------------------------------------------------

@pytest.mark.parametrize("worker, export, args", [
    *[("fib", "fib", [n]) for n in range(10, 16)],
    ("crc32", "crc32", [64, 1]), ("crc32", "crc32", [512, 1]), ("mlp", "classify", [3]),
    ("sort", "sort", [16, 7]),
])
def test_workers_satisfy_the_air(worker, export, args):
    constraints_hold(*honest(load_worker(worker), export, args))


@pytest.mark.parametrize("worker, export, args", [("fib", "fib", [10]), ("crc32", "crc32", [64, 1])])
def test_workers_prove_and_verify(worker, export, args):
    vm, st, main = honest(load_worker(worker), export, args)
    air = VmAir(VmInputs(vm, st))
    verdict = verify_air(air, prove(air, main))
    assert verdict.valid and verdict.security_bits >= 100, verdict.reason


BINOPS = ["add", "sub", "mul", "and", "or", "xor", "shl", "shr_u", "shr_s", "eq", "ne", "lt_s",
          "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
EDGES = [0, 1, 2, 31, 32, 33, -1, -2, 0x7FFFFFFF, -0x80000000, 255, 256, 65535, 65536]
i32s = st.one_of(st.sampled_from(EDGES), st.integers(-2 ** 31, 2 ** 31 - 1))


def i32_expression(draw, binops: list[str], unops: list[str], values, depth: int = 4) -> str:
    """A random expression tree of ``unops`` and ``binops`` over constants drawn from
    ``values`` and the two parameters; divisors are forced odd (and non-negative for div_s),
    so it never traps."""
    def expr(depth):
        kind = draw(st.integers(0, 3 if depth else 1))
        if kind == 0:
            return f"(i32.const {draw(values)})"
        if kind == 1:
            return f"(local.get {draw(st.integers(0, 1))})"
        if kind == 2:
            return f"(i32.{draw(st.sampled_from(unops))} {expr(depth - 1)})"
        op = draw(st.sampled_from(binops))
        lhs, rhs = expr(depth - 1), expr(depth - 1)
        if op in ("div_u", "div_s", "rem_u", "rem_s"):
            rhs = f"(i32.or {rhs} (i32.const 1))"
            if op == "div_s":
                rhs = f"(i32.and {rhs} (i32.const 0x7FFFFFFF))"
        return f"(i32.{op} {lhs} {rhs})"
    return expr(depth)


@st.composite
def straight_line(draw):
    """An expression of the i32 core's ops, maybe selected and stored through memory."""
    body = i32_expression(draw, BINOPS, ["eqz"], i32s)
    if draw(st.booleans()):
        body = f"(select {body} (local.get 1) (local.get 0))"
    if draw(st.booleans()):
        body = (f"(i32.store8 (i32.const 17) {body}) (i32.add (i32.load8_s (i32.const 17)) "
                f"(i32.load16_u (i32.const 18)))")
    return body, [draw(i32s), draw(i32s)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(straight_line())
def test_generated_programs_satisfy_the_air(program):
    body, args = program
    constraints_hold(*honest(wat(body), "f", args))


@pytest.mark.parametrize("source", [
    pytest.param('(func $f (local i32) (local.set 0 (i32.const 7)) (i32.store (i32.const 0) '
                 '(local.get 0))) (func (export "f") (result i32) (call $f) '
                 '(i32.load (i32.const 0)))', id="return-dropping-a-local"),
    pytest.param('(func $f (i32.store (i32.const 0) (i32.const 7))) '
                 '(func (export "f") (result i32) (call $f) (i32.load (i32.const 0)))',
                 id="return-of-an-empty-frame"),
    pytest.param('(func (export "f") (result i32) (block (br_if 0 (i32.const 0))) (i32.const 1))',
                 id="br_if-on-an-empty-frame"),
])
def test_inactive_slot_keys_below_zero_satisfy_the_air(source):
    # a slot the row leaves inactive still has its key pinned (sp - 1, sp - 2, sp - 1 - drop);
    # at fp 0 with nothing below, that key is -1: p - 1 in the field, not 2^64 - 1 mod p
    # (issue 19: the smallest cases, which failed constraints 88, 72 and 76 of the v2 AIR)
    vm, st, main = honest(wasmtime.wat2wasm(f"(module (memory 1) {source})"), "f", [])
    constraints_hold(vm, st, main)
    assert fast_verdict(vm, st, main).valid


def test_generated_program_proves():
    body = "(i32.shr_s (i32.mul (local.get 0) (i32.const -7)) (i32.xor (local.get 1) (i32.const 35)))"
    verdict = fast_verdict(*honest(wat(body), "f", [123456, -3]))
    assert verdict.valid, verdict.reason


# --- malicious provers --------------------------------------------------------------------------

def lie_by_substitution(module: bytes, args: list[int], at_op: str, run_as: str,
                        flip_back: bool = True):
    """Trace a program whose ``at_op`` rows execute ``run_as`` instead, build that witness, and
    (flip_back) relabel those rows with ``at_op``'s selector: a trace of the honest ROM in which
    only ``at_op``'s own constraint is broken. Returns the honest program, statement, trace."""
    prog = load(module)
    vm = vm_program(prog)
    rows = prog.op == OP[at_op]
    assert rows.any()
    lying = dataclasses.replace(prog, op=np.where(rows, OP[run_as], prog.op).astype(prog.op.dtype))
    main, st = witness(trace(lying, "f", args), vm_program(lying))
    if flip_back:
        hit = np.isin(main[COL["pc"]], np.flatnonzero(rows)) & (main[COL["s_pad"]] == 0)
        main[COL["s_" + run_as], hit] = 0
        main[COL["s_" + at_op], hit] = 1
    return vm, dataclasses.replace(st, vk=vm.digest()), main


def assert_rejected(vm, st, main) -> None:
    with pytest.raises(ConstraintViolation):
        constraints_hold(vm, st, main)
    verdict = fast_verdict(vm, st, main)
    assert not verdict.valid


def test_honest_fast_proof_accepted():
    # the control for every test below: same path, no lie
    verdict = fast_verdict(*honest(wat("(i32.add (local.get 0) (local.get 1))"), "f", [5, 9]))
    assert verdict.valid, verdict.reason


@pytest.mark.parametrize("at_op, run_as, args", [
    ("i32.add", "i32.sub", [5, 9]),
    ("i32.mul", "i32.add", [300, 70000]),
    ("i32.and", "i32.or", [0x5A, 0x0F]),
    ("i32.xor", "i32.and", [0x5A, 0x0F]),
    ("i32.shr_s", "i32.shr_u", [-64, 3]),
    ("i32.lt_s", "i32.lt_u", [-1, 1]),
])
def test_wrong_arithmetic_result_rejected(at_op, run_as, args):
    name = at_op.split(".")[1]
    module = wat(f"(i32.{name} (local.get 0) (local.get 1))")
    assert_rejected(*lie_by_substitution(module, args, at_op, run_as))


def test_wrong_sign_extension_rejected():
    module = wat("(i32.load8_s (i32.add (local.get 0) (local.get 1)))")
    assert_rejected(*lie_by_substitution(module, [16, 0], "i32.load8_s", "i32.load8_u"))


def test_wrong_branch_target_rejected():
    module = wat("(block (br_if 0 (local.get 0)) (local.set 1 (i32.const 7))) (local.get 1)")
    assert_rejected(*lie_by_substitution(module, [1, 2], "br_if", "br_eqz"))


def test_instruction_not_in_rom_rejected():
    # the trace executes `i32.const 6` where the program has `i32.const 5`
    module = wat("(i32.add (local.get 0) (i32.const 5))")
    prog = load(module)
    vm = vm_program(prog)
    row = np.flatnonzero((prog.op == OP["i32.const"]) & (prog.imm == 5))
    lying = dataclasses.replace(prog, imm=np.where(np.arange(len(prog)) == row[0], 6, prog.imm))
    main, st = witness(trace(lying, "f", [1, 2]), vm_program(lying))
    assert_rejected(vm, dataclasses.replace(st, vk=vm.digest()), main)


def test_skipped_instruction_rejected():
    vm, st, main = honest(wat("(i32.sub (i32.add (local.get 0) (i32.const 3)) (local.get 1))"),
                          "f", [10, 4])
    cpu = [i for i in range(COL["mkey"]) if i != COL["clk"]]
    r = 3
    main[cpu, r:st.steps - 1] = main[cpu, r + 1:st.steps]  # drop row r, pad the end
    main[cpu, st.steps - 1] = main[cpu, st.steps]
    assert_rejected(vm, dataclasses.replace(st, steps=st.steps - 1), main)


def test_reordered_instructions_rejected():
    vm, st, main = honest(wat("(i32.sub (local.get 0) (local.get 1))"), "f", [10, 4])
    cpu = [i for i in range(COL["mkey"]) if i != COL["clk"]]
    main[cpu, 0], main[cpu, 1] = main[cpu, 1].copy(), main[cpu, 0].copy()
    assert_rejected(vm, st, main)


def test_stale_memory_read_rejected():
    # local.set 0 := 7, then local.get 0 claims the argument's old value 3
    module = wat("(local.set 0 (i32.const 7)) (local.get 0)")
    prog = load(module)
    vm = vm_program(prog)
    tr = trace(prog, "f", [3, 0])
    cols = {k: v.copy() for k, v in tr.columns.items()}
    for t in np.flatnonzero(tr.op >= 0):
        if tr.op[t] in (OP["local.get"], OP["return"]):
            cols["res"][t] = 3
            slots = (cols["mem_value"][t] == 7)
            cols["mem_value"][t][slots] = 3
            cols["mem_prev"][t][slots & (cols["mem_write"][t] == 0)] = 3
    lying = dataclasses.replace(tr, columns=cols, results=(3,))
    main, st = witness(lying, vm)
    assert st.result == 3
    assert_rejected(vm, st, main)


def test_wrong_result_in_statement_rejected():
    vm, st, main = honest(wat("(i32.add (local.get 0) (local.get 1))"), "f", [5, 9])
    assert_rejected(vm, dataclasses.replace(st, result=15), main)
    # also lying consistently in the memory table's final value of slot 0
    main[reg("mfin")[0], 0] = 15 % 16
    main[reg("mfin")[1], 0] = 0
    assert_rejected(vm, dataclasses.replace(st, result=15), main)


def test_wrong_arguments_or_steps_in_statement_rejected():
    vm, st, main = honest(wat("(i32.add (local.get 0) (local.get 1))"), "f", [5, 9])
    assert_rejected(vm, dataclasses.replace(st, args=(6, 9)), main)
    assert_rejected(vm, dataclasses.replace(st, steps=st.steps + 1), main)


def test_proof_under_another_program_rejected():
    vm, st, main = honest(wat("(i32.add (local.get 0) (local.get 1))"), "f", [5, 9])
    other = vm_program(load(wat("(i32.sub (local.get 0) (local.get 1))")))
    air = VmAir(VmInputs(vm, st))
    proof = prove(air, main, FAST)
    assert verify_air(air, proof, min_security_bits=0).valid
    forged = dataclasses.replace(st, vk=other.digest())
    assert not verify_air(VmAir(VmInputs(other, forged)), proof, min_security_bits=0).valid


def test_default_parameters_give_the_vm_100_bits_up_to_2_24_rows():
    # The VM AIR's own shape (degree, segments, LogUp terms a row and their width), scaled up.
    vm, st, _ = honest(wat("(i32.add (local.get 0) (local.get 1))"), "f", [5, 9])
    air = VmAir(VmInputs(vm, st))
    assert (air.terms_per_row, air.lookup_width, air.max_degree()) == (42, 11, 3)
    public = air.lookup_denominators() - air.terms_per_row * air.trace_length
    for log_n in range(1, 25):
        shape = AirShape(log_n, air.max_degree(), air.num_segments(),
                         (air.terms_per_row << log_n) + public + (1 << 20), air.lookup_width)
        assert DEFAULT_PARAMS.security(shape).bits >= 100, log_n


class DroppingAir(VmAir):
    """A prover's AIR that sums the public LogUp side without the terms whose denominator is
    zero, as a batch inversion that maps 0 to 0 silently would."""

    def public_sum(self, alpha, beta):
        tuples, mult = self.public_lookups
        keep = sub(alpha[None], T.fingerprints(tuples, beta)).any(axis=1)
        return T.logup_sum(tuples[keep], mult[keep], alpha, beta)


def test_zero_public_logup_denominator_rejected(monkeypatch):
    # alpha forced onto the fingerprint of a public tuple (a ROM entry): the verifier's own
    # public sum would divide by zero, and must say so instead of summing the rest.
    vm, st, main = honest(wat("(i32.add (local.get 0) (local.get 1))"), "f", [5, 9])
    beta = np.array([5, 9, 2, 6], np.uint64)
    alpha = T.fingerprints(VmAir(VmInputs(vm, st)).public_lookups[0][:1], beta)[0]
    real = Transcript.draw_exts
    monkeypatch.setattr(Transcript, "draw_exts", lambda self, label, count: np.stack([alpha, beta])
                        if label == b"challenges" else real(self, label, count))
    proof = prove(DroppingAir(VmInputs(vm, st)), main, FAST, check=False)
    verdict = verify_air(VmAir(VmInputs(vm, st)), proof, min_security_bits=0)
    assert not verdict.valid
    assert verdict.reason.startswith("a public LogUp denominator is zero"), verdict.reason


def test_op_ids_match_the_front_end():
    for name, oid in OP_IDS.items():
        assert OP[name] == oid
