"""Memory constraints: byte-addressed loads/stores inside 32-bit words, and the memory table
that initialises and finalises every key of the memory argument exactly once."""

from __future__ import annotations

import numpy as np

from circuits.air import ConstraintBuilder
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.columns import COL, NIBBLES
from circuits.wasm_vm.isa import ACCESS_BYTES, LOAD_TRAPS, LOADS, STORE_TRAPS, STORES, TRAP_ROWS
from circuits.wasm_vm.view import View


def linear_memory_constraints(b: ConstraintBuilder, c: View, X: list, Y: list, Q: list,
                              R: list) -> None:
    """Loads and stores of 8/16/32 bits inside one 32-bit word, and the out-of-bounds traps.

    The address A (X for loads, Y for stores) plus the offset is 4 w + o exactly: A's high
    half plus the offset's is below 2^12 (a 12-bit limb in the carry column cm2, free on these
    rows), so the sum is below 2^29 and never wraps. w lies below the current page count (its
    slack, two 12-bit limbs in cm0 cm1), so every access is in bounds. Loads read the word
    into Y and extract (sign-extending with the pinned sign bit sb of the top nibble hn);
    stores read the old word into Q and write R, equal to Q outside the stored bytes.
    """
    o0, o1 = c.o0, c.o1
    b.every_row(o0 * (o0 - 1))
    b.every_row(o1 * (o1 - 1))
    b.every_row(c.sb * (c.sb - 1))
    imm = c.imm_lo + 65536 * c.imm_hi
    lo, hi = (lambda v: c.half(v, False)), (lambda v: c.half(v, True))
    for sel, addr in ((c.s(*LOADS), "X"), (c.s(*STORES), "Y")):
        b.every_row(sel * (c.cm2 - hi(addr) - c.imm_hi))
        b.every_row(sel * (lo(addr) + 65536 * hi(addr) + imm - 4 * c.w - o0 - 2 * o1))
    b.every_row(c.s(*LOADS, *STORES) * (c.cm0 + 4096 * c.cm1 + 1 + c.w - T.PAGE_WORDS * c.pages))
    out_of_bounds_constraints(b, c)
    wide = c.s("i32.load", "i32.store")
    b.every_row(wide * o0)
    b.every_row(wide * o1)
    b.every_row(c.s("i32.load16_s", "i32.load16_u", "i32.store16") * o0)
    l8, l16 = c.s("i32.load8_s", "i32.load8_u"), c.s("i32.load16_s", "i32.load16_u")
    o01 = c.d1  # = o0 o1 on byte rows: the byte selectors below stay linear
    b.every_row(c.s("i32.load8_s", "i32.load8_u", "i32.store8") * (o01 - o0 * o1))
    e = [1 - o0 - o1 + o01, o0 - o01, o1 - o01, o01]  # byte k selected
    b.every_row(l8 * (c.hn - sum(e[k] * Y[2 * k + 1] for k in range(4))))
    b.every_row(l16 * (c.hn - Y[3] - o1 * (Y[7] - Y[3])))
    ext8, ext16 = c.s("i32.load8_s") * c.sb * 15, c.s("i32.load16_s") * c.sb * 15
    for i in range(NIBBLES):
        b.every_row(c.s("i32.load") * (R[i] - Y[i]))
        b.every_row(c.s("i32.store") * (R[i] - X[i]))
        if i < 2:
            b.every_row(l8 * (R[i] - sum(e[k] * Y[2 * k + i] for k in range(4))))
        else:
            b.every_row(l8 * R[i] - ext8)
        if i < 4:
            b.every_row(l16 * (R[i] - Y[i] - o1 * (Y[i + 4] - Y[i])))
        else:
            b.every_row(l16 * R[i] - ext16)
        b.every_row(c.s("i32.store8") * (R[i] - Q[i] - e[i // 2] * (X[i % 2] - Q[i])))
        half_sel = o1 if i >= 4 else 1 - o1
        b.every_row(c.s("i32.store16") * (R[i] - Q[i] - half_sel * (X[i % 4] - Q[i])))


def out_of_bounds_constraints(b: ConstraintBuilder, c: View) -> None:
    """Trap rows of loads and stores (isa.LOAD_TRAPS, STORE_TRAPS): the access's last byte
    A + offset + bytes - 1 lies at or past 65536 * pages. Its distance Z (range-checked
    nibbles, free on these rows) is computed in 16-bit halves: the low half's carry cm0 and
    the high half's carry cm1 are 12-bit limbs, so the high half can only balance when the
    distance is non-negative (a negative one would need a carry near p)."""
    lo, hi = (lambda v: c.half(v, False)), (lambda v: c.half(v, True))
    for traps, addr in ((LOAD_TRAPS, "X"), (STORE_TRAPS, "Y")):
        sel = c.s(*traps)
        last = sum(c.row[COL["s_" + t]] * (ACCESS_BYTES[TRAP_ROWS[t][0]] - 1) for t in traps)
        b.every_row(sel * (lo(addr) + c.imm_lo - lo("Z") - 65536 * c.cm0) + last)
        b.every_row(sel * (hi(addr) + c.imm_hi + c.cm0 - c.pages - hi("Z") - 65536 * c.cm1))


def memory_table_constraints(b: ConstraintBuilder, c: View, nx: View, result: tuple[int, ...],
                             end_key: int) -> None:
    """One entry per key, keys strictly increasing below 2^25 from stack slot 0 to the end
    sentinel; the final values of slots 0 (and 1: an i64's high word) are the result's words,
    so the table's first (two) entries are those slots. A row flagged ``mout`` consumes its key's
    final value as a public output word (the verifier adds one per output word), so each
    output word is the final value of its key."""
    b.every_row(c.mact * (c.mact - 1))
    b.every_row(c.mpub * (c.mpub - 1))
    b.every_row(c.mpub * (1 - c.mact))
    b.every_row(c.mout * (c.mout - 1))
    b.every_row(c.mout * (1 - c.mact))
    b.transition(nx.mact * (1 - c.mact))
    b.first_row(c.mact - 1)
    b.first_row(c.mkey - T.STACK)
    for k, (row, word) in enumerate(zip((c, nx), result)):
        if k:
            b.first_row(row.mact - 1)
            b.first_row(row.mkey - T.STACK - k)
        for i, v in enumerate(T.nibbles(np.uint64(word)).tolist()):
            b.first_row(row.row[COL[f"mfin{i}"]] - v)
    b.every_row(c.mk2 * (c.mk2 - 1))
    b.every_row(c.mkey - c.mk0 - 4096 * c.mk1 - (1 << 24) * c.mk2)  # keys < 2^25
    b.transition(nx.mact * (nx.mkey - c.mkey - 1 - c.mg0 - 4096 * c.mg1))
    b.transition(c.mact * (1 - nx.mact) * (c.mkey - end_key))
    b.last_row(c.mact)
