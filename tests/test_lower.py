"""Lowering structured control flow to the flat ROM: targets, drop/keep, heights, calls."""

from __future__ import annotations

import numpy as np
import pytest
import wasmtime

from memjit.runtime.tracer import trace_checked
from memjit.runtime.wasm import load
from memjit.runtime.wasm.opcodes import BR, BR_ENTRY, BR_EQZ, BR_IF, BR_TABLE, CALL, CALL_INDIRECT, \
    I32_CONST, LOCAL_GET, NOP, OP, OP_NAMES, RETURN, TABLE_ENTRY, UNREACHABLE
from memjit.runtime.wasm.program import ROM_COLUMNS
from memjit.workers import load as load_worker


def wat(text: str) -> bytes:
    return wasmtime.wat2wasm(text)


def rows_of(prog, func: int) -> list[tuple[str, int, int, int, int, int]]:
    """(op name, imm, arg1, arg2, arg3, sh) of the rows of one function."""
    pcs = np.flatnonzero(prog.func == func)
    return [(OP_NAMES[prog.op[p]], int(prog.imm[p]), int(prog.arg1[p]), int(prog.arg2[p]),
             int(prog.arg3[p]), int(prog.sh[p])) for p in pcs]


def agree(data: bytes, export: str, *arg_lists: list[int]) -> None:
    """Every call traces, and the trace agrees with wasmtime (results, trap, fuel, memory)."""
    for args in arg_lists:
        tr = trace_checked(data, export, args)
        assert np.array_equal(tr.sp, tr.fp + tr.program.sh[tr.pc]), "sp is not fp + sh[pc]"


NESTED = wat("""(module (func (export "f") (param i32) (result i32) (local i32)
  i32.const 100
  block (result i32)
    i32.const 1
    block (result i32)
      i32.const 2 i32.const 3
      local.get 0 br_if 1
      drop
      i32.const 4
      local.get 0 i32.const 1 i32.add br_if 0
      drop drop i32.const 5
    end
    i32.add
  end
  i32.add))""")


def test_nested_blocks_resolve_targets_drop_and_keep() -> None:
    prog = load(NESTED)
    rows = rows_of(prog, 0)
    assert rows[0] == ("i32.const", 0, 0, 0, 0, 1)  # the declared local is zeroed
    br_ifs = [r for r in rows if r[0] == "br_if"]
    outer, inner = br_ifs
    # br_if 1 at height 4 (100 1 2 3, cond popped): keeps 3, drops 1 2 -> drop 2, keep 1
    assert outer[3:5] == (2, 1)
    # br_if 0 at height 4 (100 1 2 4): keeps 4 onto 1 -> drop 1 (the 2), keep 1
    assert inner[3:5] == (1, 1)
    pcs = np.flatnonzero(prog.func == 0)
    add_pcs = [p for p in pcs if OP_NAMES[prog.op[p]] == "i32.add"]
    assert outer[2] == add_pcs[-1]  # the outer block ends just before the last add
    assert inner[2] == add_pcs[-2]  # the inner block ends just before the middle add
    assert "block" not in OP_NAMES and "drop" not in [r[0] for r in rows]
    agree(NESTED, "f", [0], [-1], [5], [1 << 30])


LOOP = wat("""(module (func (export "sum") (param i32) (result i32) (local i32 i32)
  block
    local.get 0 i32.eqz br_if 0
    loop
      local.get 1 local.get 2 i32.add local.set 1
      local.get 2 i32.const 1 i32.add local.tee 2
      local.get 0 i32.lt_u br_if 0
    end
  end
  local.get 1))""")


def test_loop_back_edge_and_fuel_check_header() -> None:
    prog = load(LOOP)
    header = int(np.flatnonzero(prog.loop_header)[0])
    back = [p for p in range(len(prog)) if prog.op[p] == BR_IF][-1]
    assert prog.arg1[back] == header and prog.arg2[back] == 0 and prog.arg3[back] == 0
    assert OP_NAMES[prog.op[header]] == "local.get"
    agree(LOOP, "sum", [0], [1], [10], [1000])


BR_TABLE_MOD = wat("""(module (func (export "sw") (param i32) (result i32)
  block
    block
      block
        i32.const 7 drop
        local.get 0
        br_table 0 1 2 2
      end
      i32.const 10 return
    end
    i32.const 20 return
  end
  i32.const 30)
 (func (export "direct") (param i32) (result i32)
  i32.const 99 local.get 0 br_table 0 0)
 (func (export "kept") (param i32) (result i32)
  block (result i32)
    block (result i32)
      i32.const 5 i32.const 6 i32.const 7 local.get 0 br_table 0 1 1
    end
    drop i32.const 8
  end))""")


def test_br_table_entries_follow_the_table_and_default_is_last() -> None:
    prog = load(BR_TABLE_MOD)
    pc, pc2, pc3 = (int(p) for p in np.flatnonzero(prog.op == BR_TABLE))
    assert prog.imm[pc] == 3  # three labels besides the default
    assert list(prog.op[pc + 1:pc + 5]) == [BR_ENTRY] * 4
    assert list(prog.imm[pc + 1:pc + 5]) == [0, 1, 2, 3]
    assert prog.arg1[pc + 3] == prog.arg1[pc + 4]  # label 2 twice (incl. the default)
    assert len({int(t) for t in prog.arg1[pc + 1:pc + 4]}) == 3
    # the function-level label: br_table jumps to the function's final return row
    target = prog.arg1[pc2 + 1]
    assert prog.op[target] == RETURN and prog.arg2[pc2 + 1] == 0 and prog.arg3[pc2 + 1] == 0
    # values kept across the table: 7 moves down over 5 and 6
    assert [(int(prog.arg2[e]), int(prog.arg3[e])) for e in range(pc3 + 1, pc3 + 4)] == [(2, 1)] * 3
    agree(BR_TABLE_MOD, "sw", [0], [1], [2], [3], [-1], [(1 << 31) - 1])
    agree(BR_TABLE_MOD, "direct", [0], [5])
    agree(BR_TABLE_MOD, "kept", [0], [1], [2])


IF_ELSE = wat("""(module
 (func (export "abs") (param i32) (result i32)
  local.get 0 i32.const 0 i32.lt_s
  if (result i32) i32.const 0 local.get 0 i32.sub else local.get 0 end)
 (func (export "clamp") (param i32) (result i32)
  local.get 0 i32.const 100 i32.gt_s
  if i32.const 100 local.set 0 end
  local.get 0)
 (func (export "early") (param i32) (result i32)
  local.get 0
  if (result i32) i32.const 1 return else i32.const 2 end
  i32.const 3 i32.add))""")


def test_if_else_become_conditional_and_unconditional_branches() -> None:
    prog = load(IF_ELSE)
    rows = rows_of(prog, 0)
    names = [r[0] for r in rows]
    assert names.count("br_eqz") == 1 and names.count("br") == 1
    eqz = rows[names.index("br_eqz")]
    br = rows[names.index("br")]
    pcs = np.flatnonzero(prog.func == 0)
    assert eqz[2] == pcs[names.index("br") + 1]  # false: to the else-branch
    assert br[2] == pcs[names.index("return")]  # then-branch jumps over the else-branch
    assert br[3:5] == (0, 0)  # the result is already in place
    # if without else: the condition's false edge goes to the end
    rows = rows_of(prog, 1)
    names = [r[0] for r in rows]
    assert "br" not in names and names.count("br_eqz") == 1
    # a then-branch ending in return needs no jump over the else-branch
    assert "br" not in [r[0] for r in rows_of(prog, 2)]
    agree(IF_ELSE, "abs", [5], [-5], [0], [-(1 << 31)])
    agree(IF_ELSE, "clamp", [5], [500])
    agree(IF_ELSE, "early", [0], [1])


CALLS = wat("""(module
 (type $u (func (param i32) (result i32)))
 (table 3 funcref)
 (elem (i32.const 0) $fact $even)
 (func $fact (type $u)
  local.get 0 i32.const 2 i32.lt_u
  if (result i32) i32.const 1
  else local.get 0 local.get 0 i32.const 1 i32.sub call $fact i32.mul end)
 (func $even (type $u)
  local.get 0 i32.eqz if (result i32) i32.const 1
  else local.get 0 i32.const 1 i32.sub call $odd end)
 (func $odd (type $u)
  local.get 0 i32.eqz if (result i32) i32.const 0
  else local.get 0 i32.const 1 i32.sub call $even end)
 (func (export "fact") (param i32) (result i32) local.get 0 call $fact)
 (func (export "even") (param i32) (result i32) local.get 0 call $even)
 (func (export "via") (param i32 i32) (result i32)
  local.get 1 local.get 0 call_indirect (type $u)))""")


def test_calls_reference_entry_pcs_and_recursion_agrees() -> None:
    prog = load(CALLS)
    for pc in np.flatnonzero(prog.op == CALL):
        callee = prog.imm[pc]
        assert prog.arg1[pc] == prog.func_entry[callee] and prog.arg2[pc] == 1
        assert prog.arg3[pc] == 1
    assert prog.func_entry[0] == 0
    table = prog.table_base + np.arange(prog.table_size)
    assert list(prog.op[table]) == [TABLE_ENTRY] * 3
    assert list(prog.imm[table]) == [0, 1, -1]
    assert list(prog.arg1[table[:2]]) == list(prog.func_entry[:2])
    ci = int(np.flatnonzero(prog.op == CALL_INDIRECT)[0])
    assert prog.arg1[ci] == prog.table_base and prog.arg2[ci] == 3
    assert prog.imm[ci] == prog.arg3[table[0]]  # canonical type ids match
    agree(CALLS, "fact", [0], [1], [5], [12], [20])
    agree(CALLS, "even", [0], [7], [100])
    agree(CALLS, "via", [0, 6], [1, 9], [2, 1], [3, 1])


def test_dead_code_is_not_emitted_and_empty_loops_keep_a_row() -> None:
    prog = load(wat("""(module (func (export "f") (param i32) (result i32)
      loop end
      block
        local.get 0 br_if 0
        i32.const 1 return
        i32.const 2 i32.const 3 i32.add drop
        block i32.const 4 drop end
      end
      local.get 0 if unreachable end
      i32.const 5))"""))
    names = [OP_NAMES[o] for o in prog.op]
    assert names.count("i32.add") == 0 and 4 not in prog.imm[prog.op == I32_CONST]
    assert prog.op[0] == NOP and prog.loop_header[0] == 1
    assert names.count("unreachable") == 1
    assert prog.op[np.flatnonzero(prog.op == UNREACHABLE)[0] + 1] != UNREACHABLE


def test_locals_are_zeroed_by_const_rows_with_no_fuel() -> None:
    prog = load(wat('(module (func (export "f") (param i32) (local i64 i32) local.get 2 drop))'))
    assert list(prog.op[:3]) == [I32_CONST] * 3  # the i64 local is two 32-bit slots
    assert list(prog.sh[:3]) == [1, 2, 3] and list(prog.fuel[:3]) == [0, 0, 0]
    assert prog.op[3] == LOCAL_GET and prog.sh[3] == 4 and prog.imm[3] == 3


def test_rom_rows_layout_and_determinism() -> None:
    data = load_worker("sort")
    a, b = load(data, crosscheck=False), load(bytes(data), crosscheck=True)
    rows = a.to_rows()
    assert rows.dtype == np.uint64 and rows.shape == (len(a), len(ROM_COLUMNS))
    assert np.array_equal(rows, b.to_rows())
    assert np.array_equal(rows[:, 0], np.arange(len(a)))
    assert np.array_equal(rows[:, ROM_COLUMNS.index("op")], a.op)
    neg = int(np.flatnonzero(a.imm < 0)[0]) if (a.imm < 0).any() else None
    if neg is not None:
        assert rows[neg, 2] == int(a.imm[neg]) & (1 << 64) - 1
    transfers = np.isin(a.op, [BR, BR_IF, BR_EQZ, BR_ENTRY])
    assert (a.arg1[transfers] < a.table_base).all()  # every target is a code row
    assert ((a.arg3 == 0) | (a.arg2 > 0))[transfers].all()  # keep only when something drops
    assert OP["i32.add"] == OP_NAMES.index("i32.add")


@pytest.mark.parametrize("worker, export, args", [
    ("fib", "fib", [12]), ("crc32", "crc32", [33, 5]), ("sort", "sort", [50, 9]),
    ("mlp", "classify", [1]),
])
def test_lowered_workers_keep_static_stack_heights(worker: str, export: str,
                                                   args: list[int]) -> None:
    agree(load_worker(worker), export, args)
