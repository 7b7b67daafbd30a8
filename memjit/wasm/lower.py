"""Lowering: structured control flow to the flat, pc-addressed ROM of :mod:`.program`.

Walks each validated body once with a label stack (as wasmi and zkWasm translate): forward
branches are patched when their block ends, loop branches point back at the loop's first row;
every transfer gets its ``(target, drop, keep)`` from the static heights of validation. Dead
code (after an unconditional transfer, up to the end of its block) is not emitted.
"""

from __future__ import annotations

import numpy as np

from memjit.errors import UnsupportedModule
from memjit.wasm.decode import Module
from memjit.wasm.opcodes import BR, BR_ENTRY, BR_EQZ, BR_IF, BR_TABLE, CALL, CALL_INDIRECT, \
    GLOBAL_GET, GLOBAL_SET, I32, I32_CONST, I64, I64_CONST, LOADS, LOCAL_GET, LOCAL_SET, \
    LOCAL_TEE, MEMORY_GROW, MEMORY_SIZE, NOP, NUMERIC, OP, RETURN, SELECT, STORES, \
    TABLE_ENTRY, UNREACHABLE, wasm_fuel
from memjit.wasm.program import BUFFER_GLOBALS, PAGE, Program, Signature
from memjit.wasm.validate import FunctionCode, block_results, const_value

_TYPE_NAMES = {I32: "i32", I64: "i64"}
I32_CONST_CODE = 0x41  # the binary opcode of i32.const in a constant expression
_SIMPLE = {0x00: UNREACHABLE, 0x1B: SELECT, 0x1C: SELECT, 0x20: LOCAL_GET, 0x21: LOCAL_SET,
           0x22: LOCAL_TEE, 0x23: GLOBAL_GET, 0x24: GLOBAL_SET, 0x3F: MEMORY_SIZE,
           0x40: MEMORY_GROW}
_SIMPLE.update({code: OP[name] for code, (name, _, _) in NUMERIC.items()})


class _Rom:
    """Column lists under construction; ``emit`` returns the new row's pc."""

    def __init__(self) -> None:
        self.cols: dict[str, list[int]] = {k: [] for k in (
            "op", "imm", "arg1", "arg2", "arg3", "sh", "fuel", "func", "offset")}
        self.headers: set[int] = set()

    @property
    def pc(self) -> int:
        return len(self.cols["op"])

    def emit(self, op: int, sh: int, fuel: int, func: int, offset: int, imm: int = 0,
             arg1: int = 0, arg2: int = 0, arg3: int = 0) -> int:
        pc = self.pc
        for k, v in (("op", op), ("imm", imm), ("arg1", arg1), ("arg2", arg2), ("arg3", arg3),
                     ("sh", sh), ("fuel", fuel), ("func", func), ("offset", offset)):
            self.cols[k].append(v)
        return pc

    def set_target(self, pc: int, target: int) -> None:
        self.cols["arg1"][pc] = target


class _Label:
    __slots__ = ("kind", "height", "arity", "target", "fixups", "else_fixup")

    def __init__(self, kind: str, height: int, arity: int, target: int | None = None) -> None:
        self.kind = kind  # "func" | "block" | "loop" | "if"
        self.height = height  # operand height at entry (below the block's values)
        self.arity = arity  # values a branch to this label carries (0 for a loop)
        self.target = target  # known target pc (loops), else patched at the end
        self.fixups: list[int] = []  # rows whose arg1 becomes this label's target
        self.else_fixup: int | None = None  # the br_eqz of an if, until its else or end


def _lower_function(rom: _Rom, m: Module, fc: FunctionCode, canon: list[int]) -> None:
    """Append the rows of one function (calls get their entry pcs later, in :func:`lower`)."""
    f = fc.index
    nlocals = len(fc.locals)
    nres = len(fc.type.results)
    for j in range(len(fc.type.params), nlocals):  # zero the declared locals
        rom.emit(I64_CONST if fc.locals[j] == I64 else I32_CONST, j, 0, f, -1)
    labels = [_Label("func", 0, nres)]

    def transfer(depth: int, height: int) -> tuple[_Label, int, int]:
        """(label, drop, keep) of a branch to ``depth`` from operand height ``height``."""
        lab = labels[-1 - depth]
        drop = height - lab.arity - lab.height
        return lab, drop, lab.arity if drop else 0

    def ret(sh: int, cost: int, at: int) -> None:
        """A return from stack height ``sh``: the results move down to ``fp``."""
        drop = sh - nres
        rom.emit(RETURN, sh, cost, f, at, arg2=drop, arg3=nres if drop else 0)

    def to(lab: _Label, row: int) -> None:
        if lab.target is None:
            lab.fixups.append(row)
        else:
            rom.set_target(row, lab.target)

    prev = None
    for a in fc.body:
        ins, h, live = a.ins, a.height, a.live
        code, imm, at = ins.code, ins.imm, ins.offset
        sh = nlocals + h
        cost = wasm_fuel(code)
        if code == 0x40 and prev is not None and prev.code == 0x41:
            cost += static_grow_fuel(prev.imm)
        prev = ins
        if code in (0x02, 0x03, 0x04):  # block, loop, if
            arity = len(block_results(m, imm, at))
            if code == 0x04:
                lab = _Label("if", h - 1, arity)
                if live:
                    lab.else_fixup = rom.emit(BR_EQZ, sh, cost, f, at)
            elif code == 0x03:
                lab = _Label("loop", h, 0, rom.pc)
                if live:
                    rom.headers.add(rom.pc)
            else:
                lab = _Label("block", h, arity)
            labels.append(lab)
        elif code == 0x05:  # else: the then-branch jumps over the else-branch
            lab = labels[-1]
            if live:
                lab.fixups.append(rom.emit(BR, sh, cost, f, at))
            if lab.else_fixup is not None:
                rom.set_target(lab.else_fixup, rom.pc)
                lab.else_fixup = None
        elif code == 0x0B:  # end
            lab = labels.pop()
            if lab.kind == "loop" and lab.target == rom.pc and rom.pc in rom.headers:
                rom.emit(NOP, nlocals + lab.height, 0, f, at)  # an empty loop keeps its own pc
            if lab.kind == "func" and (live or lab.fixups):
                lab.target = rom.pc
                ret(nlocals + nres, cost, at)
            elif lab.kind != "loop":
                lab.target = rom.pc
            if lab.else_fixup is not None:
                rom.set_target(lab.else_fixup, rom.pc)
            for row in lab.fixups:
                rom.set_target(row, lab.target)
        elif not live or code in (0x01, 0x1A):  # dead code; nop and drop need no row
            continue
        elif code == 0x0C:  # br
            lab, drop, keep = transfer(imm, h)
            if lab.kind == "func":
                ret(sh, cost, at)
            else:
                to(lab, rom.emit(BR, sh, cost, f, at, arg2=drop, arg3=keep))
        elif code == 0x0D:  # br_if
            lab, drop, keep = transfer(imm, h - 1)
            to(lab, rom.emit(BR_IF, sh, cost, f, at, arg2=drop, arg3=keep))
        elif code == 0x0E:  # br_table
            targets, default = imm
            rom.emit(BR_TABLE, sh, cost, f, at, imm=len(targets))
            for i, depth in enumerate(targets + (default,)):
                lab, drop, keep = transfer(depth, h - 1)
                to(lab, rom.emit(BR_ENTRY, sh, 0, f, at, imm=i, arg2=drop, arg3=keep))
        elif code == 0x0F:  # return
            ret(sh, cost, at)
        elif code == 0x10:
            callee = m.types[m.funcs[imm]]
            rom.emit(CALL, sh, cost, f, at, imm=imm, arg2=len(callee.params),
                     arg3=len(callee.results))
        elif code == 0x11:
            t = m.types[imm[0]]
            rom.emit(CALL_INDIRECT, sh, cost, f, at, imm=canon[imm[0]], arg3=len(t.params))
        elif code == 0x41:
            rom.emit(I32_CONST, sh, cost, f, at, imm=imm & 0xFFFFFFFF)
        elif code == 0x42:
            rom.emit(I64_CONST, sh, cost, f, at, imm=imm)
        elif code in LOADS or code in STORES:
            align, offset = imm
            rom.emit(LOADS.get(code, STORES.get(code)), sh, cost, f, at, imm=offset, arg1=align)
        elif code in (0x20, 0x21, 0x22, 0x23, 0x24):
            rom.emit(_SIMPLE[code], sh, cost, f, at, imm=imm)
        else:
            rom.emit(_SIMPLE[code], sh, cost, f, at)


def static_grow_fuel(delta: int) -> int:
    """Fuel wasmtime folds into ``memory.grow`` when its operand is a constant ``i32.const``.

    Wasmtime charges one fuel per page a ``memory.grow`` requests. A constant request of at
    most 128 pages is charged at compile time, whether the growth succeeds or not; any other
    request is charged (and fuel checked) at run time, only when it succeeds (measured on
    wasmtime 50). The tracer charges the run-time part; this is the compile-time part.
    """
    pages = delta & 0xFFFFFFFF
    return pages if pages <= 128 else 0


def canonical_types(m: Module) -> list[int]:
    """Type index -> index of the first structurally equal type."""
    first: dict[object, int] = {}
    return [first.setdefault(t, i) for i, t in enumerate(m.types)]


def instantiation_fuel(m: Module) -> int:
    """Fuel wasmtime charges to instantiate, as the sandbox configures it (copy-on-write
    memory images off): 1 + sum(1 + len) over the active data segments, 0 without any
    (measured on wasmtime 50; element segments and globals cost nothing)."""
    datas = [d for d in m.datas if d.mode == "active"]
    return 1 + sum(1 + len(d.data) for d in datas) if datas else 0


def _buffer_address(m: Module, index: int, name: str) -> int:
    """The byte address held by the exported tensor-I/O global ``name`` (module-defined,
    immutable, an i32 constant: the address must not depend on execution)."""
    index -= sum(1 for i in m.imports if i.kind == "global")
    g = m.globals[index] if 0 <= index < len(m.globals) else None
    if g is None or g.mutable or g.valtype != I32 or len(g.init.instrs) != 1 \
            or g.init.instrs[0][0] != I32_CONST_CODE:
        raise UnsupportedModule(f"exported global {name!r} must be an immutable i32 constant "
                                f"(the address of the worker's {name.split('_')[1]} bytes)")
    return g.init.instrs[0][1] & 0xFFFFFFFF


def lower(m: Module, codes: list[FunctionCode]) -> Program:
    """Lower a validated, subset-checked module to its :class:`Program`."""
    canon = canonical_types(m)
    rom = _Rom()
    entries = []
    for fc in codes:
        entries.append(rom.pc)
        _lower_function(rom, m, fc, canon)
    for pc, op in enumerate(rom.cols["op"]):
        if op == CALL:
            rom.cols["arg1"][pc] = entries[rom.cols["imm"][pc]]

    init_trap = None
    table_size = m.tables[0][1].min if m.tables else 0
    table: list[int | None] = [None] * table_size
    for seg in m.elements:
        off = const_value(m, seg.offset, I32, "element segment") & 0xFFFFFFFF
        if off + len(seg.funcs) > table_size:
            init_trap = "table_out_of_bounds"
            break
        table[off:off + len(seg.funcs)] = seg.funcs
    table_base = rom.pc
    for i, fn in enumerate(table):
        if fn is None:
            rom.emit(TABLE_ENTRY, 0, 0, -1, -1, imm=-1, arg3=-1)
        else:
            t = m.types[m.funcs[fn]]
            rom.emit(TABLE_ENTRY, 0, 0, -1, -1, imm=fn, arg1=entries[fn], arg2=len(t.params),
                     arg3=canon[m.funcs[fn]])
    for pc, op in enumerate(rom.cols["op"]):
        if op == CALL_INDIRECT:
            rom.cols["arg1"][pc] = table_base
            rom.cols["arg2"][pc] = table_size

    mem_min = m.memories[0].min if m.memories else 0
    segments = []
    for d in m.datas:
        off = const_value(m, d.offset, I32, "data segment") & 0xFFFFFFFF
        if init_trap is None and off + len(d.data) > mem_min * PAGE:
            init_trap = "memory_out_of_bounds"
        segments.append((off, d.data))

    exports, buffers = {}, {}
    for e in m.exports:
        if e.kind == "global" and e.name in BUFFER_GLOBALS:
            buffers[e.name] = _buffer_address(m, e.index, e.name)
        if e.kind == "function":
            t = m.types[m.funcs[e.index]]
            exports[e.name] = Signature(e.index, tuple(_TYPE_NAMES[v] for v in t.params),
                                        tuple(_TYPE_NAMES[v] for v in t.results))
    c = rom.cols
    loop_header = np.zeros(rom.pc, dtype=np.uint8)
    loop_header[sorted(rom.headers)] = 1
    globals_init = [const_value(m, g.init, g.valtype, f"global {i}") & (
        0xFFFFFFFF if g.valtype == I32 else 0xFFFFFFFFFFFFFFFF) for i, g in enumerate(m.globals)]
    program = Program(
        op=np.array(c["op"], dtype=np.uint8),
        imm=np.array([v - (1 << 64) if v >= 1 << 63 else v for v in c["imm"]], dtype=np.int64),
        arg1=np.array(c["arg1"], dtype=np.int64),
        arg2=np.array(c["arg2"], dtype=np.int64),
        arg3=np.array(c["arg3"], dtype=np.int64),
        sh=np.array(c["sh"], dtype=np.int64),
        fuel=np.array(c["fuel"], dtype=np.uint8),
        loop_header=loop_header,
        func=np.array(c["func"], dtype=np.int32),
        offset=np.array(c["offset"], dtype=np.int64),
        func_entry=np.array(entries, dtype=np.int64),
        func_nparams=np.array([len(fc.type.params) for fc in codes], dtype=np.int64),
        func_nlocals=np.array([len(fc.locals) for fc in codes], dtype=np.int64),
        func_frame=np.array([len(fc.locals) + fc.max_height for fc in codes], dtype=np.int64),
        table_base=table_base,
        table_size=table_size,
        exports=exports,
        has_memory=bool(m.memories),
        mem_min=mem_min,
        mem_max=(m.memories[0].max if m.memories and m.memories[0].max is not None else 65536),
        data_segments=tuple(segments),
        globals_init=np.array(globals_init, dtype=np.uint64),
        globals_i64=np.array([g.valtype == I64 for g in m.globals], dtype=np.uint8),
        init_trap=init_trap,
        init_fuel=instantiation_fuel(m),
        buffers=buffers,
    )
    for value in vars(program).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)  # programs are cached and define verification keys
    return program
