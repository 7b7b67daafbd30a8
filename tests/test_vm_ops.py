"""The VM AIR beyond the i32 core: division and remainder (with their traps), rotations, bit
counts, sign extension, br_table, call_indirect (with its traps) and memory.size.

Completeness on C workers and generated programs; one malicious prover per constraint family
(each lies in one way, skips its own checks, and is rejected)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings, strategies as st

import memjit.runtime.witness as W
from circuits.wasm_vm.columns import COL
from memjit.runtime.claims import prove_claim, vk_of, vm_program, witness
from memjit.errors import UnsupportedModule
from memjit.runtime.tracer import trace
from memjit.runtime.wasm import load
from memjit.runtime.wasm.opcodes import OP
from memjit.workers import load as load_worker
from test_vm_air import assert_rejected, constraints_hold, fast_verdict, honest, \
    i32_expression, lie_by_substitution, wat
from verifier.claims import Claim, verify_claim

INT_MIN = -2 ** 31
EDGES = [0, 1, 2, 3, 7, 31, 32, 33, 255, 0xFFFF, 0x10000, 0x12345678, 0x7FFFFFFF, INT_MIN,
         -1, -2, -7, -0x12345678]
DIVIDE = ["div_u", "div_s", "rem_u", "rem_s"]
UNARY = ["clz", "ctz", "popcnt", "extend8_s", "extend16_s", "eqz"]


def binop(op: str) -> bytes:
    return wat(f"(i32.{op} (local.get 0) (local.get 1))")


def unop(op: str) -> bytes:
    return wat(f"(i32.{op} (local.get 0))")


def traps(op: str, a: int, b: int) -> bool:
    return op in DIVIDE and (b == 0 or (op == "div_s" and a == INT_MIN and b == -1))


# --- completeness -------------------------------------------------------------------------------

@pytest.mark.parametrize("op", DIVIDE + ["rotl", "rotr"])
def test_binary_edge_values_satisfy_the_air(op):
    module = binop(op)
    for a, b in itertools.product(EDGES, EDGES):
        if not traps(op, a, b):
            constraints_hold(*honest(module, "f", [a, b]))


@pytest.mark.parametrize("op", UNARY)
def test_unary_edge_values_satisfy_the_air(op):
    module = unop(op)
    for a in EDGES + [0x80, 0x7F, 0x8000, 0x7FFF, 0xFF80, 0x80000000 >> 7]:
        constraints_hold(*honest(module, "f", [a, 0]))


@pytest.mark.parametrize("worker, export, args", [
    ("divmix", "mix", [60, 12345]), ("divmix", "mix", [40, -7]), ("switch", "interp", [80, 777]),
    ("fnptr", "apply", [80, 99]),
])
def test_workers_satisfy_the_air(worker, export, args):
    constraints_hold(*honest(load_worker(worker), export, args))


@pytest.mark.parametrize("worker, export, args", [
    ("divmix", "mix", [30, 5]), ("switch", "interp", [30, 3]), ("fnptr", "apply", [30, 11]),
])
def test_workers_prove_unmodified(worker, export, args):
    module = load_worker(worker)
    claim = prove_claim(module, export, args)  # traced against wasmtime, full security
    verdict = verify_claim(claim.encode(), vk_of(module))
    assert verdict.valid and verdict.security_bits >= 100, verdict.reason


BINOPS = ["add", "sub", "mul", "and", "xor", "shl", "shr_u", "shr_s", "rotl", "rotr", "lt_s",
          "ge_u", *DIVIDE]
i32s = st.one_of(st.sampled_from(EDGES), st.integers(-2 ** 31, 2 ** 31 - 1))


@st.composite
def straight_line(draw):
    """An expression over the ops beyond the i32 core (never trapping)."""
    return i32_expression(draw, BINOPS, UNARY, i32s), [draw(i32s), draw(i32s)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(straight_line())
def test_generated_programs_satisfy_the_air(program):
    body, args = program
    constraints_hold(*honest(wat(body), "f", args))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DIVIDE), st.sampled_from(EDGES + [0]), st.sampled_from(EDGES + [0]),
       st.sampled_from(DIVIDE))
def test_generated_divisions_satisfy_the_air_or_prove_their_trap(op, a, b, op2):
    """Two chained divisions by unconstrained divisors: a result, or a provable trap."""
    module = wat(f"(i32.{op2} (i32.{op} (local.get 0) (local.get 1)) (local.get 1))")
    vm, st_, main = honest(module, "f", [a, b])
    assert (st_.trap == "integer_divide_by_zero") == (b == 0)
    assert st_.trap in (None, "integer_divide_by_zero", "integer_overflow")
    constraints_hold(vm, st_, main)


BR_TABLE = wasmtime.wat2wasm('''(module (func (export "f") (param i32 i32) (result i32)
  (block $d (result i32) (block $c (result i32) (block $b (result i32) (block $a (result i32)
    (drop (i32.const 55))
    (br_table $a $b $c $d (local.get 1) (local.get 0)))
    (return (i32.add (i32.const 10)))) (return (i32.add (i32.const 20))))
    (return (i32.add (i32.const 30))))
  (i32.add (i32.const 100))))''')
CALL_INDIRECT = wasmtime.wat2wasm('''(module
  (type $t1 (func (param i32) (result i32)))
  (type $t2 (func (param i32 i32) (result i32)))
  (table 6 funcref)
  (elem (i32.const 0) $inc $dbl $add $inc)
  (func $inc (type $t1) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (type $t1) (i32.mul (local.get 0) (i32.const 2)))
  (func $add (type $t2) (i32.add (local.get 0) (local.get 1)))
  (func (export "f") (param i32 i32) (result i32)
    (call_indirect (type $t1) (local.get 1) (local.get 0))))''')


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 100, -1, 65536])
def test_br_table_satisfies_the_air(index):
    vm, st_, main = honest(BR_TABLE, "f", [index, 7])
    assert st_.result == 7 + (10, 20, 30, 100)[min(index & 0xFFFFFFFF, 3)]
    constraints_hold(vm, st_, main)


@pytest.mark.parametrize("index, trap", [
    (0, None), (1, None), (3, None), (2, "indirect_call_type_mismatch"),
    (4, "indirect_call_to_null"), (6, "table_out_of_bounds"), (-1, "table_out_of_bounds")])
def test_call_indirect_satisfies_the_air(index, trap):
    vm, st_, main = honest(CALL_INDIRECT, "f", [index, 9])
    assert st_.trap == trap
    constraints_hold(vm, st_, main)


GROW = wasmtime.wat2wasm('''(module (memory 2 5)
  (func (export "f") (param i32 i32) (result i32) (local i32)
    (i32.store (i32.const 100) (i32.const 7))
    (local.set 2 (memory.grow (local.get 0)))
    (if (i32.ne (local.get 2) (i32.const -1)) (then
      (i32.store (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)) (local.get 1))
      (local.set 2 (i32.add (local.get 2)
        (i32.load (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))))))
    (i32.add (i32.mul (local.get 2) (i32.const 1000))
             (i32.add (memory.size) (i32.load (i32.const 100))))))''')
"""f(delta, v): grow by delta pages (limit 5), store v in the new last word and read it back;
returns 1000 * (old pages + v, or -1) + pages + 7."""


@pytest.mark.parametrize("delta, result", [(0, 11009), (1, 11010), (3, 11012), (4, -991),
                                           (-1, -991)])
def test_memory_grow_satisfies_the_air(delta, result):
    vm, st_, main = honest(GROW, "f", [delta, 9])
    assert st_.result == result & 0xFFFFFFFF
    constraints_hold(vm, st_, main)


def test_memory_grow_proves():
    for delta in (3, 4):  # the last page the limit allows; one past it returns -1
        claim = prove_claim(GROW, "f", [delta, 9])
        assert verify_claim(claim.encode(), vk_of(GROW)).valid


# --- trap statements ----------------------------------------------------------------------------

@pytest.mark.parametrize("op, args, trap", [
    *[(op, [5, 0], "integer_divide_by_zero") for op in DIVIDE],
    ("div_s", [INT_MIN, -1], "integer_overflow"),
])
def test_division_traps_prove_as_traps(op, args, trap):
    vm, st_, main = honest(binop(op), "f", args)
    assert st_.trap == trap and st_.result is None
    constraints_hold(vm, st_, main)


def test_divide_by_zero_verifies_as_a_trap_and_never_as_a_result():
    module = wasmtime.wat2wasm('(module (func (export "f") (param i32) (result i32) '
                               '(i32.add (call 1 (local.get 0)) (i32.const 1))) '
                               '(func (param i32) (result i32) '
                               '(i32.div_u (i32.const 7) (local.get 0))))')
    vk = vk_of(module)
    claim = prove_claim(module, "f", [0])  # traps inside a call (depth 1)
    assert claim.statement.trap == "integer_divide_by_zero" and claim.statement.result is None
    assert verify_claim(claim.encode(), vk).valid
    for lie in (dataclasses.replace(claim.statement, trap=None, result=1),
                dataclasses.replace(claim.statement, trap="integer_overflow"),
                dataclasses.replace(claim.statement, trap="unreachable")):
        assert not verify_claim(Claim(lie, claim.proof).encode(), vk).valid
    returned = prove_claim(module, "f", [7])
    assert returned.statement.result == 2 and verify_claim(returned.encode(), vk).valid
    as_trap = dataclasses.replace(returned.statement, trap="integer_divide_by_zero", result=None)
    assert not verify_claim(Claim(as_trap, returned.proof).encode(), vk).valid


def cut_as_trap(module: bytes, args: list[int], op: str, trap: str):
    """The honest trace of a returning call, cut after its first ``op`` row and relabelled
    as trapping there with ``trap``: a trap row whose trap condition is false."""
    prog = load(module)
    vm = vm_program(prog)
    tr = trace(prog, "f", args)
    k = int(np.flatnonzero(tr.op == OP[op])[0]) + 1
    cols = {name: col[:k] for name, col in tr.columns.items()}
    lying = dataclasses.replace(tr, columns=cols, steps=k, trap=trap, results=())
    main, st_ = witness(lying, vm)
    return vm, st_, main


@pytest.mark.parametrize("module, args, op, trap", [
    (binop("div_u"), [5, 3], "i32.div_u", "integer_divide_by_zero"),
    (binop("rem_s"), [5, -1], "i32.rem_s", "integer_divide_by_zero"),
    (binop("div_s"), [INT_MIN, 1], "i32.div_s", "integer_overflow"),
    (CALL_INDIRECT, [1, 9], "call_indirect", "indirect_call_type_mismatch"),
    (CALL_INDIRECT, [1, 9], "call_indirect", "indirect_call_to_null"),
    (CALL_INDIRECT, [3, 9], "call_indirect", "table_out_of_bounds"),
])
def test_false_trap_rejected(module, args, op, trap):
    assert_rejected(*cut_as_trap(module, args, op, trap))


# --- malicious provers --------------------------------------------------------------------------

@pytest.mark.parametrize("at_op, run_as, args", [
    ("i32.div_s", "i32.div_u", [-100, 7]),  # quotient of the unsigned patterns
    ("i32.div_u", "i32.rem_u", [100, 7]),  # the remainder as the quotient
    ("i32.rem_s", "i32.rem_u", [-100, 7]),
    ("i32.rotl", "i32.rotr", [0x12345678, 8]),
    ("i32.clz", "i32.ctz", [0x00F0, 0]),
    ("i32.ctz", "i32.clz", [0x00F0, 0]),
    ("i32.popcnt", "i32.clz", [0x00F0, 0]),
    ("i32.extend8_s", "i32.extend16_s", [0x0080, 0]),
])
def test_wrong_result_rejected(at_op, run_as, args):
    name = at_op.split(".")[1]
    module = wat(f"(i32.{name} (local.get 0) (local.get 1))" if at_op not in (
        "i32.clz", "i32.ctz", "i32.popcnt", "i32.extend8_s") else f"(i32.{name} (local.get 0))")
    assert_rejected(*lie_by_substitution(module, args, at_op, run_as))


def lie_in_division(monkeypatch, module: bytes, args: list[int], edit) -> tuple:
    """Witness of a division whose magnitudes ``edit`` changes (quotient, remainder, slack), the
    trace's result and returned value changed to match: only the division's checks can fail."""
    honest_division = W._division

    def lying(rows, a, b):
        d = honest_division(rows, a, b)
        d.update(edit(d))
        return d

    prog = load(module)
    vm = vm_program(prog)
    tr = trace(prog, "f", args)
    div = tr.op == OP["i32.div_u"]
    d = W._division(W._Rows(tr, vm.max_pages), *(np.where(div, x & 0xFFFFFFFF, 0)
                                                  for x in (tr.a, tr.b)))
    old, new = int(tr.res[div][0]), int(edit(d)["qm"][div][0])
    cols = {k: v.copy() for k, v in tr.columns.items()}
    later = np.arange(tr.steps) >= np.flatnonzero(div)[0]
    for name in ("res", "mem_value"):
        col = cols[name]
        hit = (col == old) & (later[:, None] if col.ndim == 2 else later)
        col[hit] = new
    cols["mem_prev"][(cols["mem_prev"] == old) & later[:, None] & (cols["mem_write"] == 0)] = new
    monkeypatch.setattr(W, "_division", lying)
    main, st_ = witness(dataclasses.replace(tr, columns=cols, results=(new,)), vm)
    return vm, st_, main


def test_remainder_not_below_divisor_rejected(monkeypatch):
    # 100 / 7: claim q = 13, r = 9 (100 = 13 * 7 + 9 holds, but 9 >= 7)
    def edit(d):
        return {"qm": d["qm"] - 1, "rm": d["rm"] + 7,
                "slack": (d["slack"] - 7) & np.uint64(0xFFFFFFFF)}
    vm, st_, main = lie_in_division(monkeypatch, binop("div_u"), [100, 7], edit)
    assert st_.result == 13
    assert_rejected(vm, st_, main)


def test_wrong_quotient_and_remainder_rejected(monkeypatch):
    # 100 / 7: claim q = 15, r = 0 with the slack that r + slack + 1 = 7 needs
    def edit(d):
        return {"qm": d["qm"] + 1, "rm": d["rm"] * 0, "slack": d["slack"] + d["rm"]}
    vm, st_, main = lie_in_division(monkeypatch, binop("div_u"), [100, 7], edit)
    assert st_.result == 15
    assert_rejected(vm, st_, main)


def test_overflowing_division_as_a_result_rejected():
    # INT_MIN / -1 claimed to return INT_MIN: run INT_MIN / 1, then relabel the divisor as -1
    module = binop("div_s")
    prog = load(module)
    vm = vm_program(prog)
    tr = trace(prog, "f", [INT_MIN, 1])
    cols = {k: v.copy() for k, v in tr.columns.items()}
    get1 = np.flatnonzero((tr.op == OP["local.get"]) & (prog.imm[tr.pc] == 1))
    div = np.flatnonzero(tr.op == OP["i32.div_s"])
    for rows in (get1, div):
        for name in ("mem_value", "mem_prev"):
            cols[name][rows] = np.where(cols[name][rows] == 1, 0xFFFFFFFF, cols[name][rows])
    cols["res"][get1] = 0xFFFFFFFF
    cols["b"][div] = 0xFFFFFFFF
    lying = dataclasses.replace(tr, columns=cols, args=(INT_MIN, -1))
    main, st_ = witness(lying, vm)
    assert st_.result == 0x80000000 and st_.args == (0x80000000, 0xFFFFFFFF)
    assert_rejected(vm, st_, main)


def lie_in_rom(module: bytes, args: list[int], row: int, field: str, value: int):
    """Trace a program whose ROM row ``row`` has ``field`` set to ``value`` and prove it under
    the honest program's key (the trace is consistent; only the ROM lookups can fail)."""
    prog = load(module)
    vm = vm_program(prog)
    col = getattr(prog, field).copy()
    col[row] = value
    lying = dataclasses.replace(prog, **{field: col})
    main, st_ = witness(trace(lying, "f", args), vm_program(lying))
    return vm, dataclasses.replace(st_, vk=vm.digest()), main


def test_br_table_to_a_wrong_target_rejected():
    # the trace follows a table whose entry 1 jumps where entry 0 does
    entries = np.flatnonzero(load(BR_TABLE).op == OP["br_entry"])
    target = int(load(BR_TABLE).arg1[entries[0]])
    vm, st_, main = lie_in_rom(BR_TABLE, [1, 7], entries[1], "arg1", target)
    assert st_.result == 17
    assert_rejected(vm, st_, main)


def test_call_indirect_to_a_function_of_the_wrong_type_rejected():
    # the trace calls table entry 2 ($add, two parameters) as if it had type $t1
    prog = load(CALL_INDIRECT)
    entries = np.flatnonzero(prog.op == OP["table_entry"])
    vm, st_, main = lie_in_rom(CALL_INDIRECT, [2, 9], entries[2], "arg3",
                               int(prog.arg3[entries[0]]))
    assert st_.trap is None  # the lying table lets the call go through
    assert_rejected(vm, st_, main)


def test_br_table_default_for_an_in_range_index_rejected():
    # index 1 claimed to be >= n (3): the default entry, Z = 1 - 3 wraps
    vm, st_, main = honest(BR_TABLE, "f", [1, 7])
    row = int(np.flatnonzero(main[COL["s_br_table"]])[0])
    main[COL["c1"], row] = 1
    main[COL["u0"], row] = 3
    main[COL["w"], row] += 2
    assert_rejected(vm, st_, main)


@pytest.mark.parametrize("limit, delta", [(6, 4), (4, 3)])
def test_memory_grow_returning_a_wrong_size_rejected(limit, delta):
    # the trace grows as if the limit were ``limit`` (5): a success that must fail, or a -1
    # where the grow fits; and the pages that follow are the lying ones
    prog = load(GROW)
    vm = vm_program(prog)
    main, st_ = witness(trace(dataclasses.replace(prog, mem_max=limit), "f", [delta, 9]), vm)
    assert st_.result != trace(prog, "f", [delta, 9]).results[0] & 0xFFFFFFFF
    assert_rejected(vm, st_, main)


def test_memory_access_beyond_the_pages_rejected():
    # the trace accesses page 2 before growing: claimed in bounds by a trace that started with
    # 3 pages, proven under the 2-page program
    prog = load(GROW)
    vm = vm_program(prog)
    lying = dataclasses.replace(prog, mem_min=3)
    module_trace = trace(lying, "f", [0, 9])
    main, st_ = witness(module_trace, vm)
    assert_rejected(vm, st_, main)


def test_wrong_memory_size_rejected():
    module = wasmtime.wat2wasm('(module (memory 3) (func (export "f") (param i32) (result i32) '
                               '(i32.add (memory.size) (local.get 0))))')
    prog = load(module)
    vm = vm_program(prog)
    lying = dataclasses.replace(prog, mem_min=4)
    main, st_ = witness(trace(lying, "f", [4]), vm)
    assert st_.result == 8
    assert_rejected(vm, st_, main)


def test_honest_control_fast_proof_accepted():
    verdict = fast_verdict(*honest(binop("div_s"), "f", [-100, 7]))
    assert verdict.valid, verdict.reason
