"""The tracer against wasmtime: workers, generated straight-line programs, traps, fuel, memory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memjit.errors import BadInput, MemoryCapExceeded, OutOfFuel, Trap
from memjit.runtime.sandbox import Limits, RunResult, run
from memjit.runtime.tracer import COLUMNS, NSLOTS, SPACE_FRAME, SPACE_GLOBAL, SPACE_MEMORY, \
    SPACE_STACK, Trace, TraceMismatch, TraceStream, TraceTooLong, instruction_mix_fuel, trace, \
    trace_checked, trace_stream
from memjit.runtime.wasm import load
from memjit.runtime.wasm.opcodes import BINARY, I32_BIN_BASE, I64_BIN_BASE, OP
from memjit.runtime.wasm.program import PAGE, convert_args
from memjit.workers import load as load_worker


def wat(text: str) -> bytes:
    return wasmtime.wat2wasm(text)


def check_memory_log(tr: Trace) -> None:
    """Replay the access slots as the AIR's memory argument will: every read returns the
    last value written at its (space, address) (or the initial one), every write's
    ``mem_prev`` is the value it overwrites, and the replayed memory is the final memory."""
    prog = tr.program
    argv = convert_args(prog.signature(tr.export), tr.export, list(tr.args))
    image = np.zeros(len(tr.final_memory), np.uint8)
    image[:len(tr.initial_memory)] = tr.initial_memory
    words = image.view(np.uint32)

    def initial(space: int, addr: int) -> int:
        if space == SPACE_STACK:
            return int(argv[addr]) if addr < len(argv) else 0
        if space == SPACE_GLOBAL:
            return int(prog.globals_init[addr])
        if space == SPACE_MEMORY:
            return int(words[addr])
        assert space == SPACE_FRAME
        return 0

    space, addr = tr.mem_space, tr.mem_addr
    value, prev, write = tr.mem_value, tr.mem_prev, tr.mem_write
    current: dict[tuple[int, int], int] = {}
    for r, k in zip(*np.nonzero(space)):  # row-major: timestamp order t * NSLOTS + k
        key = (int(space[r, k]), int(addr[r, k]))
        cur = current[key] if key in current else initial(*key)
        assert prev[r, k] == cur, (r, k, key)
        if write[r, k]:
            current[key] = int(value[r, k])
        else:
            assert value[r, k] == cur, (r, k, key)
    final = tr.final_memory.view(np.uint32)
    for (s, a), v in current.items():
        if s == SPACE_MEMORY and tr.trap is None:
            assert final[a] == v
        if s == SPACE_GLOBAL:
            assert tr.final_globals[a] == v


def check_columns(tr: Trace) -> None:
    """Shapes of the documented columns and the operand/result slots of binary ops."""
    for name in COLUMNS:
        col = tr.columns[name]
        assert len(col) == tr.steps and col.shape[1:] in ((), (NSLOTS,)), name
    assert sum(tr.opcode_histogram().values()) == tr.steps
    binary = (tr.op >= I32_BIN_BASE) & (tr.op < I64_BIN_BASE + len(BINARY))
    done = binary & (tr.mem_write[:, 2] == 1)
    assert np.array_equal(tr.mem_value[done, 0], tr.b[done])
    assert np.array_equal(tr.mem_value[done, 1], tr.a[done])
    assert np.array_equal(tr.mem_value[done, 2], tr.res[done])
    assert np.array_equal(tr.sp.astype(np.int64), tr.fp + tr.program.sh[tr.pc])


# --- the example workers ----------------------------------------------------------------------


@pytest.mark.parametrize("worker, export, args", [
    ("fib", "fib", [0]), ("fib", "fib", [1]), ("fib", "fib", [15]), ("fib", "fib", [-3]),
    ("crc32", "crc32", [0, 0]), ("crc32", "crc32", [1, -1]), ("crc32", "crc32", [512, 12345]),
    ("sort", "sort", [0, 1]), ("sort", "sort", [1, 2]), ("sort", "sort", [2000, 1]),
    ("sort", "sort", [4096, -7]), ("sort", "sort", [4097, 1]),
    ("mlp", "classify", [0]), ("mlp", "classify", [42]), ("mlp", "classify_input", []),
])
def test_workers_match_wasmtime(worker: str, export: str, args: list[int]) -> None:
    tr = trace_checked(load_worker(worker), export, args)
    check_columns(tr)
    if tr.steps < 200_000:
        check_memory_log(tr)
    if worker == "sort" and args[0] > 4096:
        assert tr.trap == "unreachable"


# --- generated straight-line programs --------------------------------------------------------

I32_EDGES = [0, 1, -1, 2, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 0x7F, 0x80, 0xFF, 0x8000,
             0xFFFF, -(1 << 31), (1 << 31) - 1, -(1 << 31) + 1]
I64_EDGES = I32_EDGES + [1 << 31, (1 << 32) - 1, 1 << 32, -(1 << 63), (1 << 63) - 1,
                         -(1 << 63) + 1, 0x8000000000000000 - (1 << 32)]
i32s = st.one_of(st.sampled_from(I32_EDGES), st.integers(-(1 << 31), (1 << 31) - 1))
i64s = st.one_of(st.sampled_from(I64_EDGES), st.integers(-(1 << 63), (1 << 63) - 1))
addresses = st.one_of(st.integers(0, 3 * PAGE + 16),
                      st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, PAGE - 8, PAGE - 5, PAGE - 4,
                                       PAGE - 1, PAGE, 2 * PAGE - 3, 0xFFFFFFFF, 0x7FFFFFFF]))
offsets = st.one_of(st.integers(0, 40), st.sampled_from([PAGE - 1, PAGE, 0x7FFFFFFF, 0xFFFFFFFF]))
LOADS = {"i32.load": "i", "i64.load": "I", "i32.load8_s": "i", "i32.load8_u": "i",
         "i32.load16_s": "i", "i32.load16_u": "i", "i64.load8_s": "I", "i64.load8_u": "I",
         "i64.load16_s": "I", "i64.load16_u": "I", "i64.load32_s": "I", "i64.load32_u": "I"}
STORES = {"i32.store": "i", "i64.store": "I", "i32.store8": "i", "i32.store16": "i",
          "i64.store8": "I", "i64.store16": "I", "i64.store32": "I"}
UNARY = {"i32.eqz": ("i", "i"), "i32.clz": ("i", "i"), "i32.ctz": ("i", "i"),
         "i32.popcnt": ("i", "i"), "i32.extend8_s": ("i", "i"), "i32.extend16_s": ("i", "i"),
         "i64.eqz": ("I", "i"), "i64.clz": ("I", "I"), "i64.ctz": ("I", "I"),
         "i64.popcnt": ("I", "I"), "i64.extend8_s": ("I", "I"), "i64.extend16_s": ("I", "I"),
         "i64.extend32_s": ("I", "I"), "i32.wrap_i64": ("I", "i"),
         "i64.extend_i32_s": ("i", "I"), "i64.extend_i32_u": ("i", "I")}


def const(t: str, v: int) -> str:
    return f"{'i32' if t == 'i' else 'i64'}.const {v}"


@st.composite
def instruction(draw: st.DrawFn) -> tuple[str, str | None]:
    """One generated instruction group as (WAT, type of the value it leaves or None)."""
    kind = draw(st.sampled_from(["bin32", "bin64", "bin32", "bin64", "unary", "load", "store",
                                 "select", "memory", "global", "local"]))
    if kind in ("bin32", "bin64"):
        t, vals = ("i", i32s) if kind == "bin32" else ("I", i64s)
        name = draw(st.sampled_from(BINARY))
        res = "i" if BINARY.index(name) < 10 else t
        prefix = "i32" if t == "i" else "i64"
        return f"{const(t, draw(vals))} {const(t, draw(vals))} {prefix}.{name}", res
    if kind == "unary":
        name = draw(st.sampled_from(sorted(UNARY)))
        arg, res = UNARY[name]
        return f"{const(arg, draw(i32s if arg == 'i' else i64s))} {name}", res
    if kind == "load":
        name = draw(st.sampled_from(sorted(LOADS)))
        return f"i32.const {draw(addresses)} {name} offset={draw(offsets)}", LOADS[name]
    if kind == "store":
        name = draw(st.sampled_from(sorted(STORES)))
        t = STORES[name]
        return (f"i32.const {draw(addresses)} {const(t, draw(i32s if t == 'i' else i64s))} "
                f"{name} offset={draw(offsets)}"), None
    if kind == "select":
        t = draw(st.sampled_from("iI"))
        vals = i32s if t == "i" else i64s
        return f"{const(t, draw(vals))} {const(t, draw(vals))} {const('i', draw(i32s))} select", t
    if kind == "memory":
        if draw(st.booleans()):
            return "memory.size", "i"
        return f"i32.const {draw(st.sampled_from([0, 1, 2, 3, 70000, -1]))} memory.grow", "i"
    t = draw(st.sampled_from("iI"))
    v = const(t, draw(i32s if t == "i" else i64s))
    if kind == "global":
        g = "$g32" if t == "i" else "$g64"
        return f"{v} global.set {g} global.get {g}", t
    loc = "$l32" if t == "i" else "$l64"
    return f"{v} local.tee {loc} local.get {loc} {'i32' if t == 'i' else 'i64'}.xor", t


def straight_line(instrs: list[tuple[str, str | None]]) -> bytes:
    """A module whose export runs the instructions, storing each value at 0x8000 + 8k."""
    body = []
    for k, (code, t) in enumerate(instrs):
        if t is None:
            body.append(code)
        else:
            store = "i32.store" if t == "i" else "i64.store"
            body.append(f"i32.const {0x8000 + 8 * k} {code} {store}")
    data = "".join(f"\\{(i * 37 + 11) & 0xFF:02x}" for i in range(1024))
    return wat(f"""(module
      (memory (export "memory") 1 3)
      (global $g32 (mut i32) (i32.const -5))
      (global $g64 (mut i64) (i64.const 0x123456789))
      (data (i32.const 0) "{data}")
      (data (i32.const {PAGE - 8}) "\\01\\02\\03\\04\\05\\06\\07\\08")
      (func (export "f") (result i32) (local $l32 i32) (local $l64 i64)
        {' '.join(body)}
        memory.size))""")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(instruction(), min_size=1, max_size=24))
def test_straight_line_programs_match_wasmtime(instrs: list[tuple[str, str | None]]) -> None:
    tr = trace_checked(straight_line(instrs), "f", [])
    check_columns(tr)
    check_memory_log(tr)


@pytest.mark.parametrize("op", [f"{t}.{name}" for t in ("i32", "i64") for name in BINARY])
def test_every_binary_op_on_edge_values(op: str) -> None:
    edges = I32_EDGES if op.startswith("i32") else I64_EDGES
    t = "i" if op.startswith("i32") else "I"
    res = "i" if BINARY.index(op.split(".")[1]) < 10 else t
    pairs = [(a, b) for a in edges[::3] for b in edges[::2]]
    safe = [(a, b) for a, b in pairs if "div" not in op and "rem" not in op or
            (b != 0 and not (a in (-(1 << 31), -(1 << 63)) and b == -1 and "div_s" in op))]
    instrs = [(f"{const(t, a)} {const(t, b)} {op}", res) for a, b in safe]
    for chunk in range(0, len(instrs), 40):
        trace_checked(straight_line(instrs[chunk:chunk + 40]), "f", [])


# --- traps ------------------------------------------------------------------------------------


def func(body: str, result: str = "i32", extra: str = "") -> bytes:
    return wat(f'(module (memory (export "memory") 1) {extra} '
               f'(func (export "f") (param i32) (result {result}) {body}))')


@pytest.mark.parametrize("body, result, code", [
    ("i32.const 1 local.get 0 i32.div_s", "i32", "integer_divide_by_zero"),
    ("i32.const 1 local.get 0 i32.div_u", "i32", "integer_divide_by_zero"),
    ("i32.const 1 local.get 0 i32.rem_s", "i32", "integer_divide_by_zero"),
    ("i32.const 1 local.get 0 i32.rem_u", "i32", "integer_divide_by_zero"),
    ("i64.const 1 local.get 0 i64.extend_i32_u i64.div_s", "i64", "integer_divide_by_zero"),
    ("i64.const 1 local.get 0 i64.extend_i32_u i64.rem_u", "i64", "integer_divide_by_zero"),
    ("i32.const 0x80000000 local.get 0 i32.const 1 i32.sub i32.div_s", "i32", "integer_overflow"),
    ("i64.const 0x8000000000000000 local.get 0 i64.extend_i32_s i64.const 1 i64.sub i64.div_s",
     "i64", "integer_overflow"),
    ("local.get 0 i32.const 65533 i32.add i32.load", "i32", "memory_out_of_bounds"),
    ("local.get 0 i32.const -1 i32.add i32.load8_u offset=1", "i32", "memory_out_of_bounds"),
    ("local.get 0 i32.const 65536 i32.add i32.const 7 i32.store8 i32.const 0", "i32",
     "memory_out_of_bounds"),
    ("local.get 0 i32.const 65529 i32.add i64.const 7 i64.store i32.const 0", "i32",
     "memory_out_of_bounds"),
    ("local.get 0 i32.const -8 i32.add i64.load offset=16", "i64", "memory_out_of_bounds"),
    ("unreachable", "i32", "unreachable"),
])
def test_traps_match_wasmtime(body: str, result: str, code: str) -> None:
    data = func(body, result, "(func (result i32) i32.const 0)")
    tr = trace_checked(data, "f", [0])
    assert tr.trap == code
    check_memory_log(tr)
    last = tr.mem_write[-1]
    assert not last.any(), "a trapping row writes nothing"
    with pytest.raises(Trap) as info:
        run(data, "f", [0])
    assert info.value.code == code


def test_unaligned_i64_accesses_are_two_word_pair_accesses() -> None:
    data = wat("""(module (memory (export "memory") 1)
      (data (i32.const 0) "\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c")
      (func (export "f") (result i64)
        i32.const 3 i64.const 0x1122334455667788 i64.store
        i32.const 3 i64.load))""")
    tr = trace_checked(data, "f", [])
    assert tr.results == (0x1122334455667788,)
    # the high word is stored first (it traps whenever the whole store would)
    store_hi, store_lo = (int(r) for r in np.flatnonzero(tr.op == OP["i32.store"]))
    load_lo, load_hi = (int(r) for r in np.flatnonzero(tr.op == OP["i32.load"]))
    assert list(tr.mem_space[store_lo]) == [SPACE_STACK] * 2 + [SPACE_MEMORY] * 2 + [0]
    assert list(tr.mem_addr[store_lo, 2:4]) == [0, 1] and list(tr.mem_addr[store_hi, 2:4]) == [1, 2]
    assert tr.mem_prev[store_lo, 2] == 0x04030201 and tr.mem_value[store_lo, 2] == 0x88030201
    assert tr.mem_prev[store_hi, 3] == 0x0C0B0A09 and tr.mem_value[store_hi, 3] == 0x0C112233
    for row in (load_lo, load_hi):
        assert list(tr.mem_space[row]) == [SPACE_STACK] + [SPACE_MEMORY] * 2 + [0, SPACE_STACK]
        assert not tr.mem_write[row, :4].any() and tr.mem_write[row, 4]
    check_memory_log(tr)


def test_trap_after_the_budget_without_a_check_point_is_a_trap() -> None:
    """Wasmtime checks fuel only at entries and loop headers (and the sandbox at the end)."""
    body = "i32.const 1 drop " * 20 + "unreachable"
    data = wat(f'(module (func (export "f") {body}))')
    tr = trace_checked(data, "f", [], Limits(fuel=5))
    assert tr.trap == "unreachable" and tr.fuel > 5
    with pytest.raises(OutOfFuel):
        trace_checked(data, "f", [], Limits(fuel=0))


def test_int_min_rem_minus_one_is_zero() -> None:
    data = func("i32.const 0x80000000 i32.const -1 i32.rem_s local.get 0 i32.add")
    assert trace_checked(data, "f", [0]).results == (0,)
    data = func("i64.const 0x8000000000000000 i64.const -1 i64.rem_s", "i64")
    assert trace_checked(data, "f", [0]).results == (0,)


INDIRECT = wat("""(module
  (type $ii (func (param i32) (result i32)))
  (type $v (func))
  (type $ii2 (func (param i32) (result i32)))
  (table 4 funcref)
  (elem (i32.const 0) $double $nothing)
  (func $double (type $ii2) local.get 0 i32.const 2 i32.mul)
  (func $nothing (type $v))
  (func (export "f") (param i32) (result i32)
    i32.const 21 local.get 0 call_indirect (type $ii))
  (func $rec (export "rec") (param i32) (result i32)
    local.get 0 i32.const 1 i32.add call $rec))""")


@pytest.mark.parametrize("index, outcome", [
    (0, 42), (1, "indirect_call_type_mismatch"), (2, "indirect_call_to_null"),
    (3, "indirect_call_to_null"), (4, "table_out_of_bounds"), (-1, "table_out_of_bounds"),
])
def test_call_indirect_checks(index: int, outcome: int | str) -> None:
    tr = trace_checked(INDIRECT, "f", [index])
    assert (tr.results[0] if tr.trap is None else tr.trap) == outcome


def test_infinite_recursion_overflows_the_stack_in_both() -> None:
    tr = trace_checked(INDIRECT, "rec", [0])
    assert tr.trap == "stack_overflow" and tr.depth.max() > 10_000


# --- fuel, memory growth, limits -------------------------------------------------------------

LOOP_CALLS = wat("""(module
  (func $inc (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (func (export "f") (param i32) (result i32) (local i32)
    block loop
      local.get 1 local.get 0 i32.ge_s br_if 1
      local.get 1 call $inc local.set 1
      br 0
    end end
    local.get 1))""")


def test_fuel_matches_wasmtime_at_every_limit_around_the_boundary() -> None:
    used = run(LOOP_CALLS, "f", [5]).fuel_used
    assert trace(LOOP_CALLS, "f", [5]).fuel == used
    for fuel in list(range(0, 12)) + list(range(used - 12, used + 3)):
        limits = Limits(fuel=fuel)
        try:
            expected = run(LOOP_CALLS, "f", [5], limits).results
        except OutOfFuel:
            expected = OutOfFuel
        try:
            got = trace(LOOP_CALLS, "f", [5], limits).results
        except OutOfFuel:
            got = OutOfFuel
        assert got == expected, fuel
    with pytest.raises(OutOfFuel):
        trace_checked(LOOP_CALLS, "f", [5], Limits(fuel=used - 1))


def test_fuel_is_the_instruction_mix_under_wasmtimes_cost_model() -> None:
    """nop, drop, block, loop, end, else, unreachable and return cost 0, every other
    operator 1, each function entry 1 (measured directly on wasmtime, no sandbox)."""
    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)

    def fuel(body: str) -> int:
        store = wasmtime.Store(engine)
        store.set_fuel(10_000)
        module = wasmtime.Module(engine, wat(f'(module (func $g) (func (export "f") {body}))'))
        wasmtime.Instance(store, module, []).exports(store)["f"](store)
        return 10_000 - store.get_fuel()

    assert fuel("") == 1
    assert fuel("nop nop block end loop end i32.const 1 drop") == 2
    assert fuel("i32.const 1 if else end") == 3
    assert fuel("block br 0 end") == 2
    assert fuel("call $g") == 3
    assert fuel("return") == 1
    for body in ("", "nop nop block end loop end i32.const 1 drop", "i32.const 1 if else end",
                 "block br 0 end", "call $g", "return"):
        data = wat(f'(module (func $g) (func (export "f") {body}))')
        assert trace(data, "f").fuel == fuel(body)


def test_memory_grow_returns_minus_one_past_the_maximum_and_faults_at_the_cap() -> None:
    data = wat("""(module (memory (export "memory") 1 3)
      (func (export "g") (param i32) (result i32) local.get 0 memory.grow))""")
    assert trace_checked(data, "g", [2]).results == (1,)
    assert trace_checked(data, "g", [3]).results == (-1,)
    assert trace_checked(data, "g", [-1]).results == (-1,)
    assert trace_checked(data, "g", [0]).results == (1,)
    unbounded = wat("""(module (memory (export "memory") 1)
      (func (export "g") (param i32) (result i32) local.get 0 memory.grow))""")
    with pytest.raises(MemoryCapExceeded):
        trace_checked(unbounded, "g", [20], Limits(memory_mb=1))
    assert trace_checked(unbounded, "g", [15], Limits(memory_mb=1)).results == (1,)
    assert trace_checked(unbounded, "g", [70000], Limits(memory_mb=1)).results == (-1,)
    with pytest.raises(MemoryCapExceeded):
        trace(wat("(module (memory 40) (func (export \"f\")))"), "f", [], Limits(memory_mb=2))


def test_instantiation_traps_and_fuel() -> None:
    oob = wat('(module (memory 1) (data (i32.const 65534) "abc") (func (export "f")))')
    tr = trace_checked(oob, "f", [])
    assert tr.trap == "memory_out_of_bounds" and tr.steps == 0
    data = wat('(module (memory 1) (data (i32.const 0) "abcdef") (func (export "f")))')
    assert load(data).init_fuel == 8  # 1 + (1 + 6)
    with pytest.raises(OutOfFuel, match="instantiation"):
        trace_checked(data, "f", [], Limits(fuel=7))
    trace_checked(data, "f", [], Limits(fuel=8))


# --- API --------------------------------------------------------------------------------------


def test_trace_api_and_save(tmp_path) -> None:
    data = load_worker("crc32")
    prog = load(data)
    tr = trace(prog, "crc32", [64, 3])
    assert tr.results == trace(data, "crc32", [64, 3]).results
    assert np.array_equal(tr.initial_memory, prog.memory_image())
    hist = tr.opcode_histogram()
    assert list(hist.values()) == sorted(hist.values(), reverse=True)
    fp = tr.memory_footprint()
    assert fp["pages"] == prog.mem_min and fp["max_depth"] == 0 and fp["stack_slots"] > 0
    path = tmp_path / "t.npz"
    tr.save(path)
    saved = np.load(path)
    meta = json.loads(saved["meta"].tobytes())
    assert meta["steps"] == tr.steps and meta["results"] == list(tr.results)
    for name in COLUMNS:
        assert np.array_equal(saved[name], tr.columns[name])
    assert np.array_equal(saved["rom"], prog.to_rows())
    assert np.array_equal(saved["final_memory"], tr.final_memory)


@pytest.mark.parametrize("rows", [1, 64, 1024, 1 << 16])
def test_streamed_chunks_are_the_whole_trace(rows: int) -> None:
    """A stream's chunks, recorded by re-executing the call a few rows at a time, concatenate
    to the whole trace; its outcome is the whole trace's, and so is its fuel."""
    data = load_worker("fib")
    whole, stream = trace(data, "fib", [7]), trace_stream(data, "fib", [7])
    assert (stream.steps, stream.results, stream.trap, stream.fuel) == \
        (whole.steps, whole.results, whole.trap, whole.fuel)
    assert np.array_equal(stream.final_memory, whole.final_memory)
    chunks = list(stream.chunks(rows))
    assert [len(c["pc"]) for c in chunks[:-1]] == [rows] * (len(chunks) - 1)
    for name in COLUMNS:
        assert np.array_equal(np.concatenate([c[name] for c in chunks]), whole.columns[name])
    assert instruction_mix_fuel(stream) == instruction_mix_fuel(whole) == whole.fuel
    with pytest.raises(AttributeError):
        stream.pc  # the stream holds no columns
    with pytest.raises(ValueError):
        next(stream.chunks(3))


def test_trace_checked_streams_and_checks_chunk_by_chunk() -> None:
    streamed = trace_checked(load_worker("crc32"), "crc32", [64, 3], stream=True)
    assert isinstance(streamed, TraceStream)
    assert streamed.results == trace_checked(load_worker("crc32"), "crc32", [64, 3]).results
    trapped = trace_stream(wat('(module (func (export "f") unreachable))'), "f")
    assert trapped.trap == "unreachable" and trapped.whole().steps == 1


def test_bad_calls_are_bad_input() -> None:
    data = load_worker("fib")
    with pytest.raises(BadInput, match="no function export 'nope'"):
        trace(data, "nope", [1])
    with pytest.raises(BadInput, match="takes 1 argument"):
        trace(data, "fib", [1, 2])
    with pytest.raises(BadInput, match="out of i32 range"):
        trace(data, "fib", [1 << 31])
    with pytest.raises(TraceTooLong):
        trace(data, "fib", [20], max_steps=1000)


def test_a_disagreement_with_wasmtime_is_a_trace_mismatch(monkeypatch) -> None:
    data = load_worker("fib")
    honest = run(data, "fib", [10])
    import memjit.runtime.tracer as tracer

    for fake, message in [
        (RunResult((56,), honest.fuel_used, honest.memory, 0.0),
         r"returned \(56,\), the tracer \(55,\)"),
        (RunResult((55,), honest.fuel_used + 1, honest.memory, 0.0), "fuel"),
        (RunResult((55,), honest.fuel_used, b"\1" + honest.memory[1:], 0.0), "address 0x0"),
    ]:
        monkeypatch.setattr(tracer, "run_wasmtime", lambda *a, fake=fake: fake)
        with pytest.raises(TraceMismatch, match=message):
            trace_checked(data, "fib", [10])

    def trapping(*_):
        raise Trap("unreachable")

    monkeypatch.setattr(tracer, "run_wasmtime", trapping)
    with pytest.raises(TraceMismatch, match="trapped with unreachable, the tracer returned"):
        trace_checked(data, "fib", [10])
