"""The instructions the VM AIR proves, by memjit's lowered op id (memjit.runtime.wasm.opcodes).

The op ids are part of every verification key; they are repeated here (circuits may not import
the engine) and a test checks them against the front end's table.

A row's one-hot selector names either an instruction or a *trap row*: the instruction at that
pc executed up to its trap (same op id in the ROM lookup, its own constraints proving the trap
condition); a trap row can only be a trapping statement's last row.
"""

from __future__ import annotations

OP_IDS: dict[str, int] = {
    "unreachable": 0, "nop": 1, "br": 2, "br_if": 3, "br_eqz": 4, "br_table": 5, "return": 7,
    "call": 8, "call_indirect": 9, "select": 11,
    "local.get": 12, "local.set": 13, "local.tee": 14, "global.get": 15, "global.set": 16,
    "i32.const": 17, "memory.size": 19, "memory.grow": 20, "i32.load": 21, "i32.load8_s": 23,
    "i32.load8_u": 24, "i32.load16_s": 25, "i32.load16_u": 26, "i32.store": 33, "i32.store8": 35,
    "i32.store16": 36,
    "i32.eq": 40, "i32.ne": 41, "i32.lt_s": 42, "i32.lt_u": 43, "i32.gt_s": 44, "i32.gt_u": 45,
    "i32.le_s": 46, "i32.le_u": 47, "i32.ge_s": 48, "i32.ge_u": 49,
    "i32.add": 50, "i32.sub": 51, "i32.mul": 52, "i32.div_s": 53, "i32.div_u": 54,
    "i32.rem_s": 55, "i32.rem_u": 56, "i32.and": 57, "i32.or": 58, "i32.xor": 59,
    "i32.shl": 60, "i32.shr_s": 61, "i32.shr_u": 62, "i32.rotl": 63, "i32.rotr": 64,
    "i32.eqz": 90, "i32.clz": 92, "i32.ctz": 93, "i32.popcnt": 94,
    "i32.extend8_s": 101, "i32.extend16_s": 102,
    "i32.mulhu": 106, "advice": 107, "assert_eqz": 108,
    "memjit.dot_i8i8": 109, "memjit.dot_i8u8": 110,
}
"""Op name -> op id for every instruction with a selector column."""
BR_ENTRY, TABLE_ENTRY = 6, 10
"""Op ids of the ROM's data rows (br_table targets, the function table), looked up, never run."""

LOADS = ("i32.load", "i32.load8_s", "i32.load8_u", "i32.load16_s", "i32.load16_u")
STORES = ("i32.store", "i32.store8", "i32.store16")
DOTS = ("memjit.dot_i8i8", "memjit.dot_i8u8")
"""The precompile calls (circuits.wasm_vm.tensor proves them)."""

TRAP_ROWS: dict[str, tuple[str, str]] = {
    "i32.div_s/0": ("i32.div_s", "integer_divide_by_zero"),
    "i32.div_u/0": ("i32.div_u", "integer_divide_by_zero"),
    "i32.rem_s/0": ("i32.rem_s", "integer_divide_by_zero"),
    "i32.rem_u/0": ("i32.rem_u", "integer_divide_by_zero"),
    "i32.div_s/overflow": ("i32.div_s", "integer_overflow"),
    "call_indirect/bounds": ("call_indirect", "table_out_of_bounds"),
    "call_indirect/null": ("call_indirect", "indirect_call_to_null"),
    "call_indirect/type": ("call_indirect", "indirect_call_type_mismatch"),
    **{f"{op}/oob": (op, "memory_out_of_bounds") for op in (*LOADS, *STORES, *DOTS)},
}
"""Trap-row selector -> (the instruction it executes, the trap it proves)."""

COMPARE = ("i32.eq", "i32.ne", "i32.lt_s", "i32.lt_u", "i32.gt_s", "i32.gt_u", "i32.le_s",
           "i32.le_u", "i32.ge_s", "i32.ge_u")
BITWISE = ("i32.and", "i32.or", "i32.xor")
SHIFTS = ("i32.shl", "i32.shr_u", "i32.shr_s")
ROTATES = ("i32.rotl", "i32.rotr")
DIVIDE = ("i32.div_u", "i32.div_s", "i32.rem_u", "i32.rem_s")
COUNTS = ("i32.clz", "i32.ctz")
"""clz / ctz: the count is proven with a power of two from the POW table (operand in Y)."""
BIT_COUNTS = (*COUNTS, "i32.popcnt")
EXTENDS = ("i32.extend8_s", "i32.extend16_s")
POW_USERS = (*SHIFTS, *ROTATES, *COUNTS)
"""Rows whose multiplier comes from the POW table (the rest of the engine uses X's bytes)."""
LOW_WORD_IN_Z = ("i32.shr_u", "i32.shr_s", *ROTATES, *COUNTS, "i32.mulhu")
"""Product rows whose low word is Z (the result R is checked by its own range lookups);
i32.mulhu (the lowering's high word of a product) returns the high word R."""
PRODUCT = ("i32.mul", "i32.shl", *LOW_WORD_IN_Z, *DIVIDE)
"""Rows that run the product engine (its multiplicand bytes v0..v3 are Y's, or their
complement)."""
R_CHECKED = ("i32.shr_u", "i32.shr_s", *ROTATES, *DIVIDE, "memory.grow", "i32.mulhu")
"""Rows whose result R is not Z: R's nibbles are range-checked by three R3 lookups."""
MOVES = ("local.get", "local.set", "local.tee", "global.get", "global.set")
BRANCHES = ("br", "br_if", "br_eqz")
DIV_TRAPS = tuple(s for s, (op, _) in TRAP_ROWS.items() if op in DIVIDE)
CALL_TRAPS = tuple(s for s, (op, _) in TRAP_ROWS.items() if op == "call_indirect")
LOAD_TRAPS = tuple(f"{op}/oob" for op in LOADS)
STORE_TRAPS = tuple(f"{op}/oob" for op in STORES)
"""Out-of-bounds trap rows: the access's last byte lies at or past the memory's end."""
DOT_TRAPS = tuple(f"{op}/oob" for op in DOTS)
"""Out-of-bounds trap rows of precompile calls: an operand's last byte lies at or past the
memory's end (circuits.wasm_vm.tensor.trap_constraints)."""
ACCESS_BYTES: dict[str, int] = {op: 4 if op in ("i32.load", "i32.store") else
                                2 if "16" in op else 1 for op in (*LOADS, *STORES)}
"""Bytes a load or store accesses."""
SELECTORS: tuple[str, ...] = ("pad",) + tuple(OP_IDS) + tuple(TRAP_ROWS)
"""One-hot selector columns, in layout order; ``pad`` marks the no-op rows after the run."""
SELECTOR_OP: dict[str, int] = {**OP_IDS, **{s: OP_IDS[op] for s, (op, _) in TRAP_ROWS.items()}}
"""Selector -> the op id its rows look up in the ROM."""


def trap_selectors(trap: str) -> tuple[str, ...]:
    """The selectors whose row may end a run that trapped with ``trap``."""
    if trap == "unreachable":
        return ("unreachable",)
    return tuple(s for s, (_, t) in TRAP_ROWS.items() if t == trap)
