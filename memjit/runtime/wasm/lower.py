"""Lowering: structured control flow to the flat, pc-addressed ROM of :mod:`.program`.

Walks each validated body once with a label stack (as wasmi and zkWasm translate): forward
branches are patched when their block ends, loop branches point back at the loop's first row;
every transfer gets its ``(target, drop, keep)`` from the static heights of validation. Dead
code (after an unconditional transfer, up to the end of its block) is not emitted.
"""

from __future__ import annotations

import numpy as np

from memjit.errors import UnsupportedModule
from memjit.runtime.wasm.decode import Module
from memjit.runtime.wasm import access, int64
from memjit.runtime.wasm.emit import Emitter, Label, Rom
from memjit.runtime.wasm.opcodes import BR, BR_ENTRY, BR_EQZ, BR_TABLE, BR_IF, CALL, CALL_INDIRECT, I32, \
    I32_CONST, I64, LOADS, LOCAL_SET, LOCAL_TEE, MEMORY_GROW, MEMORY_SIZE, NOP, NUMERIC, OP, \
    OP_NAMES, PRECOMPILES, RETURN, SELECT, STORES, TABLE_ENTRY, UNREACHABLE, wasm_fuel
from memjit.runtime.wasm.program import BUFFER_GLOBALS, PAGE, Program, Signature
from memjit.runtime.wasm.validate import FunctionCode, block_results, const_value, imported_funcs

_TYPE_NAMES = {I32: "i32", I64: "i64"}
I32_CONST_CODE = 0x41  # the binary opcode of i32.const in a constant expression
_SIMPLE = {0x00: (UNREACHABLE, 0), 0x1B: (SELECT, -2), 0x1C: (SELECT, -2), 0x3F: (MEMORY_SIZE, 1),
           0x40: (MEMORY_GROW, 0)}
_I64_BY_CONST = {code for code, (name, _, _) in NUMERIC.items()
                 if name in (*int64.SHIFTS, "i64.mul")}
"""i64 instructions with their own rows for a constant second operand."""


def _shift_reads_high(body: list, i: int) -> bool:
    """Whether the i64 that instruction ``i`` (a local.get or local.tee) leaves on the stack
    is shifted next by a constant whose expansion only reads its high word (shl, shr_u, shr_s
    by 1..31): the expansion then reads it from the local, 2 rows fewer."""
    if i + 2 >= len(body) or not (body[i + 1].live and body[i + 2].live):
        return False
    const, shift = body[i + 1].ins, body[i + 2].ins
    name = NUMERIC.get(shift.code, ("",))[0]
    return const.code == 0x42 and name in int64.HIGH_READ_SHIFTS and 1 <= const.imm & 63 <= 31


def slots(types: tuple[int, ...]) -> int:
    """32-bit stack slots the values take (an i64 takes two: low word, then high word)."""
    return len(types) + types.count(I64)


def slot_map(types: tuple[int, ...]) -> list[int]:
    """Index -> first slot of each value of a list of types (locals, globals)."""
    out, k = [], 0
    for t in types:
        out.append(k)
        k += 2 if t == I64 else 1
    return out


def _needs_scratch(fc: FunctionCode) -> bool:
    """Whether the function has an instruction whose expansion uses scratch locals (i64
    arithmetic, i64 loads and stores, an i64 select, under-aligned accesses)."""
    def expands(a) -> bool:
        access_op = OP_NAMES[LOADS.get(a.ins.code, STORES.get(a.ins.code, 0))]
        return access_op.startswith("i64") or (
            access_op in access.BYTES and access.under_aligned(access_op, a.ins.imm[0]))
    return any(a.wide or (a.ins.code in NUMERIC and "I" in "".join(NUMERIC[a.ins.code][1:]))
               or expands(a) for a in fc.body)


class _Label:
    __slots__ = ("kind", "height", "arity", "target", "fixups", "else_fixup")

    def __init__(self, kind: str, height: int, arity: int, target: int | None = None) -> None:
        self.kind = kind  # "func" | "block" | "loop" | "if"
        self.height = height  # operand height at entry in slots (below the block's values)
        self.arity = arity  # slots a branch to this label carries (0 for a loop)
        self.target = target  # known target pc (loops), else patched at the end
        self.fixups: list[int] = []  # rows whose arg1 becomes this label's target
        self.else_fixup: int | None = None  # the br_eqz of an if, until its else or end


def _lower_function(rom: Rom, m: Module, fc: FunctionCode, canon: list[int],
                    global_slot: list[int]) -> tuple[int, int]:
    """Append the rows of one function (calls get their entry pcs later, in :func:`lower`);
    returns its (local slots, frame slots). Long on purpose: one case per instruction family
    over the function's shared emitter and label state, in the order of the instruction set."""
    f = fc.index
    local_slot = slot_map(fc.locals)
    nlocals = slots(fc.locals)
    nscratch = int64.SCRATCH if _needs_scratch(fc) else 0
    base = nlocals + nscratch
    nres = slots(fc.type.results)
    for j in range(slots(fc.type.params), nlocals):  # zero the declared locals
        rom.emit(I32_CONST, j, 0, f, -1)
    e = Emitter(rom, f, base, nlocals, nscratch)
    labels = [_Label("func", 0, nres)]

    def transfer(depth: int, height: int) -> tuple[_Label, int, int]:
        """(label, drop, keep) of a branch to ``depth`` from operand height ``height``."""
        lab = labels[-1 - depth]
        drop = height - lab.arity - lab.height
        return lab, drop, lab.arity if drop else 0

    def carry2(dst: int, drop: int) -> None:
        """Move the two slots on top down to local slots dst, dst + 1 (``drop`` slots below
        them die): the VM's transfers carry at most one slot."""
        if drop >= 2:
            e.set(dst + 1), e.set(dst)
        else:  # the high word would overwrite the low one: copy the low word up first
            e.get(dst + 1), e.set(dst), e.set(dst + 1)

    def ret() -> None:
        """A return: the results move down to ``fp``."""
        drop = base + e.h - nres
        if nres == 2 and drop:
            carry2(0, drop)
            drop = 0
        e.row(RETURN, 0, arg2=drop, arg3=nres if drop else 0)

    def to(lab: _Label, row: int) -> None:
        if lab.target is None:
            lab.fixups.append(row)
        else:
            rom.set_target(row, lab.target)

    def branch(lab: _Label, drop: int, keep: int) -> None:
        """An unconditional branch to ``lab`` (the operands are on top)."""
        if lab.kind == "func":
            ret()
        elif keep == 2:
            carry2(base + lab.height, drop)
            to(lab, e.row(BR, 0))
        else:
            to(lab, e.row(BR, 0, arg2=drop, arg3=keep))

    body = fc.body
    skip_const = False
    high: int | None = None  # the local holding the high word of the i64 a shift reads
    for i, a in enumerate(body):
        ins, live = a.ins, a.live
        code, imm, at = ins.code, ins.imm, ins.offset
        cost = wasm_fuel(code)
        if code == 0x40 and i and body[i - 1].ins.code == 0x41:
            cost += static_grow_fuel(body[i - 1].ins.imm)
        if skip_const:  # an i64.const folded into the shift after it: charge its fuel here
            cost += wasm_fuel(0x42)
        e.start(at, a.slots, cost)
        if code in (0x02, 0x03, 0x04):  # block, loop, if
            arity = slots(block_results(m, imm, at))
            if code == 0x04:
                lab = _Label("if", a.slots - 1, arity)
                if live:
                    lab.else_fixup = e.row(BR_EQZ, -1)
            elif code == 0x03:
                lab = _Label("loop", a.slots, 0, rom.pc)
                if live:
                    rom.headers.add(rom.pc)
            else:
                lab = _Label("block", a.slots, arity)
            labels.append(lab)
        elif code == 0x05:  # else: the then-branch jumps over the else-branch
            lab = labels[-1]
            if live:
                lab.fixups.append(e.row(BR, 0))
            if lab.else_fixup is not None:
                rom.set_target(lab.else_fixup, rom.pc)
                lab.else_fixup = None
        elif code == 0x0B:  # end
            lab = labels.pop()
            if lab.kind == "loop" and lab.target == rom.pc and rom.pc in rom.headers:
                rom.emit(NOP, base + lab.height, 0, f, at)  # an empty loop keeps its own pc
            if lab.kind == "func" and (live or lab.fixups):
                lab.target = rom.pc
                e.start(at, nres, cost)
                ret()
            elif lab.kind != "loop":
                lab.target = rom.pc
            if lab.else_fixup is not None:
                rom.set_target(lab.else_fixup, rom.pc)
            for row in lab.fixups:
                rom.set_target(row, lab.target)
        elif not live or code in (0x01, 0x1A):  # dead code; nop and drop need no row
            continue
        elif code == 0x0C:  # br
            branch(*transfer(imm, a.slots))
        elif code == 0x0D:  # br_if
            lab, drop, keep = transfer(imm, a.slots - 1)
            if lab.kind == "func" or keep == 2:
                skip = Label()
                e.br_eqz(skip)
                branch(lab, drop, keep)
                e.place(skip)
            else:
                to(lab, e.row(BR_IF, -1, arg2=drop, arg3=keep))
        elif code == 0x0E:  # br_table
            targets, default = imm
            e.row(BR_TABLE, -1, imm=len(targets))
            moves = []
            for k, depth in enumerate(targets + (default,)):
                lab, drop, keep = transfer(depth, e.h)
                if lab.kind == "func" or keep == 2:  # through a stub after the entries
                    moves.append((rom.emit(BR_ENTRY, base + a.slots, 0, f, at, imm=k), lab, drop,
                                  keep))
                else:
                    to(lab, rom.emit(BR_ENTRY, base + a.slots, 0, f, at, imm=k, arg2=drop,
                                     arg3=keep))
            h = e.h
            for entry, lab, drop, keep in moves:
                rom.set_target(entry, rom.pc)
                e.h = h
                branch(lab, drop, keep)
        elif code == 0x0F:  # return
            ret()
        elif code == 0x10 and imm < 0:  # a precompile (subset.check_import): one row
            e.row(PRECOMPILES[imported_funcs(m)[imm].name], -2)
        elif code == 0x10:
            callee = m.types[m.funcs[imm]]
            e.row(CALL, 0, imm=imm, arg2=slots(callee.params), arg3=slots(callee.results))
        elif code == 0x11:
            t = m.types[imm[0]]
            e.row(CALL_INDIRECT, 0, imm=canon[imm[0]], arg3=slots(t.params))
        elif code == 0x41:
            e.const(imm)
        elif code == 0x42:
            nxt = body[i + 1] if i + 1 < len(body) else None
            if nxt is not None and nxt.live and nxt.ins.code in _I64_BY_CONST:
                skip_const = True  # the shift or product by a constant emits its own rows
                continue
            int64.const(e, imm)
        elif code in LOADS or code in STORES:
            (align, offset), load_ = imm, code in LOADS
            op = LOADS[code] if load_ else STORES[code]
            if OP_NAMES[op].startswith("i64"):
                (int64.load if load_ else int64.store)(e, OP_NAMES[op], offset, align)
            else:
                (access.load if load_ else access.store)(e, OP_NAMES[op], offset, align)
        elif code in (0x20, 0x21, 0x22):
            slot, wide = local_slot[imm], fc.locals[imm] == I64
            if code == 0x20:
                e.get(slot)
                if wide and _shift_reads_high(body, i):
                    high = slot + 1
                elif wide:
                    e.get(slot + 1)
            elif wide:
                e.set(slot + 1)
                e.set(slot) if code == 0x21 else e.tee(slot)
                if code == 0x22 and _shift_reads_high(body, i):
                    high = slot + 1
                elif code == 0x22:
                    e.get(slot + 1)
            else:
                e.row(LOCAL_SET if code == 0x21 else LOCAL_TEE, -1 if code == 0x21 else 0,
                      imm=slot)
        elif code in (0x23, 0x24):
            slot, wide = global_slot[imm], m.globals[imm].valtype == I64
            if code == 0x23:
                e.global_get(slot)
                if wide:
                    e.global_get(slot + 1)
            else:
                if wide:
                    e.global_set(slot + 1)
                e.global_set(slot)
        elif code in (0x1B, 0x1C) and a.wide:
            int64.select(e)
        elif code in _SIMPLE:
            e.row(*_SIMPLE[code])
        else:
            name = NUMERIC[code][0]
            if skip_const:
                e.pop(2)  # the amount was never pushed
                int64.by_const(e, name, body[i - 1].ins.imm, high)
                high = None
            elif name in int64.NUMERIC:
                int64.NUMERIC[name](e)
            else:
                e.row(OP[name], -1 if len(NUMERIC[code][1]) == 2 else 0)
        if e.cost and live:  # an instruction that needs no row (i32.wrap_i64) still costs its fuel
            e.row(NOP, 0)
        skip_const = False
    return nlocals, base + fc.max_slots


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
    rom = Rom()
    global_slot = slot_map(tuple(g.valtype for g in m.globals))
    entries, frames = [], []
    for fc in codes:
        entries.append(rom.pc)
        frames.append(_lower_function(rom, m, fc, canon, global_slot))
    for pc, op in enumerate(rom.cols["op"]):
        if op == CALL:
            rom.cols["arg1"][pc] = entries[rom.cols["imm"][pc]]

    init_trap = init_fault = None
    table_size = m.tables[0][1].min if m.tables else 0
    table: list[int | None] = [None] * table_size
    for i, seg in enumerate(m.elements):
        off = const_value(m, seg.offset, I32, "element segment") & 0xFFFFFFFF
        if off + len(seg.funcs) > table_size:
            init_trap = "table_out_of_bounds"
            init_fault = (f"element segment {i} ({len(seg.funcs)} entries at {off}) lies outside "
                          f"the table of {table_size} entries")
            break
        table[off:off + len(seg.funcs)] = seg.funcs
    table_base = rom.pc
    for i, fn in enumerate(table):
        if fn is None:
            rom.emit(TABLE_ENTRY, 0, 0, -1, -1, imm=-1, arg3=-1)
        else:
            t = m.types[m.funcs[fn]]
            rom.emit(TABLE_ENTRY, 0, 0, -1, -1, imm=fn, arg1=entries[fn], arg2=slots(t.params),
                     arg3=canon[m.funcs[fn]])
    for pc, op in enumerate(rom.cols["op"]):
        if op == CALL_INDIRECT:
            rom.cols["arg1"][pc] = table_base
            rom.cols["arg2"][pc] = table_size

    mem_min = m.memories[0].min if m.memories else 0
    segments = []
    for i, d in enumerate(m.datas):
        off = const_value(m, d.offset, I32, "data segment") & 0xFFFFFFFF
        if init_trap is None and off + len(d.data) > mem_min * PAGE:
            init_trap = "memory_out_of_bounds"
            init_fault = (f"data segment {i} ({len(d.data)} bytes at {off}) lies outside the "
                          f"initial memory of {mem_min * PAGE} bytes")
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
    globals_init = []  # 32-bit words: an i64 global is two (low, then high)
    for i, g in enumerate(m.globals):
        value = const_value(m, g.init, g.valtype, f"global {i}")
        globals_init += [value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF][:1 + (g.valtype == I64)]
    program = Program(
        op=np.array(c["op"], dtype=np.uint8),
        imm=np.array(c["imm"], dtype=np.int64),
        arg1=np.array(c["arg1"], dtype=np.int64),
        arg2=np.array(c["arg2"], dtype=np.int64),
        arg3=np.array(c["arg3"], dtype=np.int64),
        sh=np.array(c["sh"], dtype=np.int64),
        fuel=np.array(c["fuel"], dtype=np.uint8),
        loop_header=loop_header,
        func=np.array(c["func"], dtype=np.int32),
        offset=np.array(c["offset"], dtype=np.int64),
        func_entry=np.array(entries, dtype=np.int64),
        func_nparams=np.array([slots(fc.type.params) for fc in codes], dtype=np.int64),
        func_nlocals=np.array([n for n, _ in frames], dtype=np.int64),
        func_frame=np.array([frame for _, frame in frames], dtype=np.int64),
        table_base=table_base,
        table_size=table_size,
        exports=exports,
        has_memory=bool(m.memories),
        mem_min=mem_min,
        mem_max=(m.memories[0].max if m.memories and m.memories[0].max is not None else 65536),
        data_segments=tuple(segments),
        globals_init=np.array(globals_init, dtype=np.uint64),
        init_trap=init_trap,
        init_fault=init_fault,
        init_fuel=instantiation_fuel(m),
        buffers=buffers,
    )
    for value in vars(program).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)  # programs are cached and define verification keys
    return program
