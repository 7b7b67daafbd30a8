"""Validation: index spaces, constant expressions, and the operand-type check of every body.

The body check is the spec's validation algorithm (appendix "Validation Algorithm": an operand
stack of types plus a control stack, with a polymorphic stack after unconditional branches).
Besides accepting or rejecting (:class:`BadInput`), it annotates every instruction with the
exact operand-stack height before it and whether it is live (reachable by fallthrough or a
branch as far as the structure tells), which is what lowering needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from memjit.errors import BadInput, UnsupportedModule
from memjit.runtime.wasm.decode import MAX_PAGES, ConstExpr, FuncType, Instr, Module, instructions
from memjit.runtime.wasm.opcodes import I32, I64, LOAD_BASE, LOAD_OPS, LOADS, NUMERIC, STORE_BASE, \
    STORE_OPS, STORES, STRUCTURED
from memjit.runtime.wasm.subset import check_value_type, type_name

UNKNOWN = 0
"""Type of a value popped from the polymorphic stack of unreachable code."""
_TYPE_CHARS = {"i": I32, "I": I64}


@dataclass(frozen=True)
class Annotated:
    """An instruction with the operand-stack height before it (above the locals), in values and
    in 32-bit slots (an i64 takes two), liveness, and whether its operand of polymorphic type
    (``select``'s values) is an i64."""

    ins: Instr
    height: int
    live: bool
    slots: int = 0
    wide: bool = False


@dataclass(frozen=True)
class FunctionCode:
    """A validated function: its signature, local types (params first), annotated body and
    largest operand-stack height in slots."""

    index: int
    type: FuncType
    locals: tuple[int, ...]
    body: list[Annotated]
    max_slots: int


def invalid(what: str, at: int) -> BadInput:
    return BadInput(f"invalid module: {what} at offset {hex(at)}")


def func_type(m: Module, func: int) -> FuncType:
    """The type of function ``func`` (negative: an imported function, see
    Module.n_imported_funcs)."""
    if func < 0:
        return m.types[imported_funcs(m)[func].type_index]
    return m.types[m.funcs[func]]


def imported_funcs(m: Module) -> list:
    """The module's function imports, in index order."""
    return [i for i in m.imports if i.kind == "function"]


def block_results(m: Module, bt: object, at: int) -> tuple[int, ...]:
    """The result types of a block type; block parameters (multi-value) are unsupported."""
    if bt is None:
        return ()
    kind, value = bt  # type: ignore[misc]
    if kind == "v":
        check_value_type(value, f"block type at offset {hex(at)}")
        return (value,)
    if value >= len(m.types):
        raise invalid(f"unknown block type {value}", at)
    t = m.types[value]
    if t.params or len(t.results) > 1:
        raise UnsupportedModule(f"unsupported multi-value block type at offset {hex(at)}")
    return t.results


def const_value(m: Module, e: ConstExpr, expect: int, where: str) -> int:
    """Type-check an (already subset-checked) constant expression and evaluate it."""
    code, imm = e.instrs[0]
    if code == 0x23:
        if imm >= len(m.globals) or m.globals[imm].init is e:
            raise invalid(f"unknown global {imm} in {where}", e.offset)
        g = m.globals[imm]
        if g.mutable or any(x.init is e for x in m.globals[:imm]):
            raise invalid(f"constant expression in {where} reads a mutable or later global",
                          e.offset)
        if g.valtype != expect:
            raise invalid(f"type mismatch in {where}", e.offset)
        return const_value(m, g.init, expect, where)
    if (code == 0x41) != (expect == I32):
        raise invalid(f"type mismatch in {where}", e.offset)
    return imm


def validate_module(m: Module) -> None:
    """Check every index and constant expression outside function bodies."""
    n_funcs = len(m.funcs)
    for i, t in enumerate(m.funcs):
        if t >= len(m.types):
            raise BadInput(f"invalid module: function {i} has unknown type {t}")
    for lim in [t[1] for t in m.tables] + m.memories:
        if lim.max is not None and lim.max < lim.min:
            raise BadInput("invalid module: size minimum must not be greater than maximum")
    for lim in m.memories:
        if lim.min > MAX_PAGES or (lim.max or 0) > MAX_PAGES:
            raise BadInput("invalid module: memory size must be at most 65536 pages (4GiB)")
    for i, g in enumerate(m.globals):
        if g.init.instrs[0][0] == 0x23 and g.init.instrs[0][1] >= i:
            raise invalid(f"global {i} initialiser reads global {g.init.instrs[0][1]}",
                          g.init.offset)
        const_value(m, g.init, g.valtype, f"global {i}")
    names = set()
    for e in m.exports:
        if e.name in names:
            raise BadInput(f"invalid module: duplicate export name {e.name!r}")
        names.add(e.name)
        bound = {"function": n_funcs, "table": len(m.tables), "memory": len(m.memories),
                 "global": len(m.globals), "tag": 0}[e.kind]
        if e.index >= bound:
            raise BadInput(
                f"invalid module: export {e.name!r} refers to unknown {e.kind} {e.index}")
    for i, seg in enumerate(m.elements):
        if seg.table >= len(m.tables):
            raise invalid(f"element segment {i} refers to unknown table {seg.table}", seg.pos)
        const_value(m, seg.offset, I32, f"element segment {i}")
        for f in seg.funcs:
            if f is not None and f >= n_funcs:
                raise invalid(f"element segment {i} refers to unknown function {f}", seg.pos)
    for i, d in enumerate(m.datas):
        if d.memory >= len(m.memories):
            raise invalid(f"data segment {i} refers to unknown memory {d.memory}", d.pos)
        const_value(m, d.offset, I32, f"data segment {i}")


class _Frame:
    __slots__ = ("kind", "results", "height", "unreachable", "dead")

    def __init__(self, kind: str, results: tuple[int, ...], height: int, dead: bool) -> None:
        self.kind = kind
        self.results = results
        self.height = height
        self.unreachable = False
        self.dead = dead

    def labels(self) -> tuple[int, ...]:
        return () if self.kind == "loop" else self.results


def validate_function(m: Module, func: int) -> FunctionCode:
    """Decode and type-check one function body; refuse unsupported locals and instructions.
    Long on purpose: the spec's validation algorithm is one loop over the operand and control
    stacks with a case per instruction, and reads best as that loop."""
    ftype = func_type(m, func)
    body = m.bodies[func]
    for t in body.locals:
        check_value_type(t, f"locals of function {func}")
    local_types = ftype.params + body.locals
    vals: list[int] = []
    ctrls = [_Frame("func", ftype.results, 0, False)]
    out: list[Annotated] = []
    max_slots = 0
    at = body.start

    def pop(expect: int = UNKNOWN) -> int:
        frame = ctrls[-1]
        if len(vals) == frame.height:
            if frame.unreachable:
                return expect
            raise invalid("type mismatch: operand stack underflow", at)
        got = vals.pop()
        if expect != UNKNOWN and got != UNKNOWN and got != expect:
            raise invalid(
                f"type mismatch: expected {type_name(expect)}, found {type_name(got)}", at)
        return got if got != UNKNOWN else expect

    def pop_all(types: tuple[int, ...]) -> None:
        for t in reversed(types):
            pop(t)

    def label(depth: int) -> _Frame:
        if depth >= len(ctrls):
            raise invalid(f"unknown label {depth}", at)
        return ctrls[-1 - depth]

    def set_unreachable() -> None:
        del vals[ctrls[-1].height:]
        ctrls[-1].unreachable = True

    def pop_frame() -> _Frame:
        frame = ctrls[-1]
        pop_all(frame.results)
        if len(vals) != frame.height:
            raise invalid("type mismatch: values remaining on stack at end of block", at)
        return ctrls.pop()

    def check_memory(align: int, width: int) -> None:
        if not m.memories:
            raise invalid("unknown memory 0", at)
        if (1 << min(align, 64)) > width:
            raise invalid("alignment must not be larger than natural", at)

    for ins in instructions(m, func):
        if not ctrls:
            raise invalid("operators remaining after end of function", ins.offset)
        at, code, imm = ins.offset, ins.code, ins.imm
        frame = ctrls[-1]
        live = not (frame.unreachable or frame.dead)
        slots = len(vals) + vals.count(I64)
        wide = code in (0x1B, 0x1C) and len(vals) >= 2 and vals[-2] == I64
        out.append(Annotated(ins, len(vals), live, slots, wide))
        if code in NUMERIC:
            _, ins_types, res = NUMERIC[code]
            for c in reversed(ins_types):
                pop(_TYPE_CHARS[c])
            vals.append(_TYPE_CHARS[res])
        elif code in LOADS:
            _, width, _, wide = LOAD_OPS[LOADS[code] - LOAD_BASE]
            check_memory(imm[0], width)
            pop(I32)
            vals.append(I64 if wide else I32)
        elif code in STORES:
            _, width, wide = STORE_OPS[STORES[code] - STORE_BASE]
            check_memory(imm[0], width)
            pop(I64 if wide else I32)
            pop(I32)
        elif code == 0x20 or code == 0x21 or code == 0x22:
            if imm >= len(local_types):
                raise invalid(f"unknown local {imm}", at)
            if code != 0x20:
                pop(local_types[imm])
            if code != 0x21:
                vals.append(local_types[imm])
        elif code == 0x23 or code == 0x24:
            if imm >= len(m.globals):
                raise invalid(f"unknown global {imm}", at)
            g = m.globals[imm]
            if code == 0x23:
                vals.append(g.valtype)
            elif not g.mutable:
                raise invalid(f"global {imm} is immutable", at)
            else:
                pop(g.valtype)
        elif code == 0x41:
            vals.append(I32)
        elif code == 0x42:
            vals.append(I64)
        elif code in (0x02, 0x03, 0x04):
            results = block_results(m, imm, at)
            if code == 0x04:
                pop(I32)
            ctrls.append(_Frame(("block", "loop", "if")[code - 2], results, len(vals), not live))
        elif code == 0x05:
            if frame.kind != "if":
                raise invalid("else found outside an if block", at)
            pop_frame()
            ctrls.append(_Frame("else", frame.results, frame.height, frame.dead))
        elif code == 0x0B:
            if frame.kind == "if" and frame.results:
                raise invalid("type mismatch: if without else must not produce values", at)
            pop_frame()
            vals.extend(frame.results)
        elif code == 0x0C:
            pop_all(label(imm).labels())
            set_unreachable()
        elif code == 0x0D:
            pop(I32)
            types = label(imm).labels()
            pop_all(types)
            vals.extend(types)
        elif code == 0x0E:
            pop(I32)
            targets, default = imm
            arity = len(label(default).labels())
            for depth in targets:
                types = label(depth).labels()
                if len(types) != arity:
                    raise invalid("type mismatch in br_table target", at)
                pop_all(types)
                vals.extend(types)
            pop_all(label(default).labels())
            set_unreachable()
        elif code == 0x0F:
            pop_all(ftype.results)
            set_unreachable()
        elif code == 0x00:
            set_unreachable()
        elif code == 0x10:
            if not -m.n_imported_funcs <= imm < len(m.funcs):
                raise invalid(f"unknown function {imm + m.n_imported_funcs}", at)
            callee = func_type(m, imm)
            pop_all(callee.params)
            vals.extend(callee.results)
        elif code == 0x11:
            type_index, table = imm
            if table >= len(m.tables):
                raise invalid(f"unknown table {table}", at)
            if table != 0:
                raise UnsupportedModule(f"unsupported call_indirect through table {table}")
            if type_index >= len(m.types):
                raise invalid(f"unknown type {type_index}", at)
            pop(I32)
            pop_all(m.types[type_index].params)
            vals.extend(m.types[type_index].results)
        elif code == 0x1A:
            pop()
        elif code == 0x1B or code == 0x1C:
            pop(I32)
            if code == 0x1C:
                check_value_type(imm, f"select at offset {hex(at)}")
                pop(imm)
                pop(imm)
                vals.append(imm)
            else:
                t1, t2 = pop(), pop()
                if t1 != UNKNOWN and t2 != UNKNOWN and t1 != t2:
                    raise invalid("type mismatch in select", at)
                vals.append(t1 if t1 != UNKNOWN else t2)
        elif code == 0x3F or code == 0x40:
            if not m.memories:
                raise invalid("unknown memory 0", at)
            if code == 0x40:
                pop(I32)
            vals.append(I32)
        elif code != 0x01:
            raise AssertionError(f"unhandled instruction {STRUCTURED.get(code, hex(code))}")
        if live:
            max_slots = max(max_slots, len(vals) + vals.count(I64))
    if ctrls:
        raise invalid("function body must end with end", body.end)
    return FunctionCode(func, ftype, local_types, out, max_slots)
