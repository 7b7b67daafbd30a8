"""Binary decoder for WebAssembly modules: sections, LEB128, function bodies, instructions.

Structural validation only (section order and sizes, counts, index spaces of the binary format,
UTF-8 names, well-formed immediates); typing is :mod:`memjit.runtime.wasm.validate`'s job. Malformed
input raises :class:`BadInput` naming the byte offset; recognised WebAssembly features outside
the provable subset whose encoding cannot be skipped (GC types, tags, SIMD, ...) raise
:class:`UnsupportedModule` as soon as they are met.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

from memjit.errors import BadInput, UnsupportedModule
from memjit.runtime.wasm.opcodes import LOADS, NUMERIC, PREFIX_FAMILIES, STORES, STRUCTURED, \
    UNSUPPORTED, VALTYPE_NAMES

MAGIC = b"\0asm\x01\0\0\0"
MAX_PAGES = 65536
MAX_LOCALS = 50_000
"""Locals per function (wasmtime's limit too)."""

_GC_VALTYPES = {0x63, 0x64, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x71, 0x72, 0x73, 0x74}
_SECTION_RANK = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12,
                 11: 13}
_SECTION_NAMES = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
                  6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data",
                  12: "data count", 13: "tag"}
EXTERN_KINDS = ("function", "table", "memory", "global", "tag")


@dataclass(frozen=True)
class FuncType:
    """A function signature; value types as their binary bytes (0x7F i32, 0x7E i64, ...)."""

    params: tuple[int, ...]
    results: tuple[int, ...]


@dataclass(frozen=True)
class SizeLimits:
    """Table or memory limits (pages for memories); ``flags`` keeps the raw limits byte."""

    min: int
    max: int | None
    flags: int = 0


@dataclass(frozen=True)
class Import:
    """One import; ``offset`` is where its entry starts in the module bytes."""

    module: str
    name: str
    kind: str
    offset: int
    type_index: int | None = None  # a function import's type


@dataclass(frozen=True)
class ConstExpr:
    """A constant expression as its instructions ``(code, immediate)`` before the final end."""

    instrs: tuple[tuple[int, int], ...]
    offset: int


@dataclass(frozen=True)
class Global:
    valtype: int
    mutable: bool
    init: ConstExpr


@dataclass(frozen=True)
class Export:
    name: str
    kind: str
    index: int


@dataclass(frozen=True)
class ElemSegment:
    """An element segment; ``funcs`` holds function indices (``None`` for a null entry)."""

    flags: int
    mode: str  # "active" | "passive" | "declarative"
    table: int
    offset: ConstExpr | None
    funcs: tuple[int | None, ...]
    pos: int


@dataclass(frozen=True)
class DataSegment:
    mode: str  # "active" | "passive"
    memory: int
    offset: ConstExpr | None
    data: bytes
    pos: int


@dataclass(frozen=True)
class Body:
    """A function body: declared local types (expanded) and the span of its instructions."""

    locals: tuple[int, ...]
    start: int
    end: int


@dataclass
class Module:
    """A decoded module; every index space holds only this module's definitions plus imports."""

    data: bytes
    types: list[FuncType]
    imports: list[Import]
    funcs: list[int]
    tables: list[tuple[int, SizeLimits]]
    memories: list[SizeLimits]
    globals: list[Global]
    exports: list[Export]
    start: int | None
    elements: list[ElemSegment]
    data_count: int | None
    bodies: list[Body]
    datas: list[DataSegment]
    customs: list[tuple[str, bytes]]

    @property
    def n_imported_funcs(self) -> int:
        """Imported functions (the precompiles a worker may import): they come first in the
        function index space, so every function index of this module is shifted down by
        their count (exports, elements, start; a call to an import has a negative index)."""
        return sum(1 for i in self.imports if i.kind == "function")


class Reader:
    """A cursor over ``data[pos:end]`` with LEB128 and the binary format's basic encodings."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def fail(self, what: str, at: int | None = None) -> BadInput:
        """A BadInput naming ``what`` and the byte offset (default: the cursor)."""
        return BadInput(f"malformed module: {what} at offset {hex(self.pos if at is None else at)}")

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise self.fail("unexpected end")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uleb(self, bits: int) -> int:
        start, result, shift = self.pos, 0, 0
        nbytes = (bits + 6) // 7
        for i in range(nbytes):
            b = self.byte()
            if i == nbytes - 1:
                if b & 0x80:
                    raise self.fail("integer representation too long", start)
                if b >> (bits - 7 * i):
                    raise self.fail("integer too large", start)
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def sleb(self, bits: int) -> int:
        start, result, shift = self.pos, 0, 0
        nbytes = (bits + 6) // 7
        for i in range(nbytes):
            b = self.byte()
            if i == nbytes - 1:
                if b & 0x80:
                    raise self.fail("integer representation too long", start)
                valid = bits - 7 * i  # payload bits that carry the value in this last byte
                rest = (b & 0x7F) >> (valid - 1)
                if rest not in (0, 0x7F >> (valid - 1)):
                    raise self.fail("integer too large", start)
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    result -= 1 << shift
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def u32(self) -> int:
        return self.uleb(32)

    def count(self, min_item_size: int = 1) -> int:
        """A vector length, bounded by the bytes left so that no huge allocation can follow."""
        at = self.pos
        n = self.u32()
        if n * min_item_size > self.end - self.pos:
            raise self.fail(f"vector length {n} exceeds the remaining bytes", at)
        return n

    def name(self) -> str:
        at = self.pos
        raw = self.take(self.count())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("malformed UTF-8 name", at) from None

    def valtype(self) -> int:
        at = self.pos
        b = self.byte()
        if b in VALTYPE_NAMES:
            return b
        if b in _GC_VALTYPES:
            raise UnsupportedModule(
                f"unsupported reference value type 0x{b:02x} at offset {hex(at)}")
        raise self.fail(f"invalid value type 0x{b:02x}", at)

    def limits(self, memory: bool) -> SizeLimits:
        at = self.pos
        flags = self.byte()
        if memory and flags in (0x02, 0x03):
            raise UnsupportedModule(f"unsupported shared memory (threads) at offset {hex(at)}")
        if memory and 0x04 <= flags <= 0x0F:
            raise UnsupportedModule(
                f"unsupported memory64/custom-page-size memory at offset {hex(at)}")
        if flags not in (0x00, 0x01):
            raise self.fail(f"invalid limits flags 0x{flags:02x}", at)
        lo = self.u32()
        hi = self.u32() if flags == 0x01 else None
        return SizeLimits(lo, hi, flags)

    def const_expr(self) -> ConstExpr:
        """A constant expression up to its ``end``; only its syntax is checked here."""
        at = self.pos
        instrs: list[tuple[int, int]] = []
        while True:
            op_at = self.pos
            code = self.byte()
            if code == 0x0B:
                return ConstExpr(tuple(instrs), at)
            if code == 0x41:
                instrs.append((code, self.sleb(32)))
            elif code == 0x42:
                instrs.append((code, self.sleb(64)))
            elif code in (0x23, 0xD2):  # global.get, ref.func
                instrs.append((code, self.u32()))
            elif code == 0x43:
                instrs.append((code, int.from_bytes(self.take(4), "little")))
            elif code == 0x44:
                instrs.append((code, int.from_bytes(self.take(8), "little")))
            elif code == 0xD0:  # ref.null heaptype
                instrs.append((code, self.sleb(33)))
            elif code in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
                instrs.append((code, 0))
            else:
                raise self.fail(f"invalid instruction 0x{code:02x} in constant expression", op_at)


@dataclass(frozen=True)
class Instr:
    """One decoded instruction: wasm code, immediate(s), and its offset in the module bytes.

    Immediates by instruction: blocks -> block type (``None`` empty, ``("v", valtype)`` or
    ``("t", type index)``); br/br_if -> label depth; br_table -> ``(labels tuple, default)``;
    call -> function index; call_indirect -> ``(type index, table index)``; local/global ->
    index; loads/stores -> ``(align, offset)``; consts -> value (signed); select t -> valtype.
    """

    code: int
    imm: object
    offset: int


def _blocktype(r: Reader) -> object:
    at = r.pos
    b = r.data[r.pos] if r.pos < r.end else None
    if b == 0x40:
        r.pos += 1
        return None
    if b in VALTYPE_NAMES:
        r.pos += 1
        return ("v", b)
    if b in _GC_VALTYPES:
        raise UnsupportedModule(f"unsupported reference block type at offset {hex(at)}")
    idx = r.sleb(33)
    if idx < 0:
        raise r.fail("invalid block type", at)
    return ("t", idx)


def instructions(module: Module, func: int) -> Iterator[Instr]:
    """Decode the body of function ``func`` of a module without imports.

    Raises :class:`UnsupportedModule` at the first instruction outside the provable subset,
    naming it with the function index and byte offset.
    """
    body = module.bodies[func]
    r = Reader(module.data, body.start, body.end)
    while r.pos < r.end:
        at = r.pos
        code = r.byte()
        if code in PREFIX_FAMILIES:
            sub = r.u32()
            name = UNSUPPORTED.get(0xFC00 | sub) if code == 0xFC else None
            name = name or f"{PREFIX_FAMILIES[code]} instruction 0x{code:02x} {sub}"
            raise UnsupportedModule(
                f"unsupported instruction {name} in function {func} at offset {hex(at)}")
        if code in NUMERIC or code in (0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B):
            yield Instr(code, None, at)
        elif code in LOADS or code in STORES:
            align = r.u32()
            if align & 0x40:  # multi-memory encoding: explicit memory index
                mem = r.u32()
                align &= ~0x40
                if mem != 0:
                    raise UnsupportedModule(
                        f"unsupported multi-memory access in function {func} at offset {hex(at)}")
            yield Instr(code, (align, r.u32()), at)
        elif code in (0x02, 0x03, 0x04):
            yield Instr(code, _blocktype(r), at)
        elif code == 0x10:  # imported functions first: a negative index names one
            yield Instr(code, r.u32() - module.n_imported_funcs, at)
        elif code in (0x0C, 0x0D, 0x20, 0x21, 0x22, 0x23, 0x24):
            yield Instr(code, r.u32(), at)
        elif code == 0x0E:
            labels = tuple(r.u32() for _ in range(r.count()))
            yield Instr(code, (labels, r.u32()), at)
        elif code == 0x11:
            yield Instr(code, (r.u32(), r.u32()), at)
        elif code in (0x3F, 0x40):
            mem_at = r.pos
            if r.u32() != 0:
                raise UnsupportedModule(
                    f"unsupported multi-memory {STRUCTURED[code]} in function {func} "
                    f"at offset {hex(mem_at)}")
            yield Instr(code, None, at)
        elif code == 0x41:
            yield Instr(code, r.sleb(32), at)
        elif code == 0x42:
            yield Instr(code, r.sleb(64), at)
        elif code == 0x1C:
            n_at = r.pos
            if r.u32() != 1:
                raise r.fail("typed select must name exactly one type", n_at)
            yield Instr(code, r.valtype(), at)
        elif code in UNSUPPORTED:
            raise UnsupportedModule(f"unsupported instruction {UNSUPPORTED[code]} in function "
                                    f"{func} at offset {hex(at)}")
        else:
            raise r.fail(f"unknown opcode 0x{code:02x}", at)


def decode_module(data: bytes) -> Module:
    """Decode the sections of a binary module (function bodies are split, not decoded)."""
    if not isinstance(data, (bytes, bytearray)):
        raise BadInput("module must be bytes")
    data = bytes(data)
    if len(data) < 8 or data[:4] != MAGIC[:4]:
        raise BadInput("malformed module: missing the \\0asm magic header")
    if data[4:8] != MAGIC[4:]:
        raise BadInput("malformed module: unsupported binary version (expected 1)")
    m = Module(data, [], [], [], [], [], [], [], None, [], None, [], [], [])
    r = Reader(data, 8)
    last_rank = 0
    func_count: int | None = None
    while r.pos < r.end:
        sec_at = r.pos
        sid = r.byte()
        size = r.u32()
        if size > r.end - r.pos:
            raise r.fail(f"section size {size} exceeds the module", sec_at)
        s = Reader(data, r.pos, r.pos + size)
        r.pos += size
        if sid == 0:
            m.customs.append((s.name(), data[s.pos:s.end]))
            continue
        if sid not in _SECTION_RANK:
            raise s.fail(f"unknown section id {sid}", sec_at)
        if _SECTION_RANK[sid] <= last_rank:
            raise s.fail(f"{_SECTION_NAMES[sid]} section out of order or duplicated", sec_at)
        last_rank = _SECTION_RANK[sid]
        if sid == 13:
            raise UnsupportedModule(
                f"unsupported tag section (exception handling) at offset {hex(sec_at)}")
        if sid == 3:
            func_count = s.count()
        _SECTION_READERS[sid](s, m, func_count)
        if s.pos != s.end:
            raise s.fail(f"{_SECTION_NAMES[sid]} section size mismatch", s.pos)
    n_funcs = 0 if func_count is None else func_count
    if len(m.bodies) != n_funcs:
        raise BadInput(f"malformed module: function and code section have inconsistent lengths "
                       f"({n_funcs} != {len(m.bodies)})")
    if m.data_count is not None and m.data_count != len(m.datas):
        raise BadInput("malformed module: data count and data section have inconsistent lengths")
    _shift_function_indices(m)
    return m


def _shift_function_indices(m: Module) -> None:
    """Number functions from the module's first definition (see Module.n_imported_funcs);
    an export, element or start naming an imported function is refused."""
    k = m.n_imported_funcs
    if not k:
        return

    def shifted(index: int, where: str) -> int:
        if index < k:
            raise UnsupportedModule(f"{where} names an imported function; a precompile may "
                                    "only be called directly")
        return index - k

    m.exports[:] = [replace(e, index=shifted(e.index, f"export {e.name!r}"))
                    if e.kind == "function" else e for e in m.exports]
    m.elements[:] = [replace(seg, funcs=tuple(None if f is None else shifted(f, "an element")
                                              for f in seg.funcs)) for seg in m.elements]
    if m.start is not None:
        m.start = shifted(m.start, "the start function")


def _types(s: Reader, m: Module, _: int | None) -> None:
    for _ in range(s.count()):
        at = s.pos
        form = s.byte()
        if form in (0x4E, 0x50, 0x4F, 0x5E, 0x5F):
            raise UnsupportedModule(f"unsupported GC type definition at offset {hex(at)}")
        if form != 0x60:
            raise s.fail(f"invalid type form 0x{form:02x}", at)
        params = tuple(s.valtype() for _ in range(s.count()))
        results = tuple(s.valtype() for _ in range(s.count()))
        m.types.append(FuncType(params, results))


def _imports(s: Reader, m: Module, _: int | None) -> None:
    for _ in range(s.count()):
        at = s.pos
        mod, name = s.name(), s.name()
        kind_at = s.pos
        kind = s.byte()
        type_index = None
        if kind == 0:
            type_index = s.u32()
        elif kind == 1:
            s.valtype()
            s.limits(memory=False)
        elif kind == 2:
            s.limits(memory=True)
        elif kind == 3:
            s.valtype()
            s.byte()
        elif kind == 4:
            s.byte()
            s.u32()
        else:
            raise s.fail(f"invalid import kind {kind}", kind_at)
        m.imports.append(Import(mod, name, EXTERN_KINDS[kind], at, type_index))


def _functions(s: Reader, m: Module, count: int | None) -> None:
    m.funcs.extend(s.u32() for _ in range(count or 0))


def _tables(s: Reader, m: Module, _: int | None) -> None:
    for _ in range(s.count()):
        at = s.pos
        if s.data[s.pos:s.pos + 2] == b"\x40\x00":
            raise UnsupportedModule(f"unsupported table with initializer at offset {hex(at)}")
        t = s.valtype()
        m.tables.append((t, s.limits(memory=False)))


def _memories(s: Reader, m: Module, _: int | None) -> None:
    m.memories.extend(s.limits(memory=True) for _ in range(s.count()))


def _globals(s: Reader, m: Module, _: int | None) -> None:
    for _ in range(s.count()):
        t = s.valtype()
        at = s.pos
        mut = s.byte()
        if mut not in (0, 1):
            raise s.fail(f"invalid global mutability 0x{mut:02x}", at)
        m.globals.append(Global(t, bool(mut), s.const_expr()))


def _exports(s: Reader, m: Module, _: int | None) -> None:
    for _ in range(s.count()):
        name = s.name()
        at = s.pos
        kind = s.byte()
        if kind > 4:
            raise s.fail(f"invalid export kind {kind}", at)
        m.exports.append(Export(name, EXTERN_KINDS[kind], s.u32()))


def _start(s: Reader, m: Module, _: int | None) -> None:
    m.start = s.u32()


def _elements(s: Reader, m: Module, _: int | None) -> None:
    for _ in range(s.count()):
        at = s.pos
        flags = s.u32()
        if flags > 7:
            raise s.fail(f"invalid element segment flags {flags}", at)
        mode = ("active", "passive", "active", "declarative")[flags & 3]
        table = s.u32() if flags & 3 == 2 else 0
        offset = s.const_expr() if mode == "active" else None
        if flags & 3:  # explicit element kind / reference type
            kind_at = s.pos
            if flags & 4:
                s.valtype()
            elif s.byte() != 0x00:
                raise s.fail("invalid element kind", kind_at)
        funcs: list[int | None] = []
        for _ in range(s.count()):
            if flags & 4:
                e = s.const_expr()
                funcs.append(e.instrs[0][1] if e.instrs and e.instrs[0][0] == 0xD2 else None)
            else:
                funcs.append(s.u32())
        m.elements.append(ElemSegment(flags, mode, table, offset, tuple(funcs), at))


def _data_count(s: Reader, m: Module, _: int | None) -> None:
    m.data_count = s.u32()


def _code(s: Reader, m: Module, count: int | None) -> None:
    n = s.count()
    for _ in range(n):
        size = s.u32()
        if size > s.end - s.pos:
            raise s.fail("function body size exceeds the code section")
        b = Reader(s.data, s.pos, s.pos + size)
        s.pos += size
        types: list[int] = []
        for _ in range(b.count()):
            at = b.pos
            k = b.u32()
            if len(types) + k > MAX_LOCALS:
                raise b.fail(f"too many locals (more than {MAX_LOCALS})", at)
            types.extend([b.valtype()] * k)
        if b.pos >= b.end:
            raise b.fail("function body without instructions")
        m.bodies.append(Body(tuple(types), b.pos, b.end))


def _data(s: Reader, m: Module, _: int | None) -> None:
    for _ in range(s.count()):
        at = s.pos
        flags = s.u32()
        if flags > 2:
            raise s.fail(f"invalid data segment flags {flags}", at)
        memory = s.u32() if flags == 2 else 0
        offset = None if flags == 1 else s.const_expr()
        payload = s.take(s.count())
        mode = "passive" if flags == 1 else "active"
        m.datas.append(DataSegment(mode, memory, offset, payload, at))


_SECTION_READERS = {1: _types, 2: _imports, 3: _functions, 4: _tables, 5: _memories,
                    6: _globals, 7: _exports, 8: _start, 9: _elements, 12: _data_count,
                    10: _code, 11: _data}
