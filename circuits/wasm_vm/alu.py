"""Value constraints: moves, constants, add/sub, comparisons, eqz, select, call records, and
the product engine (mul, shl, shr_u, shr_s). Bitwise ops are pure lookups (see logup)."""

from __future__ import annotations

from circuits.air import ConstraintBuilder
from circuits.wasm_vm.columns import COL, NIBBLES
from circuits.wasm_vm.isa import COMPARE, MOVES
from circuits.wasm_vm.memory import linear_memory_constraints
from circuits.wasm_vm.view import View


def value_constraints(b: ConstraintBuilder, c: View) -> None:
    """The written value R of every instruction from its operands."""
    X, Y, Q, R, Z = (c.r(n) for n in ("X", "Y", "Q", "R", "Z"))
    _, xz = c.is_zero("X")
    zs, zz = c.is_zero("Z")
    b.every_row(zs * zz)
    for v in (c.c0, c.c1, c.sx, c.sy):
        b.every_row(v * (v - 1))
    cmp = c.s(*COMPARE)
    moves = c.s(*MOVES, "br", "return")
    for i in range(NIBBLES):
        b.every_row(moves * (R[i] - X[i]))
        b.every_row(c.s("br_if", "br_eqz") * (R[i] - Y[i]))
        b.every_row((1 - cmp - c.s("i32.shr_u", "i32.shr_s")) * (Z[i] - R[i]))
        b.every_row(c.s("select") * (R[i] - Q[i] - xz * (Y[i] - Q[i])))
        if i:
            b.every_row((cmp + c.s("i32.eqz")) * R[i])
    lo, hi = (lambda v: c.half(v, False)), (lambda v: c.half(v, True))
    b.every_row(c.s("i32.const") * (lo("R") - c.imm_lo))
    b.every_row(c.s("i32.const") * (hi("R") - c.imm_hi))
    # a + b = r (add), x + r = y (sub), x + z = y (comparisons: z = y - x, c1 = borrow)
    for sel, (u, v, w) in ((c.s("i32.add"), "YXR"), (c.s("i32.sub"), "RXY"), (cmp, "ZXY")):
        b.every_row(sel * (lo(u) + lo(v) - lo(w) - 65536 * c.c0))
        b.every_row(sel * (hi(u) + hi(v) + c.c0 - hi(w) - 65536 * c.c1))
    ltu = c.c1
    lts = ltu + (c.sx + c.sy - 2 * c.sx * c.sy) * (c.sy - ltu)
    results = {"i32.eq": zz, "i32.ne": 1 - zz, "i32.lt_u": ltu, "i32.lt_s": lts,
               "i32.gt_u": 1 - ltu - zz, "i32.gt_s": 1 - lts - zz, "i32.le_u": ltu + zz,
               "i32.le_s": lts + zz, "i32.ge_u": 1 - ltu, "i32.ge_s": 1 - lts, "i32.eqz": xz}
    for name, value in results.items():
        b.every_row(c.s(name) * (R[0] - value))
    product_constraints(b, c, X, Y)
    linear_memory_constraints(b, c, X, Y, Q, R)
    b.every_row(c.s("call") * (R[0] - c.pc - 1))
    b.every_row(c.s("call") * (R[1] - c.fp))


def product_constraints(b: ConstraintBuilder, c: View, X: list, Y: list) -> None:
    """mul, shl, shr_u, shr_s as Y' * U in byte limbs with 16-bit chunks and 12-bit carries.

    U is X (mul) or, from the POW table, 2^s (shl) or 2^(32-s) (shr); the product's low
    word is the result of mul/shl, its high word that of shr_u. shr_s of a negative Y is
    the complement of shr_u of the complement: Y' and the high word flip when f = 1.
    """
    u = [c.row[COL[f"u{j}"]] for j in range(5)]
    for j in range(4):
        b.every_row(c.s("i32.mul") * (u[j] - X[2 * j] - 16 * X[2 * j + 1]))
    b.every_row(c.s("i32.mul") * u[4])
    f = c.fneg
    b.every_row(f - c.s("i32.shr_s") * c.sy)
    ys = [y + f * (15 - 2 * y) for y in Y]
    yb = [ys[2 * i] + 16 * ys[2 * i + 1] for i in range(4)]
    conv = [0] * 8
    for i in range(4):
        for j in range(5):
            conv[i + j] = conv[i + j] + yb[i] * u[j]
    chunk = [conv[2 * k] + 256 * conv[2 * k + 1] for k in range(4)]
    cm = [c.cm0, c.cm1, c.cm2]
    low, shr = c.s("i32.mul", "i32.shl"), c.s("i32.shr_u", "i32.shr_s")
    lo, hi = (lambda v: c.half(v, False)), (lambda v: c.half(v, True))
    b.every_row(low * (chunk[0] - lo("R") - 65536 * cm[0]))
    b.every_row(low * (chunk[1] + cm[0] - hi("R") - 65536 * cm[1]))
    b.every_row(shr * (chunk[0] - lo("Z") - 65536 * cm[0]))
    b.every_row(shr * (chunk[1] + cm[0] - hi("Z") - 65536 * cm[1]))
    w2, w3 = lo("R") + f * (65535 - 2 * lo("R")), hi("R") + f * (65535 - 2 * hi("R"))
    b.every_row(shr * (chunk[2] + cm[1] - w2 - 65536 * cm[2]))
    b.every_row(shr * (chunk[3] + cm[2] - w3))
