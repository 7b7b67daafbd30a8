"""The instructions the VM AIR proves, by memjit's lowered op id (memjit.wasm.opcodes).

The op ids are part of every verification key; they are repeated here (circuits may not import
the engine) and a test checks them against the front end's table.
"""

from __future__ import annotations

OP_IDS: dict[str, int] = {
    "unreachable": 0, "nop": 1, "br": 2, "br_if": 3, "br_eqz": 4, "return": 7, "call": 8, "select": 11,
    "local.get": 12, "local.set": 13, "local.tee": 14, "global.get": 15, "global.set": 16,
    "i32.const": 17, "i32.load": 21, "i32.load8_s": 23, "i32.load8_u": 24, "i32.load16_s": 25,
    "i32.load16_u": 26, "i32.store": 33, "i32.store8": 35, "i32.store16": 36,
    "i32.eq": 40, "i32.ne": 41, "i32.lt_s": 42, "i32.lt_u": 43, "i32.gt_s": 44, "i32.gt_u": 45,
    "i32.le_s": 46, "i32.le_u": 47, "i32.ge_s": 48, "i32.ge_u": 49,
    "i32.add": 50, "i32.sub": 51, "i32.mul": 52, "i32.and": 57, "i32.or": 58, "i32.xor": 59,
    "i32.shl": 60, "i32.shr_s": 61, "i32.shr_u": 62,
    "i32.eqz": 90,
}
"""Op name -> op id for every instruction with a selector column."""

COMPARE = ("i32.eq", "i32.ne", "i32.lt_s", "i32.lt_u", "i32.gt_s", "i32.gt_u", "i32.le_s",
           "i32.le_u", "i32.ge_s", "i32.ge_u")
BITWISE = ("i32.and", "i32.or", "i32.xor")
LOADS = ("i32.load", "i32.load8_s", "i32.load8_u", "i32.load16_s", "i32.load16_u")
STORES = ("i32.store", "i32.store8", "i32.store16")
PRODUCTS = ("i32.mul", "i32.shl", "i32.shr_u", "i32.shr_s")
SHIFTS = ("i32.shl", "i32.shr_u", "i32.shr_s")
MOVES = ("local.get", "local.set", "local.tee", "global.get", "global.set")
BRANCHES = ("br", "br_if", "br_eqz")
SELECTORS: tuple[str, ...] = ("pad",) + tuple(OP_IDS)
"""One-hot selector columns, in layout order; ``pad`` marks the no-op rows after the run."""
