"""The provable subset: the integer WebAssembly MVP that memjit can trace and prove.

Module-level features are checked here (imports, value types, memories, tables, segments,
constant expressions); instructions outside the subset are refused while their function body
is decoded (:func:`memjit.runtime.wasm.decode.instructions`), which names the first one with its
function index and byte offset. Every refusal is an :class:`UnsupportedModule` (exit code 2).
"""

from __future__ import annotations

from memjit.errors import UnsupportedModule
from memjit.runtime.wasm.decode import ConstExpr, Import, Module
from memjit.runtime.wasm.opcodes import I32, I64, PRECOMPILE_MODULE, PRECOMPILES, VALTYPE_NAMES

MAX_TABLE = 1 << 16
"""Largest supported table: its entries become rows of the program ROM."""


def type_name(t: int) -> str:
    return VALTYPE_NAMES.get(t, f"0x{t:02x}")


def check_value_type(t: int, where: str) -> None:
    """Refuse any value type but i32 and i64."""
    if t not in (I32, I64):
        raise UnsupportedModule(f"unsupported value type {type_name(t)} in {where}")


def check_const_expr(e: ConstExpr, where: str) -> None:
    """Only ``i32.const``, ``i64.const`` or ``global.get`` alone are supported initialisers."""
    if len(e.instrs) != 1 or e.instrs[0][0] not in (0x41, 0x42, 0x23):
        raise UnsupportedModule(
            f"unsupported constant expression in {where} at offset {hex(e.offset)}")


def check_import(m: Module, imp: Import) -> None:
    """A worker may import memjit's precompiles (opcodes.PRECOMPILES), with their type, and
    nothing else."""
    if imp.kind == "function" and imp.module == PRECOMPILE_MODULE and imp.name in PRECOMPILES:
        t = m.types[imp.type_index] if imp.type_index < len(m.types) else None
        if t is not None and t.params == (I32, I32, I32) and t.results == (I32,):
            return
        raise UnsupportedModule(f"module imports {imp.module}.{imp.name} (at offset "
                                f"{hex(imp.offset)}) with a type other than (i32, i32, i32) -> i32")
    raise UnsupportedModule(
        f"module imports {imp.kind} {imp.module}.{imp.name} (at offset {hex(imp.offset)}); "
        f"workers may import only memjit's precompiles ({', '.join(PRECOMPILES)})")


def check_module(m: Module) -> None:
    """Refuse, with a precise message, every module-level feature outside the subset."""
    for imp in m.imports:
        check_import(m, imp)
    for i, t in enumerate(m.types):
        for v in t.params + t.results:
            check_value_type(v, f"type {i}")
        if len(t.results) > 1:
            raise UnsupportedModule(f"unsupported multi-value result in type {i}")
    if len(m.memories) > 1:
        raise UnsupportedModule("unsupported multiple memories")
    if len(m.tables) > 1:
        raise UnsupportedModule("unsupported multiple tables")
    for reftype, lim in m.tables:
        if reftype != 0x70:
            raise UnsupportedModule(f"unsupported table of {type_name(reftype)}")
        if lim.min > MAX_TABLE:
            raise UnsupportedModule(f"unsupported table size {lim.min} (at most {MAX_TABLE})")
    for i, g in enumerate(m.globals):
        check_value_type(g.valtype, f"global {i}")
        check_const_expr(g.init, f"global {i}")
    if m.start is not None:
        raise UnsupportedModule("unsupported start function")
    for i, e in enumerate(m.elements):
        if e.flags not in (0, 2):
            raise UnsupportedModule(
                f"unsupported element segment {i} form {e.flags} (passive, declarative or "
                "expression segments need reference types)")
        check_const_expr(e.offset, f"element segment {i}")
    for i, d in enumerate(m.datas):
        if d.mode != "active":
            raise UnsupportedModule(f"unsupported passive data segment {i} (bulk memory)")
        check_const_expr(d.offset, f"data segment {i}")
