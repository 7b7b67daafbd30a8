"""Value constraints: moves, constants, add/sub, comparisons, eqz, select, sign extension, bit
counts, call records, table lookups' operands, and the product engine (mul, shifts, rotations,
clz/ctz, division). Bitwise ops and popcnt are nibble lookups (see logup)."""

from __future__ import annotations

from circuits.air import ConstraintBuilder
from circuits.wasm_vm.columns import COL, NIBBLES
from circuits.wasm_vm.isa import CALL_TRAPS, COMPARE, COUNTS, DIVIDE, DOT_TRAPS, LOAD_TRAPS, \
    LOW_WORD_IN_Z, MOVES, PRODUCT, R_CHECKED, ROTATES, STORE_TRAPS
from circuits.wasm_vm.memory import linear_memory_constraints
from circuits.wasm_vm.view import View


def value_constraints(b: ConstraintBuilder, c: View, max_pages: int, cap_pages: int) -> None:
    """The written value R of every instruction from its operands (memory.grow: a grow past
    ``max_pages`` returns -1, no memory grows past ``cap_pages``)."""
    X, Y, Q, R, Z = (c.r(n) for n in ("X", "Y", "Q", "R", "Z"))
    xz = c.xz  # X == 0 (defined in control)
    zs, zz = c.is_zero("Z")
    b.every_row(zs * zz)
    for v in (c.c0, c.c1, c.sx, c.sy):
        b.every_row(v * (v - 1))
    cmp = c.s(*COMPARE)
    moves = c.s(*MOVES, "br", "return")
    z_free = c.s(*COMPARE, *R_CHECKED, *COUNTS, "br_table", "call_indirect", *CALL_TRAPS,
                 *LOAD_TRAPS, *STORE_TRAPS, *DOT_TRAPS)
    for i in range(NIBBLES):
        b.every_row(moves * (R[i] - X[i]))
        b.every_row(c.s("br_if", "br_eqz", "br_table") * (R[i] - Y[i]))
        b.every_row((1 - z_free) * (Z[i] - R[i]))
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
    b.every_row(c.s("i32.lt_s", "i32.gt_s", "i32.le_s", "i32.ge_s")
                * (c.sg - c.sx - c.sy + 2 * c.sx * c.sy))
    lts = ltu + c.sg * (c.sy - ltu)
    results = {"i32.eq": zz, "i32.ne": 1 - zz, "i32.lt_u": ltu, "i32.lt_s": lts,
               "i32.gt_u": 1 - ltu - zz, "i32.gt_s": 1 - lts - zz, "i32.le_u": ltu + zz,
               "i32.le_s": lts + zz, "i32.ge_u": 1 - ltu, "i32.ge_s": 1 - lts, "i32.eqz": xz}
    for name, value in results.items():
        b.every_row(c.s(name) * (R[0] - value))
    b.every_row(c.s("assert_eqz") * (1 - xz))  # a check of the lowering: no row for X != 0
    unary_constraints(b, c, X, R)
    memory_size_constraints(b, c, X, Y, R, max_pages, cap_pages)
    product_constraints(b, c, X, Y, Q, R, Z)
    linear_memory_constraints(b, c, X, Y, Q, R)
    table_constraints(b, c, X)
    b.every_row(c.s("call", "call_indirect") * (R[0] - c.pc - 1))
    b.every_row(c.s("call", "call_indirect") * (R[1] - c.fp))


def small(v: list):
    """The value of a register's low five nibbles (< 2^20, exact)."""
    return v[0] + 16 * v[1] + 256 * v[2] + 4096 * v[3] + 65536 * v[4]


def memory_size_constraints(b: ConstraintBuilder, c: View, X: list, Y: list, R: list,
                            max_pages: int, cap_pages: int) -> None:
    """memory.size returns the page count; memory.grow by X succeeds (returns the old count)
    iff X <= Y = max_pages - pages (comparison: Z = Y - X, borrow c1), else returns -1; a
    success stays within the cap: pages + X + slack = cap_pages, the slack two 12-bit limbs in
    the product engine's carry columns (free on these rows). A grow past the cap but within
    the maximum thus has no proof (the sandbox stops such a call). The count itself changes in
    control (the next row's pages): by w, X or 0."""
    size, grow = c.s("memory.size"), c.s("memory.grow")
    fail = c.c1
    b.every_row(size * (small(R) - c.pages))
    b.every_row(grow * (small(Y) + c.pages - max_pages))
    b.every_row(grow * (c.half("Z", False) + c.half("X", False) - c.half("Y", False)
                        - 65536 * c.c0))
    b.every_row(grow * (c.half("Z", True) + c.half("X", True) + c.c0 - c.half("Y", True)
                        - 65536 * fail))
    b.every_row(grow * (1 - fail) * (small(R) - c.pages))
    b.every_row(grow * (c.w - (1 - fail) * small(X)))  # X < 2^20 when the grow succeeds
    b.every_row(grow * (c.cm0 + 4096 * c.cm1 + c.pages + c.w - cap_pages))
    for i in range(NIBBLES):
        b.every_row(grow * fail * (R[i] - 15))
        if i >= 5:
            b.every_row(size * R[i])
            b.every_row(grow * Y[i])
            b.every_row(grow * (1 - fail) * R[i])


def unary_constraints(b: ConstraintBuilder, c: View, X: list, R: list) -> None:
    """extend8_s / extend16_s (sign bit sb pinned to the top nibble hn of the kept part) and
    popcnt (X holds the operand's nibble popcounts, looked up against Y's nibbles)."""
    for sel, keep in ((c.s("i32.extend8_s"), 2), (c.s("i32.extend16_s"), 4)):
        b.every_row(sel * (c.hn - X[keep - 1]))
        for i in range(NIBBLES):
            b.every_row(sel * (R[i] - X[i]) if i < keep else sel * (R[i] - 15 * c.sb))
    pop = c.s("i32.popcnt")
    b.every_row(pop * (R[0] + 16 * R[1] - sum(X[1:], X[0])))
    for i in range(2, NIBBLES):
        b.every_row(pop * R[i])


def product_constraints(b: ConstraintBuilder, c: View, X: list, Y: list, Q: list, R: list,
                        Z: list) -> None:
    """The product engine: Y' * U in byte limbs, as four 16-bit chunks with 12-bit carries.

    Y' is Y, or its complement when fneg = 1 (shr_s of a negative, signed division by a
    negative divisor). U is X (mul; div/rem: the quotient's magnitude) or, from the POW
    table, 2^s (shl, rotl), 2^(32-s) (shr, rotr), 2^v (clz), 2^(31-v) (ctz); a count of 32
    multiplies by 2^32. Low word: R (mul, shl) or Z; high word: shr's and mulhu's result,
    rotations add it to Z, clz needs it zero. clz/ctz take the count from X (= R) and the
    operand from Y.
    """
    u = [c.row[COL[f"u{j}"]] for j in range(5)]
    by_x = c.s("i32.mul", "i32.mulhu", *DIVIDE)
    for j in range(4):
        b.every_row(by_x * (u[j] - X[2 * j] - 16 * X[2 * j + 1]))
    b.every_row(by_x * u[4])
    f = c.fneg
    b.every_row(f - c.s("i32.shr_s", "i32.div_s", "i32.rem_s") * c.sy)
    yb = [c.row[COL[f"v{i}"]] for i in range(4)]  # Y' in bytes, committed (degree 3 below)
    for i in range(4):
        y = Y[2 * i] + 16 * Y[2 * i + 1]
        b.every_row(c.s(*PRODUCT) * (yb[i] - y - f * (255 - 2 * y)))
    conv = [0] * 8
    for i in range(4):
        for j in range(5):
            conv[i + j] = conv[i + j] + yb[i] * u[j]
    chunk = [conv[2 * k] + 256 * conv[2 * k + 1] for k in range(4)]
    cm = [c.cm0, c.cm1, c.cm2]
    low, low_z = c.s("i32.mul", "i32.shl"), c.s(*LOW_WORD_IN_Z)
    lo, hi = (lambda v: c.half(v, False)), (lambda v: c.half(v, True))
    b.every_row(low * (chunk[0] - lo("R") - 65536 * cm[0]))
    b.every_row(low * (chunk[1] + cm[0] - hi("R") - 65536 * cm[1]))
    b.every_row(low_z * (chunk[0] - lo("Z") - 65536 * cm[0]))
    b.every_row(low_z * (chunk[1] + cm[0] - hi("Z") - 65536 * cm[1]))
    shr, rot, clz = c.s("i32.shr_u", "i32.shr_s"), c.s(*ROTATES), c.s("i32.clz")
    w2, w3 = lo("R") + f * (65535 - 2 * lo("R")), hi("R") + f * (65535 - 2 * hi("R"))
    high = c.s("i32.mulhu")
    for sel, (h2, h3) in ((shr, (w2, w3)), (rot, (lo("R") - lo("Z"), hi("R") - hi("Z"))),
                          (clz, (0, 0)), (high, (lo("R"), hi("R")))):
        b.every_row(sel * (chunk[2] + cm[1] - h2 - 65536 * cm[2]))
        b.every_row(sel * (chunk[3] + cm[2] - h3))
    # clz: Y << v < 2^32 with its top bit set (v < 32), or Y = 0 (v = 32: U = 2^32)
    b.every_row(clz * (c.hn - Z[7]))
    b.every_row(clz * (1 - u[4]) * (1 - c.sb))
    # ctz: Y << (31 - v) is exactly 2^31 (v < 32), or Y = 0 (v = 32)
    ctz = c.s("i32.ctz")
    for i in range(7):
        b.every_row(ctz * Z[i])
    b.every_row(ctz * (Z[7] - 8 * (1 - u[4])))
    b.every_row(ctz * u[4] * sum(Y[1:], Y[0]))
    counts = c.s(*COUNTS)
    for i in range(NIBBLES):
        b.every_row(counts * (R[i] - X[i]) if i < 2 else counts * R[i])
    division_constraints(b, c, X, Y, Q, R, Z, chunk)


def division_constraints(b: ConstraintBuilder, c: View, X: list, Y: list, Q: list, R: list,
                         Z: list, chunk: list) -> None:
    """div/rem (u, s): |a| = |q| |b| + |r| and |r| + slack + 1 = |b|, all range-checked.

    Layout: Q = a (the old value of the written slot; no separate read), Y = b, X = |q|,
    Z = |r|, slack = d0 + 4096 d1 + 2^24 cm2. Magnitudes of signed operands are their
    complements plus one: |b| = fneg ? ~b + 1 : b, |a| = (sb ? ~a + 1 : a) with sb pinned to
    a's top nibble hn. A signed result is the magnitude negated when its sign is set, through
    two boolean carries (o0, o1); div_s's quotient magnitude must stay below 2^31 when its
    sign is clear (INT_MIN / -1 is the overflow trap row instead). Division by zero leaves
    no slack: only a trap row can run it.
    """
    fam = c.s(*DIVIDE)
    f, sa = c.fneg, c.sb
    lo, hi = (lambda v: c.half(v, False)), (lambda v: c.half(v, True))
    qlo, qhi = lo("Q"), hi("Q")
    b.every_row(fam * (c.hn - Q[7]))
    carry = c.cm0 - 1  # in [-1, 4095): |a|'s low half may be 2^16 (a complement plus one)
    for sel, fa in ((c.s("i32.div_u", "i32.rem_u"), 0), (c.s("i32.div_s", "i32.rem_s"), sa)):
        alo = qlo + fa * (65535 - 2 * qlo) + fa
        ahi = qhi + fa * (65535 - 2 * qhi)
        b.every_row(sel * (chunk[0] + f * lo("X") + lo("Z") - alo - 65536 * carry))
        b.every_row(sel * (chunk[1] + f * hi("X") + hi("Z") + carry - ahi - 65536 * c.cm1))
    b.every_row(fam * (chunk[2] + c.cm1))
    b.every_row(fam * chunk[3])
    # |r| + slack + 1 = |b| in 12-bit chunks (carries c0, c1; no carry out)
    fb = [y + f * (15 - 2 * y) for y in Y]

    def c12(v: list, k: int):
        return v[3 * k] + 16 * v[3 * k + 1] + (256 * v[3 * k + 2] if k < 2 else 0)

    slack = [c.d0, c.d1, c.cm2]
    carry_in = [1 - f, c.c0, c.c1]
    carry_out = [c.c0, c.c1, 0]
    for k in range(3):
        b.every_row(fam * (c12(Z, k) + slack[k] + carry_in[k] - c12(fb, k)
                           - 4096 * carry_out[k]))
    # results: the magnitude, negated (two's complement) when the sign s is set
    b.every_row(c.s("i32.div_s") * (c.sg - sa - c.sy + 2 * sa * c.sy))
    for sel, mag, s in ((c.s("i32.div_u"), "X", 0), (c.s("i32.rem_u"), "Z", 0),
                        (c.s("i32.div_s"), "X", c.sg), (c.s("i32.rem_s"), "Z", sa)):
        b.every_row(sel * (lo("R") - lo(mag) + s * (2 * lo(mag) - 65536 * c.o0)))
        b.every_row(sel * (hi("R") - hi(mag) + s * (2 * hi(mag) + c.o0 - 65536 * c.o1)))
    b.every_row(c.s("i32.div_s") * (1 - c.sg) * c.sx)
    # trap rows (X = b, Y = a, nothing written): b = 0, or a = INT_MIN and b = -1
    b.every_row(c.s("i32.div_s/0", "i32.div_u/0", "i32.rem_s/0", "i32.rem_u/0")
                * sum(X[1:], X[0]))
    ovf = c.s("i32.div_s/overflow")
    for i in range(NIBBLES):
        b.every_row(ovf * (X[i] - 15))
        b.every_row(ovf * (Y[i] - (8 if i == 7 else 0)))


def table_constraints(b: ConstraintBuilder, c: View, X: list) -> None:
    """br_table and call_indirect look up a second ROM row, the *entry* (ROM, w, op, u0, u1,
    npc, u2, u3, u4), see logup.

    br_table: the entry is pc + 1 + min(index, n): u0 = the index X, or n when c1 says the
    index is at least n (then Z = X - n); entries beyond n do not exist, so index <= n holds
    otherwise. The entry's (target, drop, keep) = (npc, u2, u3) drive the transfer.
    call_indirect: the entry is table_base + X (X < 2^16; rows past the table do not exist),
    its type u3 equals the expected type (imm): the entry's (pc, nparams) = (npc, u2) make
    the call. Trap rows prove X >= size (Z = X - size), a null entry (type -1), or a type
    other than the expected one and -1 (inverse witness d0).
    """
    u = [c.row[COL[f"u{j}"]] for j in range(5)]
    lo, hi = (lambda v: c.half(v, False)), (lambda v: c.half(v, True))
    brt, dflt = c.s("br_table"), c.c1
    b.every_row(brt * (c.w - c.pc - 1 - u[0]))
    b.every_row(brt * (u[0] - lo("X") - dflt * (c.imm_lo - lo("X"))))
    b.every_row(brt * (1 - dflt) * hi("X"))
    b.every_row(brt * dflt * (lo("Z") + c.imm_lo - lo("X") - 65536 * c.c0))
    b.every_row(brt * dflt * (hi("Z") + c.imm_hi + c.c0 - hi("X")))
    b.every_row(brt * u[1])
    b.every_row(brt * (u[4] - c.sh))
    looked_up = c.s("call_indirect", "call_indirect/null", "call_indirect/type")
    b.every_row(looked_up * (c.w - c.a1 - lo("X")))
    b.every_row(looked_up * hi("X"))
    b.every_row(looked_up * u[4])
    b.every_row(c.s("call_indirect") * (u[3] - c.imm_lo))
    b.every_row(c.s("call_indirect/null") * (u[3] + 1))
    mismatch = c.s("call_indirect/type")  # d1 = (u3 - imm)(u3 + 1) != 0, inverted by d0
    b.every_row(mismatch * (c.d1 - (u[3] - c.imm_lo) * (u[3] + 1)))
    b.every_row(mismatch * (c.d1 * c.d0 - 1))
    oob = c.s("call_indirect/bounds")
    b.every_row(oob * (lo("Z") + c.a2 - lo("X") - 65536 * c.c0))
    b.every_row(oob * (hi("Z") + c.c0 - hi("X")))
