"""Control constraints: one-hot selectors, memory-slot keys, next pc / fp / depth, the run's
start at the export's entry and its end by a return at depth 0 after exactly ``steps`` rows
(or, for a trap statement, by a row that proves that trap)."""

from __future__ import annotations

from circuits.air import ConstraintBuilder
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.columns import COL
from circuits.wasm_vm.isa import BIT_COUNTS, BITWISE, CALL_TRAPS, COMPARE, DIV_TRAPS, DIVIDE, \
    DOT_TRAPS, DOTS, EXTENDS, LOAD_TRAPS, LOADS, MOVES, ROTATES, SELECTORS, SHIFTS, STORE_TRAPS, \
    STORES, TRAP_ROWS, trap_selectors
from circuits.wasm_vm.view import View

BINARY = (*COMPARE, "i32.add", "i32.sub", *BITWISE, "i32.mul", *SHIFTS, *ROTATES, "i32.mulhu")
"""Binary ops with the standard slots: X = b (sp-1), Y = a (sp-2), R written at sp-2.
Division reads b into Y and takes a as the written slot's old value Q."""
UNARY_Y = (*BIT_COUNTS,)
"""Unary ops reading their operand into Y (slot 1); X is the result's witness."""
STRAIGHT = ("nop", "i32.const", "advice", "assert_eqz", "select", "i32.eqz", "memory.size",
            "memory.grow", *MOVES, *DOTS,
            *BINARY, *DIVIDE, *UNARY_Y, *EXTENDS, *LOADS, *STORES)


def control_constraints(b: ConstraintBuilder, c: View, nx: View, entry: int, steps: int,
                        fp_limit: int, trap: str | None, mem_pages: int, *, start_fp: int = 0,
                        start_depth: int = 0, halts: bool = True) -> None:
    """Selectors, slot keys and activity, pc/fp/depth/pages flow, start (``mem_pages``
    initial pages), padding and halt: the last
    row is a return at depth 0, or, when the statement says the run trapped with ``trap``, a
    row proving that trap (``unreachable`` or a trap row, at any depth). Long on purpose: these
    constraints share the selector sums and slot views they build in turn.

    A call's new frame pointer is at most ``fp_limit`` (its distance below it is two 12-bit
    limbs, borrowed from the product engine's carry columns, free on call rows), so every
    stack address fp + sh stays inside the stack's key space.

    A segment of a longer run (circuits.wasm_vm.segment) starts at ``start_fp`` and
    ``start_depth`` and, when it does not halt (``halts`` False), leaves its end to the
    segment's boundary constraints."""
    sels = [b.main_cur[COL["s_" + s]] for s in SELECTORS]
    for s in sels:
        b.every_row(s * (s - 1))
    b.every_row(sum(sels[1:], sels[0]) - 1)
    pad, pad_n = c.s_pad, nx.s_pad
    xs, x_zero = c.is_zero("X")
    xz, dz = c.xz, c.dz  # the flags as columns: products with them stay of degree <= 3
    b.every_row(xz - x_zero)
    b.every_row(xs * xz)
    b.every_row(dz - 1 + c.depth * c.dinv)
    b.every_row(c.depth * dz)
    imm = c.imm_lo + 65536 * c.imm_hi
    sp = c.fp + c.sh
    taken_if, taken_eqz = 1 - xz, xz
    keep_t = c.row[COL["u3"]]  # br_table: the entry's keep
    drop_t = c.row[COL["u2"]]  # br_table: the entry's drop; call_indirect: the callee's nparams
    # slot activity and keys
    pop1 = c.s("local.set", "local.tee", "global.set", "select", "i32.eqz", "assert_eqz", "br_if",
               "br_eqz",
               "memory.grow", "br_table", "call_indirect", *CALL_TRAPS, *DIV_TRAPS, *BINARY,
               *EXTENDS, *LOADS, *STORES, *LOAD_TRAPS, *STORE_TRAPS, *DOTS, *DOT_TRAPS)
    b.every_row(c.act0 - pop1 - c.s("local.get", "global.get") - c.s("br", "return") * c.a3)
    b.every_row((pop1 + c.s("br", "return")) * (c.k0 - sp + 1))
    b.every_row(c.s("local.get") * (c.k0 - c.fp - imm))
    b.every_row(c.s("global.get") * (c.k0 - T.GLOBAL - imm))
    binsel = c.s(*BINARY)
    b.every_row(c.act1 - binsel - c.s("select", *DIV_TRAPS, *DIVIDE, *UNARY_Y, *LOADS, *STORES,
                                      *STORE_TRAPS, *DOTS, *DOT_TRAPS)
                - c.s("return") * (1 - dz) - c.s("br_if") * taken_if * c.a3
                - c.s("br_eqz") * taken_eqz * c.a3 - c.s("br_table") * keep_t)
    b.every_row((binsel + c.s("select", "br_if", "br_eqz", "br_table", *DIV_TRAPS, *STORES,
                              *STORE_TRAPS, *DOTS, *DOT_TRAPS)) * (c.k1 - sp + 2))
    b.every_row(c.s(*DIVIDE, *UNARY_Y) * (c.k1 - sp + 1))
    b.every_row(c.s(*LOADS) * (c.k1 - T.MEMORY - c.w))
    b.every_row(c.s("return") * (c.k1 - T.FRAME - c.depth))
    b.every_row(c.act2 - binsel - c.s("i32.eqz", "i32.const", "advice", "memory.size",
                                      "memory.grow",
                                      "select", "call", "call_indirect", *DIVIDE, *UNARY_Y,
                                      *EXTENDS, *MOVES, *LOADS, *STORES, *DOTS, *DOT_TRAPS)
                - c.s("br", "return") * c.a3 - c.s("br_if") * taken_if * c.a3
                - c.s("br_eqz") * taken_eqz * c.a3 - c.s("br_table") * keep_t)
    b.every_row(c.s(*DIVIDE, *BINARY) * (c.k2 - sp + 2))
    b.every_row(c.s("i32.eqz", "memory.grow", *UNARY_Y, *EXTENDS, *LOADS) * (c.k2 - sp + 1))
    b.every_row(c.s(*STORES) * (c.k2 - T.MEMORY - c.w))
    b.every_row(c.s("i32.const", "advice", "memory.size", "local.get", "global.get") * (c.k2 - sp))
    b.every_row(c.s("local.set", "local.tee") * (c.k2 - c.fp - imm))
    b.every_row(c.s("global.set") * (c.k2 - T.GLOBAL - imm))
    b.every_row(c.s("select", *DOTS, *DOT_TRAPS) * (c.k2 - sp + 3))
    b.every_row(c.s("br", "return") * (c.k2 - sp + 1 + c.a2))
    b.every_row(c.s("br_if", "br_eqz") * (c.k2 - sp + 2 + c.a2))
    b.every_row(c.s("br_table") * (c.k2 - sp + 2 + drop_t))
    b.every_row(c.s("call", "call_indirect") * (c.k2 - T.FRAME - c.depth - 1))
    for k in range(3):  # prev_ts < ts: ts - prev_ts - 1 is two 12-bit limbs
        b.every_row(3 * c.clk + k - c.row[COL[f"p{k}"]] - c.row[COL[f"tl{k}"]]
                    - 4096 * c.row[COL[f"th{k}"]])
    # next pc, fp, depth (br_table and call_indirect: npc is the looked-up entry's target)
    Y = c.r("Y")
    b.every_row(c.s(*STRAIGHT) * (c.npc - c.pc - 1))
    b.every_row(c.s("br", "call") * (c.npc - c.a1))
    b.every_row(c.s("br_if") * (c.npc - c.pc - 1 - taken_if * (c.a1 - c.pc - 1)))
    b.every_row(c.s("br_eqz") * (c.npc - c.pc - 1 - taken_eqz * (c.a1 - c.pc - 1)))
    b.every_row(c.s("return") * (c.npc - Y[0]))
    live_n = 1 - pad_n
    for now, then in zip((nx.pc, nx.fp, nx.depth, nx.pages), next_state(c)):
        b.transition(live_n * (now - then))
    room = c.cm0 + 4096 * c.cm1 - fp_limit + c.fp
    b.every_row(c.s("call") * (room + c.sh - c.a2))
    b.every_row(c.s("call_indirect") * (room + c.sh - 1 - drop_t))
    # start, padding, halt
    b.first_row(c.clk)
    b.transition(nx.clk - c.clk - 1)
    b.first_row(c.pc - entry)
    b.first_row(c.fp - start_fp)
    b.first_row(c.depth - start_depth)
    b.first_row(c.pages - mem_pages)
    b.first_row(pad)
    b.last_row(pad - 1)
    b.transition(pad * (1 - pad_n))
    switch = pad_n - pad
    b.transition(switch * (c.clk + 1 - steps))
    if halts and trap is not None:
        b.transition(switch * (1 - c.s(*trap_selectors(trap))))
    elif halts:
        b.transition(switch * (1 - c.s("return")))
        b.transition(switch * c.depth)
    b.transition(c.s("return") * dz * live_n)
    b.transition(c.s("unreachable", *TRAP_ROWS) * live_n)


def next_state(c: View) -> tuple:
    """The (pc, fp, depth, pages) of the row after ``c``, as ``c``'s instruction computes them
    (br_table and call_indirect: npc is the looked-up entry's target; memory.grow: w is the
    pages grown)."""
    drop_t = c.row[COL["u2"]]
    new_fp = c.s("call") * (c.sh - c.a2) + c.s("call_indirect") * (c.sh - 1 - drop_t)
    return (c.npc, c.fp + new_fp + c.s("return") * (c.r("Y")[1] - c.fp),
            c.depth + c.s("call", "call_indirect") - c.s("return"),
            c.pages + c.s("memory.grow") * c.w)
