"""Segments of a long run (continuations): the statement and AIR of one slice of an execution.

A run too long for one trace is cut into segments of consecutive steps, each proven on its own.
A segment's statement says "starting in VM state ``start`` with the memory holding ``init`` at
``keys``, the program executed ``steps`` instructions, leaving ``fin`` at ``keys`` and either
continuing in state ``end`` or halting as ``base`` says (returned / trapped)". The VM state is
the registers (pc, fp, depth, pages); the value stack, the call frames, the globals and the
linear memory are memory keys, so "the memory it reads first and writes last" covers them.

Every key of the segment's memory table is public both ways: the table initialises it from
the public (key, init) list and consumes its final value against the public (key, fin) list
(``mpub`` = ``mout`` = ``mact`` on every row). The memory argument then guarantees that every
key the segment touches is in ``keys``, read first as ``init``, and left as ``fin``. The
verifier (verifier.segments) walks the segments against a running image of the whole memory.

Values are u64 per key: a call-frame record (FRAME space) is two 32-bit limbs (return pc, fp),
every other key holds a 32-bit word as 8 nibbles (the limb forms the AIR uses).

Encoding (version 1, little-endian)::

    "MJSG" u8 version, u32 length + base statement (circuits.wasm_vm.statement: export, args,
    outcome, steps, log_n, multiplicities; no input, no output), run digest (32 bytes),
    u32 index, start (u32 pc, fp, depth, pages), u8 final, [end (4 x u32) unless
    final], u32 K, K u32 keys (strictly increasing, < 2^25), K u64 init, K u64 fin
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from circuits.air import ConstraintBuilder
from circuits.field import P
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.air import VmAir, VmInputs, public_init
from circuits.wasm_vm.control import control_constraints, next_state
from circuits.wasm_vm.isa import TRAP_ROWS
from circuits.wasm_vm.program import VmProgram
from circuits.wasm_vm.reader import ByteReader
from circuits.wasm_vm.statement import StatementFormatError, VmStatement, decode_statement
from circuits.wasm_vm.view import View

MAGIC = b"MJSG"
VERSION = 1
RUN_BYTES = 32
MAX_KEYS = 1 << 22  # a segment's table has at most 2^MAX_LOG_N rows
_M32 = np.uint64(0xFFFFFFFF)


class State(NamedTuple):
    """The VM registers between two instructions (the rest of the state is memory)."""

    pc: int
    fp: int
    depth: int
    pages: int


@dataclass(frozen=True, eq=False)
class SegmentStatement:
    base: VmStatement  # export, args, outcome (final segment), steps, log_n, multiplicities
    run: bytes  # digest of the whole claim's statement: binds the segment to one run
    index: int  # its place in the run (0 first); the last is the one that halts
    start: State
    end: State | None  # None: the segment halts (the run's last)
    keys: np.ndarray  # (K,) uint64, strictly increasing: every key of the memory table
    init: np.ndarray  # (K,) uint64: their values at the start
    fin: np.ndarray  # (K,) uint64: their values at the end

    @property
    def final(self) -> bool:
        return self.end is None

    @property
    def steps(self) -> int:
        return self.base.steps

    def encode(self) -> bytes:
        base = self.base.encode()
        end = b"" if self.end is None else struct.pack("<4I", *self.end)
        return b"".join([MAGIC, bytes([VERSION]), struct.pack("<I", len(base)), base,
                         bytes(self.run), struct.pack("<I", self.index),
                         struct.pack("<4I", *self.start), bytes([self.final]), end,
                         struct.pack("<I", len(self.keys)), self.keys.astype("<u4").tobytes(),
                         self.init.astype("<u8").tobytes(), self.fin.astype("<u8").tobytes()])


def decode_segment(data: bytes) -> tuple[SegmentStatement, int]:
    """Parse a segment statement at the start of ``data``; returns it and the bytes consumed."""
    reader = ByteReader(data, StatementFormatError, "truncated segment statement")
    take = reader.take

    if take(4) != MAGIC or take(1)[0] != VERSION:
        raise StatementFormatError("not a memjit segment statement (bad magic or version)")
    (blen,) = struct.unpack("<I", take(4))
    raw = take(blen)
    base, used = decode_statement(raw)
    if used != blen:
        raise StatementFormatError("segment's base statement has trailing bytes")
    if base.input or base.output_len:
        raise StatementFormatError("a segment's base statement carries no input or output")
    run = take(RUN_BYTES)
    (index,) = struct.unpack("<I", take(4))
    start = State(*struct.unpack("<4I", take(16)))
    flag = take(1)[0]
    if flag > 1:
        raise StatementFormatError("non-canonical final flag")
    end = None if flag else State(*struct.unpack("<4I", take(16)))
    if end is not None and (base.trap is not None or base.result is not None):
        raise StatementFormatError("a segment that continues has no outcome")
    (k,) = struct.unpack("<I", take(4))
    if k > MAX_KEYS:
        raise StatementFormatError("too many memory keys")
    keys = np.frombuffer(take(4 * k), "<u4").astype(np.uint64)
    init = np.frombuffer(take(8 * k), "<u8").astype(np.uint64)
    fin = np.frombuffer(take(8 * k), "<u8").astype(np.uint64)
    if k and (np.any(np.diff(keys.astype(np.int64)) <= 0) or keys[-1] >= 1 << T.KEY_BITS):
        raise StatementFormatError("memory keys must be increasing and below 2^25")
    frame = is_frame(keys)
    for v in (init, fin):
        if np.any(v[~frame] > _M32) or np.any(v[frame] & _M32 >= P) or \
                np.any(v[frame] >> np.uint64(32) >= P):
            raise StatementFormatError("a memory value outside its limbs (32-bit word, or two "
                                       "field elements of a call frame)")
    return SegmentStatement(base, run, index, start, end, keys, init, fin), reader.pos


# --- memory values -------------------------------------------------------------------------------

def is_frame(keys: np.ndarray) -> np.ndarray:
    """Which keys are call-frame records (two 32-bit limbs rather than 8 nibbles)."""
    return (keys >= T.FRAME) & (keys < T.GLOBAL)


def to_limbs(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(K, 8) limbs of the values at ``keys``, in the AIR's forms."""
    values = np.asarray(values, np.uint64)
    out = T.nibbles(values & _M32)
    frame = is_frame(np.asarray(keys, np.uint64))
    out[frame] = 0
    out[frame, 0], out[frame, 1] = values[frame] & _M32, values[frame] >> np.uint64(32)
    return out


def from_limbs(keys: np.ndarray, limbs: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_limbs`."""
    limbs = np.asarray(limbs, np.uint64)
    words = (limbs << (4 * np.arange(8, dtype=np.uint64))).sum(axis=1, dtype=np.uint64)
    return np.where(is_frame(np.asarray(keys, np.uint64)),
                    limbs[:, 0] | (limbs[:, 1] << np.uint64(32)), words)


class MemoryImage:
    """The whole memory of a run (every key space) between segments: a dense u64 array over
    the 2^25 keys, allocated lazily by the OS (only the touched pages cost memory)."""

    def __init__(self, prog: VmProgram, args: tuple[int, ...], input_bytes: bytes) -> None:
        self.values = np.zeros(1 << T.KEY_BITS, np.uint64)
        keys, vals = public_init(prog, args, input_bytes)
        self.values[keys.astype(np.int64)] = vals

    def read(self, keys: np.ndarray) -> np.ndarray:
        return self.values[np.asarray(keys, np.int64)]

    def holds(self, keys: np.ndarray, values: np.ndarray) -> bool:
        """Whether the memory holds ``values`` at ``keys``."""
        return bool(np.array_equal(self.read(keys), np.asarray(values, np.uint64)))

    def write(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.values[np.asarray(keys, np.int64)] = values


# --- the AIR -------------------------------------------------------------------------------------

def boundary_constraints(b: ConstraintBuilder, c: View, nx: View, end: State) -> None:
    """A segment that continues: its last row neither halts (a return at depth 0) nor traps,
    and the state that row computes for its successor is ``end``."""
    switch = nx.s_pad - c.s_pad
    for value, public in zip(next_state(c), end):
        b.transition(switch * (value - public))
    b.transition(switch * c.s("return") * c.dz)
    b.transition(switch * c.s("unreachable", *TRAP_ROWS))


class SegmentAir(VmAir):
    """The VM AIR for one segment: it starts in the public state ``start`` (not the export's
    entry), ends in ``end`` or halts, and every memory key is public at both ends."""

    name = "wasm_vm/i32-v3/segment"

    def __init__(self, program: VmProgram, segment: SegmentStatement) -> None:
        self.segment = segment
        start, end = segment.start, segment.end
        if len(segment.keys) > 1 << segment.base.log_n:
            raise ValueError("more memory keys than trace rows")
        for state in (start,) if end is None else (start, end):
            if state.pc >= len(program.rom) or state.fp >= T.MAX_ADDR \
                    or state.depth >= T.MAX_ADDR or state.pages > program.end_pages:
                raise ValueError("segment state outside the program's bounds")
        super().__init__(VmInputs(program, segment.base))

    def public_inputs_bytes(self) -> bytes:
        return self.segment.encode()

    def results_of(self, exp, st: VmStatement) -> int:
        return super().results_of(exp, st) if self.segment.final else 0

    @cached_property
    def public_memory(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        s = self.segment
        return s.keys, to_limbs(s.keys, s.init), s.keys, to_limbs(s.keys, s.fin)

    def control(self, b: ConstraintBuilder, c: View, nx: View) -> None:
        s, start = self.segment, self.segment.start
        control_constraints(b, c, nx, start.pc, s.steps, self.fp_limit, s.base.trap, start.pages,
                            start_fp=start.fp, start_depth=start.depth, halts=s.final)
        if s.end is not None:
            boundary_constraints(b, c, nx, s.end)
        b.every_row(c.mpub - c.mact)
        b.every_row(c.mout - c.mact)
