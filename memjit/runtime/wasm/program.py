"""The lowered program: a flat, pc-addressed instruction ROM plus the module's initial state.

A :class:`Program` is a deterministic function of the module bytes; its ROM (:meth:`to_rows`)
together with the initial memory and globals is what a verification key commits to.

Machine model (what the tracer executes and the VM AIR will constrain):

- One value stack of 32-bit slots. An i64 takes two slots, low word first: the lowering
  expands every i64 instruction into i32 rows (:mod:`memjit.runtime.wasm.int64`), so the ROM holds i32
  instructions only and every slot, global and operand is a 32-bit word. A call frame starts
  at ``fp``: ``stack[fp : fp+nparams]`` are the arguments, the declared locals follow (zeroed
  by ``i32.const 0`` rows at the function entry), then the i64 scratch locals of a function
  that needs them, then the operand stack. Before the instruction at ``pc`` the stack pointer
  is exactly ``sp = fp + sh[pc]``: every height is static.
- Control flow is flat: ``block``/``loop``/``end``/``nop``/``drop`` disappear, ``if`` becomes
  ``br_eqz``, the fallthrough out of a then-branch a ``br``. Every transfer carries
  ``(target, drop, keep)``: the top ``keep`` slots (0 or 1) move down by ``drop`` slots,
  then ``sp -= drop`` (``keep`` is 0 whenever ``drop`` is 0: nothing moves). A branch that
  carries an i64 first moves its two words with ``local.set`` rows, then transfers nothing.
- ``call`` pushes a frame record ``(return pc, caller fp)`` in its own address space and jumps
  to the callee's entry with ``fp = sp - nparams``; ``return`` moves the results to ``fp`` and
  pops the record (the return of the outermost call halts).
- ``br_table`` rows are followed by ``n + 1`` ``br_entry`` rows (the last one the default);
  the function table of ``call_indirect`` is a run of ``table_entry`` rows at ``table_base``.
  Those rows are data, never executed.

ROM row layout (:data:`ROM_COLUMNS`, all ``uint64``; ``imm`` as two's-complement bits)::

    op              imm                  arg1            arg2        arg3
    i32.const       value bits           -               -           -
    local.*         local index          -               -           -
    global.*        global index         -               -           -
    loads/stores    memarg offset        align (log2)    -           -
    br, br_if,      -                    target pc       drop        keep
      br_eqz
    br_table        n (labels w/o dflt)  -               -           -
    br_entry        entry index i        target pc       drop        keep
    return          -                    -               drop        keep
    call            function index       entry pc        nparams     nresults
    call_indirect   type id              table_base      table size  nparams
    table_entry     function index or -1 entry pc        nparams     type id or -1
    others          -                    -               -           -

``sh`` is the static stack height above ``fp`` before the row; type ids are canonical (the
first structurally equal type's index), so a ``call_indirect`` type check is an equality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from memjit.errors import BadInput
from memjit.runtime.wasm.opcodes import OP_NAMES

PAGE = 65536
INPUT_GLOBAL, OUTPUT_GLOBAL = "memjit_input", "memjit_output"
BUFFER_GLOBALS = (INPUT_GLOBAL, OUTPUT_GLOBAL)
"""Exported immutable i32 globals that hold the addresses of a worker's input and output bytes."""
ROM_COLUMNS = ("pc", "op", "imm", "arg1", "arg2", "arg3", "sh")
"""Columns of :meth:`Program.to_rows`, in order."""


@dataclass(frozen=True)
class Signature:
    """An exported function's index and value types (``"i32"`` / ``"i64"``)."""

    func: int
    params: tuple[str, ...]
    results: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Program:
    """A lowered module: ROM columns (numpy, one entry per pc) and the initial state.

    Per-pc metadata outside the ROM: ``fuel`` (wasmtime's static cost of the original
    instruction, see :func:`memjit.runtime.wasm.opcodes.wasm_fuel` and
    :func:`memjit.runtime.wasm.lower.static_grow_fuel`; the tracer adds the dynamic part),
    ``loop_header`` (wasmtime checks fuel on every arrival there), ``func`` (owning function,
    -1 for table rows) and ``offset`` (byte offset of the original instruction, -1 for
    synthetic rows).
    """

    op: np.ndarray  # uint8
    imm: np.ndarray  # int64
    arg1: np.ndarray  # int64
    arg2: np.ndarray  # int64
    arg3: np.ndarray  # int64
    sh: np.ndarray  # int64
    fuel: np.ndarray  # uint8
    loop_header: np.ndarray  # uint8
    func: np.ndarray  # int32
    offset: np.ndarray  # int64
    func_entry: np.ndarray  # int64, per function
    func_nparams: np.ndarray  # int64
    func_nlocals: np.ndarray  # int64 (params + declared locals)
    func_frame: np.ndarray  # int64, largest stack height above fp
    table_base: int
    table_size: int
    exports: dict[str, Signature]
    has_memory: bool
    mem_min: int  # pages
    mem_max: int  # pages (65536 when undeclared)
    data_segments: tuple[tuple[int, bytes], ...]  # (offset, bytes), in order
    globals_init: np.ndarray  # uint64, 32-bit words (an i64 global is two: low, then high)
    init_trap: str | None  # trap raised while instantiating (segment out of bounds)
    init_fault: str | None  # why instantiation traps (which segment lies where), for messages
    init_fuel: int  # fuel wasmtime charges at instantiation (see lower.instantiation_fuel)
    buffers: dict[str, int]  # tensor I/O: BUFFER_GLOBALS the module exports -> byte address

    def __len__(self) -> int:
        return len(self.op)

    def to_rows(self) -> np.ndarray:
        """The ROM as a ``(len, 7)`` uint64 matrix with columns :data:`ROM_COLUMNS`."""
        n = len(self.op)
        rows = np.empty((n, len(ROM_COLUMNS)), dtype=np.uint64)
        rows[:, 0] = np.arange(n, dtype=np.uint64)
        rows[:, 1] = self.op
        for j, col in enumerate((self.imm, self.arg1, self.arg2, self.arg3, self.sh), start=2):
            rows[:, j] = col.view(np.uint64)
        return rows

    def memory_image(self) -> np.ndarray:
        """The initial linear memory (``mem_min`` pages, data segments applied) as uint8."""
        image = np.zeros(self.mem_min * PAGE, dtype=np.uint8)
        if self.init_trap is None:
            for off, data in self.data_segments:
                image[off:off + len(data)] = np.frombuffer(data, dtype=np.uint8)
        return image

    def signature(self, export: str) -> Signature:
        """The signature of a function export, or BadInput naming the known ones."""
        sig = self.exports.get(export)
        if sig is None:
            known = ", ".join(sorted(self.exports)) or "none"
            raise BadInput(f"module has no function export {export!r} (functions: {known})")
        return sig

    def disassemble(self, start: int = 0, stop: int | None = None) -> str:
        """Human-readable listing of ROM rows ``start:stop`` (for debugging and tests)."""
        lines = []
        for pc in range(start, len(self.op) if stop is None else stop):
            lines.append(f"{pc:5d} {OP_NAMES[self.op[pc]]:<20} imm={self.imm[pc]} "
                         f"args=({self.arg1[pc]}, {self.arg2[pc]}, {self.arg3[pc]}) "
                         f"sh={self.sh[pc]} fuel={self.fuel[pc]}"
                         + (" loop" if self.loop_header[pc] else ""))
        return "\n".join(lines)


def convert_args(sig: Signature, export: str, args: list[int] | tuple[int, ...]) -> np.ndarray:
    """Integer arguments as the 32-bit words of the callee's parameter slots (an i64 is two:
    low, then high), checked against the export's signature."""
    if len(args) != len(sig.params):
        raise BadInput(f"export {export!r} takes {len(sig.params)} argument(s) "
                       f"({', '.join(sig.params)}), got {len(args)}")
    out = []
    for i, (a, t) in enumerate(zip(args, sig.params)):
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise BadInput(f"argument {i} of {export!r} must be an integer, got {a!r}")
        bits = 32 if t == "i32" else 64
        if not -(1 << (bits - 1)) <= int(a) < 1 << (bits - 1):
            raise BadInput(f"argument {i} of {export!r} = {a} is out of {t} range")
        v = int(a) & ((1 << bits) - 1)
        out += [v & 0xFFFFFFFF, v >> 32][:bits // 32]
    return np.array(out, dtype=np.uint64)


def typed_results(types: tuple[str, ...], words: Sequence[int]) -> tuple[int, ...]:
    """The signed values of results held in 32-bit words (an i64 in two: low, then high)."""
    out, k = [], 0
    for t in types:
        if t == "i64":
            out.append(signed(int(words[k]) | int(words[k + 1]) << 32, t))
            k += 2
        else:
            out.append(signed(int(words[k]), t))
            k += 1
    return tuple(out)


def signed(bits_value: int, t: str) -> int:
    """A raw result bit pattern as the signed integer wasmtime returns."""
    bits = 32 if t == "i32" else 64
    v = int(bits_value) & ((1 << bits) - 1)
    return v - (1 << bits) if v >> (bits - 1) else v
