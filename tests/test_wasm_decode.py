"""The WASM front end's decoder, validator and subset check on hand-written and damaged modules."""

from __future__ import annotations

import re

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memjit.errors import BadInput, UnsupportedModule
from memjit.runtime.wasm import load
from memjit.runtime.wasm.decode import Reader, decode_module
from memjit.workers import load as load_worker

RICH = """(module
  (type $bin (func (param i32 i32) (result i32)))
  (memory (export "memory") 1 4)
  (table 3 funcref)
  (global $g (mut i32) (i32.const 42))
  (global $k i64 (i64.const -7))
  (elem (i32.const 1) $add $sub)
  (data (i32.const 16) "hello")
  (func $add (type $bin) local.get 0 local.get 1 i32.add)
  (func $sub (type $bin) local.get 0 local.get 1 i32.sub)
  (func (export "apply") (param i32 i32 i32) (result i32) (local i64)
    local.get 1 local.get 2 local.get 0 call_indirect (type $bin)
    global.get $g i32.add)
  (func (export "mix") (param i64) (result i64)
    block (result i64)
      local.get 0 i64.eqz
      if (result i64) i64.const 1 else local.get 0 i64.const 3 i64.rotl end
      i32.const 0 i32.load8_u offset=16 i64.extend_i32_u i64.add
    end)
  (@custom "note" "hi"))"""


def wat(text: str) -> bytes:
    return wasmtime.wat2wasm(text)


def func_module(body: str, sig: str = "(result i32)", extra: str = "") -> bytes:
    return wat(f'(module (memory 1) {extra} (func (export "f") {sig} {body}))')


def wasmtime_valid(data: bytes) -> bool:
    try:
        wasmtime.Module.validate(wasmtime.Engine(), data)
        return True
    except wasmtime.WasmtimeError:
        return False


# --- decoding ---------------------------------------------------------------------------------


def test_decodes_every_section_of_a_hand_written_module() -> None:
    m = decode_module(wat(RICH))
    assert [(t.params, t.results) for t in m.types][0] == ((0x7F, 0x7F), (0x7F,))
    assert m.funcs[:2] == [0, 0]
    assert m.memories[0].min == 1 and m.memories[0].max == 4
    assert m.tables[0][0] == 0x70 and m.tables[0][1].min == 3
    assert [(g.valtype, g.mutable, g.init.instrs) for g in m.globals] == [
        (0x7F, True, ((0x41, 42),)), (0x7E, False, ((0x42, -7),))]
    assert {(e.name, e.kind) for e in m.exports} == {("memory", "memory"), ("apply", "function"),
                                                     ("mix", "function")}
    assert m.elements[0].funcs == (0, 1) and m.elements[0].offset.instrs == ((0x41, 1),)
    assert m.datas[0].data == b"hello" and m.datas[0].offset.instrs == ((0x41, 16),)
    assert ("note", b"hi") in m.customs
    assert m.bodies[2].locals == (0x7E,)


def test_loads_the_rich_module_and_the_workers() -> None:
    prog = load(wat(RICH))
    assert set(prog.exports) == {"apply", "mix"}
    assert prog.exports["apply"].params == ("i32", "i32", "i32")
    assert prog.table_size == 3 and prog.mem_min == 1 and prog.mem_max == 4
    assert prog.memory_image()[16:21].tobytes() == b"hello"
    assert list(prog.globals_init) == [42, (1 << 32) - 7, (1 << 32) - 1]  # i64: two words
    for name in ("fib", "crc32", "sort", "mlp"):
        assert len(load(load_worker(name))) > 0


@pytest.mark.parametrize("data, message", [
    (b"", "magic"),
    (b"\0asm", "magic"),
    (b"\0ASM\x01\0\0\0", "magic"),
    (b"\0asm\x02\0\0\0", "version"),
    (b"\0asm\x01\0\0\0\x0e\x00", "unknown section id 14"),
    (b"\0asm\x01\0\0\0\x7f\x00", "unknown section id 127"),
    (b"\0asm\x01\0\0\0\x01\x05\x01", "exceeds the module"),
    (b"\0asm\x01\0\0\0\x01\x01\x00\x01\x01\x00", "out of order or duplicated"),
    (b"\0asm\x01\0\0\0\x03\x01\x00\x01\x01\x00", "out of order or duplicated"),
    (b"\0asm\x01\0\0\0\x01\x02\x00\x00", "size mismatch"),
    (b"\0asm\x01\0\0\0\x01\x04\x01\x61\x00\x00", "invalid type form"),
    (b"\0asm\x01\0\0\0\x01\x04\x01\x60\x01\x55", "invalid value type 0x55"),
    (b"\0asm\x01\0\0\0\x00\x03\x02\xff\xfe", "UTF-8"),
    (b"\0asm\x01\0\0\0\x03\x02\x01\x00", "inconsistent lengths"),
    (b"\0asm\x01\0\0\0\x07\x05\x01\x01\x66\x09\x00", "invalid export kind"),
])
def test_malformed_modules_are_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(BadInput, match=message) as info:
        load(data)
    assert not isinstance(info.value, UnsupportedModule)


@pytest.mark.parametrize("encoding, message", [
    (b"\x80\x80\x80\x80\x80\x00", "too long"),  # 6 bytes for a u32
    (b"\xff\xff\xff\xff\x10", "too large"),  # 2^32 does not fit 32 bits
    (b"\x80\x80", "unexpected end"),
])
def test_bad_leb128(encoding: bytes, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        Reader(encoding).u32()
    # the same encoding as a section size inside a module
    with pytest.raises(BadInput):
        load(b"\0asm\x01\0\0\0\x01" + encoding)


def test_leb128_edges() -> None:
    assert Reader(b"\xff\xff\xff\xff\x0f").u32() == 0xFFFFFFFF
    assert Reader(b"\x80\x80\x80\x80\x78").sleb(32) == -(1 << 31)
    assert Reader(b"\xff\xff\xff\xff\x07").sleb(32) == (1 << 31) - 1
    assert Reader(b"\x7f").sleb(64) == -1
    assert Reader(b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f").sleb(64) == -(1 << 63)
    with pytest.raises(BadInput, match="too large"):
        Reader(b"\x80\x80\x80\x80\x70").sleb(32)  # sign bits disagree in the last byte
    with pytest.raises(BadInput, match="too large"):
        Reader(b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01").sleb(64)


def test_every_truncation_is_bad_input_or_a_valid_prefix() -> None:
    data = wat(RICH)
    boundaries = _section_boundaries(data)
    for cut in range(len(data)):
        prefix = data[:cut]
        try:
            load(prefix)
        except UnsupportedModule:
            raise AssertionError(f"truncation at {cut} reported as unsupported")
        except BadInput:
            continue
        assert cut in boundaries and wasmtime_valid(prefix), cut


def _section_boundaries(data: bytes) -> set[int]:
    r, out = Reader(data, 8), {8}
    while r.pos < r.end:
        r.byte()
        size = r.u32()
        r.pos += size
        out.add(r.pos)
    return out


@pytest.mark.parametrize("body, message", [
    ("i64.const 1", "type mismatch: expected i32, found i64"),
    ("i32.add", "operand stack underflow"),
    ("i32.const 1 i32.const 2", "values remaining"),
    ("local.get 3", "unknown local 3"),
    ("global.get 0", "unknown global 0"),
    ("i32.const 0 br 2", "unknown label 2"),
    ("i32.const 0 call 9", "unknown function 9"),
    ("i32.const 0 i32.load align=8", "alignment"),
    ("block (result i32) i32.const 0 end if (result i32) i32.const 1 end", "if without else"),
])
def test_invalid_bodies_are_bad_input(body: str, message: str) -> None:
    # wasmtime.wat2wasm only parses text: these binaries are malformed at the validation level
    with pytest.raises(BadInput, match=re.escape(message)):
        load(func_module(body))


def test_invalid_module_level_definitions() -> None:
    with pytest.raises(BadInput, match="immutable"):
        load(func_module("i32.const 1 global.set 0 i32.const 0",
                         extra="(global i32 (i32.const 0))"))
    with pytest.raises(BadInput, match="duplicate export"):
        load(wat('(module (func (export "a")) (func (export "a")))'))
    with pytest.raises(BadInput, match="type mismatch in global 0"):
        load(wat("(module (global i32 (i64.const 0)))"))
    with pytest.raises(BadInput, match="maximum"):
        load(wat("(module (memory 2 1))"))


# --- the provable subset --------------------------------------------------------------------


def test_float_instruction_refused_with_function_and_offset() -> None:
    data = wat("""(module
      (func $a (result i32) i32.const 1)
      (func $b (result i32) i32.const 2)
      (func $c (result i32) i32.const 2 i32.const 3 i32.add)
      (func (export "f") (result i32)
        i32.const 7 drop
        f32.const 1.5 f32.const 2 f32.add i32.trunc_f32_s))""")
    with pytest.raises(UnsupportedModule) as info:
        load(data)
    msg = str(info.value)
    match = re.fullmatch(
        r"unsupported instruction f32\.const in function 3 at offset (0x[0-9a-f]+)", msg)
    assert match, msg
    assert data[int(match.group(1), 16)] == 0x43  # the byte at the offset is f32.const


def test_first_unsupported_instruction_is_named() -> None:
    data = func_module("i32.const 0 i32.const 0 i32.const 0 memory.fill i32.const 0 "
                       "f64.const 1 drop")
    with pytest.raises(UnsupportedModule, match=r"memory\.fill in function 0 at offset 0x"):
        load(data)


def test_imported_function_refused_naming_the_import() -> None:
    data = wat('(module (import "env" "log" (func $log (param i32))) '
               '(func (export "f") i32.const 1 call $log))')
    with pytest.raises(UnsupportedModule, match=r"imports function env\.log"):
        load(data)


@pytest.mark.parametrize("text, message", [
    ('(module (func (export "f") (param f64)))', "value type f64 in type 0"),
    ('(module (global f32 (f32.const 0)))', "value type f32 in global 0"),
    ('(module (func (export "f") (local v128)))', "value type v128 in locals of function 0"),
    ('(module (memory 1) (func (export "f") i32.const 0 v128.load drop))', "SIMD"),
    ('(module (func (export "f") (result i32 i32) i32.const 0 i32.const 1))', "multi-value"),
    ('(module (func (export "f") (result i32) i32.const 1 '
     'block (param i32) (result i32) end))', "multi-value block type"),
    ('(module (memory 1) (memory 1))', "multiple memories"),
    ('(module (table 1 externref))', "table of externref"),
    ('(module (func $s) (start $s))', "start function"),
    ('(module (memory 1) (data "passive"))', "passive data segment"),
    ('(module (table 1 funcref) (func $f) (elem func $f))', "element segment 0"),
    ('(module (func (export "f") (result i32) ref.null func ref.is_null))', "ref.null"),
    ('(module (memory 1 1 shared))', "shared memory"),
    ('(module (func (export "f") (result i32) i32.const 1 return_call 0))', "return_call"),
    ('(module (func (export "f") (param f32) (result i32) i32.const 0))', "f32 in type 0"),
])
def test_outside_the_subset_is_unsupported(text: str, message: str) -> None:
    with pytest.raises(UnsupportedModule, match=re.escape(message)):
        load(wat(text))


def test_integer_mvp_and_sign_extension_are_accepted() -> None:
    load(func_module("i32.const -1 i32.extend8_s i64.extend_i32_s i64.extend32_s "
                     "i64.extend16_s i64.extend8_s i32.wrap_i64 i32.extend16_s "
                     "i32.const 5 i32.const 1 select (result i32)"))
    load(func_module("memory.size i32.const 1 memory.grow i32.add"))


# --- fuzzing ----------------------------------------------------------------------------------

_BASES = [wat(RICH), load_worker("crc32"), load_worker("fib")]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_BASES) - 1), st.data())
def test_byte_flips_only_ever_raise_bad_input_or_unsupported(base: int,
                                                             data: st.DataObject) -> None:
    module = bytearray(_BASES[base])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(8, len(module) - 1))
        module[pos] = data.draw(st.integers(0, 255))
    valid = wasmtime_valid(bytes(module))
    try:
        load(bytes(module))
    except UnsupportedModule:
        return
    except BadInput:
        assert not valid, "the front end rejects a module wasmtime accepts"
        return
    assert valid
