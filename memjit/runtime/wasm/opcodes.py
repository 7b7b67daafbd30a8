"""The instruction table: WebAssembly opcodes, their stack signatures, and memjit's compact op ids.

Two numberings live here. *Wasm codes* are the binary opcodes (one byte, or ``0xFC00 | sub``
for the ``0xFC`` prefix). *Op ids* (``uint8``) number the instructions of the lowered program
(:mod:`memjit.runtime.wasm.program`); they are grouped in contiguous ranges so that the tracer can
dispatch on a range first. The op-id order is part of the program ROM and hence of every
verification key: append, never reorder.
"""

from __future__ import annotations

I32, I64 = 0x7F, 0x7E
"""Value-type bytes of the two supported types."""

VALTYPE_NAMES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
                 0x70: "funcref", 0x6F: "externref"}

# --- lowered op ids ---------------------------------------------------------------------------

CONTROL_OPS = (
    "unreachable", "nop", "br", "br_if", "br_eqz", "br_table", "br_entry", "return", "call",
    "call_indirect", "table_entry", "select", "local.get", "local.set", "local.tee",
    "global.get", "global.set", "i32.const", "i64.const", "memory.size", "memory.grow",
)
LOAD_OPS = (  # (name, width in bytes, signed, result is i64)
    ("i32.load", 4, False, False), ("i64.load", 8, False, True),
    ("i32.load8_s", 1, True, False), ("i32.load8_u", 1, False, False),
    ("i32.load16_s", 2, True, False), ("i32.load16_u", 2, False, False),
    ("i64.load8_s", 1, True, True), ("i64.load8_u", 1, False, True),
    ("i64.load16_s", 2, True, True), ("i64.load16_u", 2, False, True),
    ("i64.load32_s", 4, True, True), ("i64.load32_u", 4, False, True),
)
STORE_OPS = (  # (name, width in bytes, value is i64)
    ("i32.store", 4, False), ("i64.store", 8, True), ("i32.store8", 1, False),
    ("i32.store16", 2, False), ("i64.store8", 1, True), ("i64.store16", 2, True),
    ("i64.store32", 4, True),
)
BINARY = ("eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u",
          "add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor",
          "shl", "shr_s", "shr_u", "rotl", "rotr")
"""Binary operators in op-id order; the first 10 are comparisons (result i32)."""
UNARY_OPS = (  # (name, operand is i64, result is i64)
    ("i32.eqz", False, False), ("i64.eqz", True, False),
    ("i32.clz", False, False), ("i32.ctz", False, False), ("i32.popcnt", False, False),
    ("i64.clz", True, True), ("i64.ctz", True, True), ("i64.popcnt", True, True),
    ("i32.wrap_i64", True, False), ("i64.extend_i32_s", False, True),
    ("i64.extend_i32_u", False, True), ("i32.extend8_s", False, False),
    ("i32.extend16_s", False, False), ("i64.extend8_s", True, True),
    ("i64.extend16_s", True, True), ("i64.extend32_s", True, True),
)
LOWERING_OPS = ("i32.mulhu", "advice", "assert_eqz")
"""memjit's own rows for cheaper 64-bit code (no wasm instruction has them): the high word of
the unsigned 32 x 32 product; a word the prover supplies (the tracer computes it: see
:data:`ADVICE_KINDS`), range-checked and otherwise free; a check that pops a word the AIR
requires to be zero (no row proves a non-zero one, so a failed check has no proof)."""
ADVICE_KINDS = ("i64.div_u quotient low", "i64.div_u quotient high",
                "i64.div_u remainder low", "i64.div_u remainder high")
"""An advice row's imm is ``local << 2 | kind``: the word ``kind`` of the unsigned division of
the i64 in locals (local, local + 1) by the i64 in locals (local + 2, local + 3)."""

OP_NAMES: tuple[str, ...] = (
    CONTROL_OPS
    + tuple(n for n, *_ in LOAD_OPS)
    + tuple(n for n, *_ in STORE_OPS)
    + tuple("i32." + n for n in BINARY)
    + tuple("i64." + n for n in BINARY)
    + tuple(n for n, *_ in UNARY_OPS)
    + LOWERING_OPS
    + tuple(f"memjit.{n}" for n in ("dot_i8i8", "dot_i8u8"))
)
"""Op id -> name (wasm text names; ``br_eqz``, ``br_entry``, ``table_entry`` are memjit's)."""
OP: dict[str, int] = {name: i for i, name in enumerate(OP_NAMES)}
"""Name -> op id."""

UNREACHABLE, NOP, BR, BR_IF, BR_EQZ, BR_TABLE, BR_ENTRY, RETURN, CALL, CALL_INDIRECT, \
    TABLE_ENTRY, SELECT, LOCAL_GET, LOCAL_SET, LOCAL_TEE, GLOBAL_GET, GLOBAL_SET, I32_CONST, \
    I64_CONST, MEMORY_SIZE, MEMORY_GROW = range(len(CONTROL_OPS))
LOAD_BASE = len(CONTROL_OPS)
STORE_BASE = LOAD_BASE + len(LOAD_OPS)
I32_BIN_BASE = STORE_BASE + len(STORE_OPS)
I64_BIN_BASE = I32_BIN_BASE + len(BINARY)
UNARY_BASE = I64_BIN_BASE + len(BINARY)
I32_MULHU = UNARY_BASE + len(UNARY_OPS)
ADVICE, ASSERT_EQZ = I32_MULHU + 1, I32_MULHU + 2
PRECOMPILE_BASE = I32_MULHU + len(LOWERING_OPS)
DOT_I8I8, DOT_I8U8 = PRECOMPILE_BASE, PRECOMPILE_BASE + 1
N_OPS = PRECOMPILE_BASE + 2

PRECOMPILE_MODULE = "memjit"
PRECOMPILES = {"dot_i8i8": DOT_I8I8, "dot_i8u8": DOT_I8U8}
"""The only functions a worker may import (from the module ``"memjit"``), each of type
(i32 a, i32 b, i32 n) -> i32: the dot product of the n int8 at address a with the n int8
(dot_i8i8) or uint8 (dot_i8u8) at address b, accumulated in int32 (wrapping). Each is one row
of the VM and a run of rows in the AIR's tensor table (circuits/wasm_vm/tensor.py); wasmtime
charges 1 fuel for the call plus :func:`precompile_fuel`. memjit/workers/memjit.h wraps them."""
PRECOMPILE_MAX_BYTES = 4096
"""The longest operand one provable call takes (memjit.h splits longer products)."""


def precompile_fuel(n: int) -> int:
    """Fuel a precompile call adds to its call instruction's 1: one per 4 bytes of operand."""
    return (max(n, 0) + 3) // 4
N_COMPARE = 10
"""Binary op k (0-based within its width group) is a comparison iff k < N_COMPARE."""

# --- wasm codes -------------------------------------------------------------------------------

NUMERIC: dict[int, tuple[str, str, str]] = {}
"""Wasm code -> (name, operand types, result types) of the supported numeric instructions,
types spelled ``i`` (i32) and ``I`` (i64)."""


def _numeric_table() -> None:
    for k, name in enumerate(BINARY):
        if k < N_COMPARE:  # eq..ge_u at 0x46 (i32) and 0x51 (i64)
            NUMERIC[0x46 + k] = ("i32." + name, "ii", "i")
            NUMERIC[0x51 + k] = ("i64." + name, "II", "i")
        else:  # add..rotr at 0x6A (i32) and 0x7C (i64)
            NUMERIC[0x6A + k - N_COMPARE] = ("i32." + name, "ii", "i")
            NUMERIC[0x7C + k - N_COMPARE] = ("i64." + name, "II", "I")
    singles = {
        0x45: ("i32.eqz", "i", "i"), 0x50: ("i64.eqz", "I", "i"),
        0x67: ("i32.clz", "i", "i"), 0x68: ("i32.ctz", "i", "i"), 0x69: ("i32.popcnt", "i", "i"),
        0x79: ("i64.clz", "I", "I"), 0x7A: ("i64.ctz", "I", "I"), 0x7B: ("i64.popcnt", "I", "I"),
        0xA7: ("i32.wrap_i64", "I", "i"), 0xAC: ("i64.extend_i32_s", "i", "I"),
        0xAD: ("i64.extend_i32_u", "i", "I"), 0xC0: ("i32.extend8_s", "i", "i"),
        0xC1: ("i32.extend16_s", "i", "i"), 0xC2: ("i64.extend8_s", "I", "I"),
        0xC3: ("i64.extend16_s", "I", "I"), 0xC4: ("i64.extend32_s", "I", "I"),
    }
    NUMERIC.update(singles)


_numeric_table()

LOADS: dict[int, int] = {0x28 + i if i < 2 else 0x2C + i - 2: LOAD_BASE + i
                         for i in range(len(LOAD_OPS))}
"""Wasm code -> op id of the integer loads."""
STORES: dict[int, int] = {(0x36, 0x37, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E)[i]: STORE_BASE + i
                          for i in range(len(STORE_OPS))}
"""Wasm code -> op id of the integer stores."""

STRUCTURED = {0x00: "unreachable", 0x01: "nop", 0x02: "block", 0x03: "loop", 0x04: "if",
              0x05: "else", 0x0B: "end", 0x0C: "br", 0x0D: "br_if", 0x0E: "br_table",
              0x0F: "return", 0x10: "call", 0x11: "call_indirect", 0x1A: "drop",
              0x1B: "select", 0x1C: "select", 0x20: "local.get", 0x21: "local.set",
              0x22: "local.tee", 0x23: "global.get", 0x24: "global.set", 0x3F: "memory.size",
              0x40: "memory.grow", 0x41: "i32.const", 0x42: "i64.const"}
"""Wasm code -> name of the supported non-numeric, non-memory instructions."""


def _unsupported_table() -> dict[int, str]:
    names = {0x06: "try", 0x07: "catch", 0x08: "throw", 0x09: "rethrow", 0x0A: "throw_ref",
             0x12: "return_call", 0x13: "return_call_indirect", 0x14: "call_ref",
             0x15: "return_call_ref", 0x18: "delegate", 0x19: "catch_all", 0x1F: "try_table",
             0x25: "table.get", 0x26: "table.set", 0x2A: "f32.load", 0x2B: "f64.load",
             0x38: "f32.store", 0x39: "f64.store", 0x43: "f32.const", 0x44: "f64.const",
             0xD0: "ref.null", 0xD1: "ref.is_null", 0xD2: "ref.func", 0xD3: "ref.eq",
             0xD4: "ref.as_non_null", 0xD5: "br_on_null", 0xD6: "br_on_non_null"}
    for base, t in ((0x5B, "f32"), (0x61, "f64")):
        for k, n in enumerate(("eq", "ne", "lt", "gt", "le", "ge")):
            names[base + k] = f"{t}.{n}"
    for base, t in ((0x8B, "f32"), (0x99, "f64")):
        for k, n in enumerate(("abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt", "add",
                               "sub", "mul", "div", "min", "max", "copysign")):
            names[base + k] = f"{t}.{n}"
    conv = ("i32.trunc_f32_s", "i32.trunc_f32_u", "i32.trunc_f64_s", "i32.trunc_f64_u", None,
            None, "i64.trunc_f32_s", "i64.trunc_f32_u", "i64.trunc_f64_s", "i64.trunc_f64_u",
            "f32.convert_i32_s", "f32.convert_i32_u", "f32.convert_i64_s", "f32.convert_i64_u",
            "f32.demote_f64", "f64.convert_i32_s", "f64.convert_i32_u", "f64.convert_i64_s",
            "f64.convert_i64_u", "f64.promote_f32", "i32.reinterpret_f32",
            "i64.reinterpret_f64", "f32.reinterpret_i32", "f64.reinterpret_i64")
    for k, n in enumerate(conv):
        if n:
            names[0xA8 + k] = n
    misc = ("i32.trunc_sat_f32_s", "i32.trunc_sat_f32_u", "i32.trunc_sat_f64_s",
            "i32.trunc_sat_f64_u", "i64.trunc_sat_f32_s", "i64.trunc_sat_f32_u",
            "i64.trunc_sat_f64_s", "i64.trunc_sat_f64_u", "memory.init", "data.drop",
            "memory.copy", "memory.fill", "table.init", "elem.drop", "table.copy", "table.grow",
            "table.size", "table.fill")
    for k, n in enumerate(misc):
        names[0xFC00 | k] = n
    return names


UNSUPPORTED: dict[int, str] = _unsupported_table()
"""Wasm code -> name of valid WebAssembly instructions outside the provable subset."""
PREFIX_FAMILIES = {0xFB: "GC", 0xFC: "bulk-memory/saturating", 0xFD: "SIMD", 0xFE: "atomic"}
"""Prefix bytes whose sub-opcodes are all outside the subset (0xFC: those not in UNSUPPORTED)."""


def wasm_fuel(code: int) -> int:
    """Wasmtime's fuel cost of one original instruction: 0 for nop, drop, block, loop, end,
    else, unreachable and return, 1 for every other operator (measured on wasmtime 50).

    The tracer adds the dynamic part: one per function entry, and one per page that a
    successful ``memory.grow`` adds (a successful grow is also a fuel check point)."""
    return 0 if code in (0x01, 0x1A, 0x02, 0x03, 0x0B, 0x05, 0x00, 0x0F) else 1
