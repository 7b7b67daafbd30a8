"""The tensor table's witness: one row per word of each precompile call's operands
(circuits.wasm_vm.tensor), its memory reads at the call's timestamp, and its lookups.

A call the table cannot prove (operands not 4-byte aligned, a length that is zero, not a
multiple of 4 or 4096 bytes or more, overlapping operands) is refused for that call, as an
unaligned access is: memjit/workers/memjit.h never makes one. A call whose operand leaves the
memory traps: its row is the run's last, a trap row that proves the operand out of bounds
(circuits.wasm_vm.tensor.trap_constraints), and it has no run in the table.
"""

from __future__ import annotations

import numpy as np

from circuits.wasm_vm import tables as T
from circuits.wasm_vm.columns import NIBBLES
from circuits.wasm_vm.tensor import TCOL
from memjit.errors import UnsupportedModule
from memjit.runtime.tracer import SPACE_MEMORY, Trace
from memjit.runtime.wasm.opcodes import DOT_I8I8, DOT_I8U8, OP_NAMES, PRECOMPILE_MAX_BYTES

_M32 = np.uint64(0xFFFFFFFF)


def tensor_calls(tr: Trace) -> dict[str, np.ndarray]:
    """The table rows of the trace's precompile calls: the call's row (clk), kind, word
    indices of both operands, the row's count within its call, the last-row flag, and the
    operand words as memory held them at the call."""
    rows = np.flatnonzero(tr.op >= DOT_I8I8)
    if tr.trap is not None and len(rows) and rows[-1] == tr.steps - 1:
        rows = rows[:-1]  # the call that trapped: its trap row proves it, the table has no run
    a, b, n = (tr.columns[k][rows] & _M32 for k in ("a", "b", "c"))
    bad = (a % 4 != 0) | (b % 4 != 0) | (n % 4 != 0) | (n == 0) \
        | (n >= PRECOMPILE_MAX_BYTES) | ((a < b + n) & (b < a + n))
    if bad.any():
        t = rows[np.argmax(bad)]
        raise UnsupportedModule(
            f"this call is not provable: {OP_NAMES[tr.op[t]]} at pc {tr.pc[t]} takes operands "
            f"at {int(tr.a[t])} and {int(tr.b[t])} of {int(tr.c[t])} bytes (the tensor table "
            f"proves 4-byte aligned, disjoint operands of 4 to {PRECOMPILE_MAX_BYTES - 4} bytes, "
            f"a multiple of 4: memjit.h's functions make only such calls)")
    words = (n // 4).astype(np.int64)
    call = np.repeat(np.arange(len(rows)), words)
    j = np.arange(len(call)) - np.repeat(np.cumsum(words) - words, words)
    clk = rows[call].astype(np.int64)
    wa = (a // 4).astype(np.int64)[call] + j
    wb = (b // 4).astype(np.int64)[call] + j
    return {"clk": clk, "kind": (tr.op[rows] == DOT_I8U8)[call], "wa": wa, "wb": wb,
            "n": j + 1, "last": j == words[call] - 1,
            "va": word_at(tr, wa, clk), "vb": word_at(tr, wb, clk)}


def word_at(tr: Trace, words: np.ndarray, clk: np.ndarray) -> np.ndarray:
    """The value of each linear-memory word just before row ``clk``: the last store to it
    before that row, else its initial value."""
    t, k = np.nonzero((tr.mem_space == SPACE_MEMORY) & (tr.mem_write == 1))
    span = np.int64(tr.steps + 1)
    key = tr.mem_addr[t, k].astype(np.int64) * span + t
    order = np.argsort(key, kind="stable")
    key, val = key[order], tr.mem_value[t, k][order].astype(np.uint64)
    init = np.zeros(max(len(tr.initial_memory) // 4, 1), np.uint64)
    init[:len(tr.initial_memory) // 4] = tr.initial_memory[:len(init) * 4].view("<u4")
    out = np.where(words < len(init), init[np.minimum(words, len(init) - 1)], 0)
    if not len(key):
        return out.astype(np.uint64)
    i = np.searchsorted(key, words * span + clk) - 1
    hit = (i >= 0) & (key[np.maximum(i, 0)] // span == words)
    return np.where(hit, val[np.maximum(i, 0)], out).astype(np.uint64)


def memory_reads(calls: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table's reads for the memory argument: keys, timestamps (3 clk + 1), nibbles; the
    a words first, then the b words."""
    ts = 3 * calls["clk"].astype(np.uint64) + 1
    return (T.MEMORY + np.concatenate([calls["wa"], calls["wb"]]).astype(np.uint64),
            np.concatenate([ts, ts]), T.nibbles(np.concatenate([calls["va"], calls["vb"]])))


def _signed_bytes(v: np.ndarray) -> np.ndarray:
    raw = (v[:, None] >> (8 * np.arange(4, dtype=np.uint64))) & np.uint64(255)
    return raw.astype(np.int64) - 256 * (raw >= 128)


def fill(m: np.ndarray, calls: dict[str, np.ndarray], prev: np.ndarray) -> list[np.ndarray]:
    """Write the table's columns into the main trace ``m`` (rows 0..T-1); ``prev`` holds the
    reads' previous timestamps (a's, then b's). Returns the public-table indices the rows
    look up (U12 limbs, R3 sign pins), offsets into the fixed tables."""
    from circuits.wasm_vm.tables import to_field

    rows = len(calls["clk"])
    if not rows:
        return []
    cut = slice(0, rows)

    def put(name: str, v) -> None:
        m[TCOL[name], cut] = to_field(np.asarray(v).astype(np.int64).view(np.uint64))

    a, bs = _signed_bytes(calls["va"]), _signed_bytes(calls["vb"])
    bu = bs % 256
    sb = (bu >= 128).astype(np.int64)
    prods = (a * np.where(calls["kind"][:, None], bu, bs)).sum(axis=1)
    csum = np.cumsum(prods)
    start = np.flatnonzero(calls["n"] == 1)
    base = np.repeat(csum[start] - prods[start], np.diff(np.append(start, rows)))
    ts = 3 * calls["clk"]
    pa, pb = prev[:rows].astype(np.int64), prev[rows:].astype(np.int64)
    for name, v in (("t_act", np.ones(rows)), ("t_kind", calls["kind"]),
                    ("t_last", calls["last"]), ("t_clk", calls["clk"]), ("t_a", calls["wa"]),
                    ("t_b", calls["wb"]), ("t_n", calls["n"]), ("t_acc", csum - base),
                    ("t_m", (a * sb).sum(axis=1)), ("t_pa", pa), ("t_pb", pb),
                    ("t_la", (ts - pa) & 4095), ("t_ha", (ts - pa) >> 12),
                    ("t_lb", (ts - pb) & 4095), ("t_hb", (ts - pb) >> 12)):
        put(name, v)
    nib = {"x": T.nibbles(calls["va"]), "y": T.nibbles(calls["vb"])}
    for op in ("x", "y"):
        for i in range(NIBBLES):
            put(f"t_{op}{i}", nib[op][:, i])
    signs = {"a": (a < 0).astype(np.int64), "b": sb}
    for op in ("a", "b"):
        for i in range(4):
            put(f"t_s{op}{i}", signs[op][:, i])
    highs = np.concatenate([nib["x"][:, 1::2], nib["y"][:, 1::2]], axis=1).astype(np.int64)
    pins = 2 * (highs - 8 * np.concatenate([signs["a"], signs["b"]], axis=1))
    pins = np.concatenate([pins, np.zeros((rows, 1), np.int64)], axis=1)
    idx = [T.R3_BASE + pins[:, k] + 16 * pins[:, k + 1] + 256 * pins[:, k + 2] for k in (0, 3, 6)]
    idx += [T.U12_BASE + v for v in ((ts - pa) & 4095, (ts - pa) >> 12, (ts - pb) & 4095,
                                     (ts - pb) >> 12)]
    return idx

