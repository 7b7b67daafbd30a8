"""The columns that keep the VM AIR at degree 3: flags and products that would otherwise
multiply into degree-4 constraints are committed (xz, dz, sg, the multiplicand bytes v0..v3,
w on memory.grow rows, d1 on byte-access and type-trap rows). Each is pinned by its defining
constraint: a prover that sets one wrongly on one row is rejected, and the prover's own check
names that row."""

from __future__ import annotations

import numpy as np
import pytest

from circuits.field import P, inv
from circuits.wasm_vm import VmAir, VmInputs
from circuits.wasm_vm.columns import COL
from prover import prove
from prover.composition import ConstraintViolation
from test_vm_air import FAST, constraints_hold, fast_verdict, honest, wat
from test_vm_ops import CALL_INDIRECT, GROW, binop


def tamper(vm, st, main, op: str, column: str, value) -> None:
    """Set ``column`` on the first ``op`` row to ``value(old)`` and expect rejection there."""
    row = int(np.flatnonzero((main[COL["s_" + op]] == 1))[0])
    old = int(main[COL[column], row])
    new = value(old) % P
    assert new != old
    main[COL[column], row] = new
    with pytest.raises(ConstraintViolation, match=f"at row {row}$"):
        constraints_hold(vm, st, main)
    assert not fast_verdict(vm, st, main).valid


def test_the_vm_air_has_degree_three():
    vm, st, _ = honest(binop("add"), "f", [1, 2])
    air = VmAir(VmInputs(vm, st))
    assert max(d for _, d in air.constraint_degrees()) == 3
    assert air.num_segments() == 2
    assert air.aux_width == -(-42 // 2)  # 42 lookup terms, two per auxiliary column


@pytest.mark.parametrize("module, args, op, column, value", [
    (wat("(select (local.get 0) (local.get 1) (local.get 1))"), [4, 5], "select", "xz",
     lambda v: 1 - v),  # X = 5: "X is zero" claimed
    (wat("(select (local.get 0) (local.get 1) (local.get 1))"), [4, 0], "select", "xz",
     lambda v: 1 - v),  # X = 0: "X is not zero" claimed
    (wat("(block (br_if 0 (local.get 0))) (local.get 1)"), [0, 3], "br_if", "xz",
     lambda v: 1 - v),
    (binop("add"), [1, 2], "i32.add", "dz", lambda v: 1 - v),  # depth 0 called non-zero
    (binop("lt_s"), [-1, 1], "i32.lt_s", "sg", lambda v: 1 - v),  # signs differ
    (binop("ge_s"), [5, 1], "i32.ge_s", "sg", lambda v: 1 - v),  # signs agree
    (binop("div_s"), [-100, 7], "i32.div_s", "sg", lambda v: 1 - v),  # quotient sign
    (binop("mul"), [300, 70000], "i32.mul", "v0", lambda v: v + 1),
    (binop("shr_s"), [-64, 3], "i32.shr_s", "v2", lambda v: 255 - v),  # not complemented
    (binop("rem_s"), [100, -7], "i32.rem_s", "v3", lambda v: 255 - v),
    (GROW, [3, 9], "memory.grow", "w", lambda v: v + 1),  # grows one page more
    (GROW, [4, 9], "memory.grow", "w", lambda v: 1),  # a failed grow that still grows
    (wat("(i32.load8_u (i32.add (local.get 0) (local.get 1)))"), [16, 3], "i32.load8_u", "d1",
     lambda v: 1 - v),  # byte 3 selected as another
    (wat("(i32.store8 (local.get 0) (local.get 1)) (i32.load (i32.const 16))"), [17, 9],
     "i32.store8", "d1", lambda v: 1 - v),
])
def test_wrong_flag_rejected(module, args, op, column, value):
    tamper(*honest(module, "f", args), op, column, value)


def test_type_mismatch_product_pinned():
    # a type-trap row whose d1 is some other non-zero value, d0 its inverse: only the
    # definition d1 = (type - expected)(type + 1) is broken
    vm, st, main = honest(CALL_INDIRECT, "f", [2, 9])
    assert st.trap == "indirect_call_type_mismatch"
    row = int(np.flatnonzero(main[COL["s_call_indirect/type"]] == 1)[0])
    d1 = (int(main[COL["d1"], row]) + 5) % P
    main[COL["d1"], row] = d1
    main[COL["d0"], row] = inv(np.array([d1], np.uint64))[0]
    with pytest.raises(ConstraintViolation, match=f"at row {row}$"):
        constraints_hold(vm, st, main)
    assert not fast_verdict(vm, st, main).valid


def test_the_provers_own_check_finds_a_bad_witness():
    # degree 3 leaves no slack on the 2n coset: the prover checks itself at the OOD point
    vm, st, main = honest(binop("lt_s"), "f", [-1, 1])
    row = int(np.flatnonzero(main[COL["s_i32.lt_s"]] == 1)[0])
    main[COL["sg"], row] = 0
    with pytest.raises(ConstraintViolation, match=f"at row {row}$"):
        prove(VmAir(VmInputs(vm, st)), main, FAST)
