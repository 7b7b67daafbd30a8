"""The VM AIR: constraints of one execution of a lowered WASM program (i32 core).

One row per executed instruction, then padding no-ops; in the same rows, the memory table
(one entry per touched key). Modules: :mod:`.columns` (layout), :mod:`.control` (selectors,
slots, pc/fp/depth flow, start and halt), :mod:`.alu` (values), :mod:`.memory` (loads/stores,
memory table), :mod:`.logup` (every lookup), :mod:`.tables` (tuples and public tables).
Soundness in brief:

* every row's (pc, op, immediates, targets, stack height) is a ROM entry (LogUp against the
  public execution profile); op = sum of one-hot selectors times their op ids;
* i32 values are 8 nibbles, range-checked when produced (nibble-triple lookups, which also
  compute and/or/xor); memory stores the nibble vectors, so every read value is in range;
* add/sub and comparisons use 16-bit halves with boolean carries (no 32-bit field values);
  signed order flips on pinned sign bits; zero tests use inverse witnesses of nibble sums;
  mul, shifts and rotations (amount mod 32 via a powers-of-two table) multiply in byte
  limbs with 12-bit carries; clz / ctz multiply by a looked-up 2^v (2^(31-v)) and pin the
  product's top bit (low word = 2^31), popcnt looks up nibble popcounts; div/rem prove
  |a| = |q| |b| + |r| with the engine and |r| < |b| by a range-checked slack (signed
  operands through complements and pinned signs, signed results by negation with carries);
  loads/stores address bytes inside one word (address + offset never wraps: their high
  halves sum below 2^12), in bounds by construction; an access past the memory's end is a
  trap row proving address + offset + bytes > 65536 * pages (halves with 12-bit carries);
  under-aligned accesses are byte accesses after lowering (memjit.runtime.wasm.access);
* br_table / call_indirect look up a second ROM row: the br_table entry min(index, n)
  (index >= n proven by a range-checked difference), or the function-table entry, whose
  type must equal the expected one; the page count is a state column (the VK's initial
  pages on the first row, changed only by a memory.grow within the VK's maximum, else it
  returns -1, and never past the VK's cap); every load/store's word lies below it
  (range-checked slack);
* one memory argument (value stack, globals, call frames): each slot access consumes
  (key, value, prev_ts) and produces (key, value', ts) with prev_ts < ts (12-bit limbs);
  the memory table initialises every key exactly once (keys strictly increasing, < 2^25,
  ending at a public sentinel) to zero or, for a public key (arguments, globals, data
  words), to the public value, and consumes the final (value, ts) of every key;
* tensor I/O: the input bytes are part of the public initial memory (written over the data
  words at the VK's input buffer); each output word is consumed, as the final value of its
  key, by a memory-table row flagged ``mout`` against a public (PUBOUT, key, value) tuple;
* every constraint has degree <= 3 (the composition polynomial has two segments and is
  evaluated on a 2n coset): flags and products that would multiply into degree 4 are
  committed columns pinned by their definitions (xz, dz, sg, the engine's multiplicand bytes
  v0..v3, the pages grown in w, the byte-3 flag and the type-mismatch product in d1), and
  LogUp batches two terms per auxiliary column;
* the run starts at the export's entry with fp = depth = 0, ends with a return at depth 0
  after exactly ``steps`` rows, and the final value of stack slot 0 is the result; or, for a
  trap statement, ends (at any depth) with a row proving that trap: ``unreachable``, or a
  trap row (isa.TRAP_ROWS: the instruction's op id, its operands proving division by zero,
  INT_MIN / -1, a table index out of bounds, a null entry, a type mismatch, a memory
  access or a precompile call's operand out of bounds).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from circuits.air import Air, ConstraintBuilder, Degree
from circuits.field import Fp4
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.alu import value_constraints
from circuits.wasm_vm.columns import WIDTH
from circuits.wasm_vm.control import control_constraints
from circuits.wasm_vm.isa import OP_IDS
from circuits.wasm_vm.logup import TERMS_PER_COLUMN, aux_columns, logup_constraints, lookup_terms
from circuits.wasm_vm.memory import memory_table_constraints
from circuits.wasm_vm.program import VmProgram
from circuits.wasm_vm.statement import VmStatement
from circuits.wasm_vm.tensor import TENSOR_WIDTH, Row as TensorRow, cpu_constraints, \
    table_constraints, uses_tensor
from circuits.wasm_vm.view import View

MAX_LOG_N = 22  # timestamps 3n + 3 < 2^24 = two 12-bit limbs


@dataclass(frozen=True, eq=False)
class VmInputs:
    """Public inputs: the program (from the VK) and the statement about one call."""

    program: VmProgram
    statement: VmStatement


def memory_words(prog: VmProgram, input_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Word indices and values of the initial linear memory: the data words, with the input
    bytes written over them at the input buffer (zero words included)."""
    idx, val = prog.data_index.astype(np.uint64), prog.data_value.astype(np.uint64)
    if not input_bytes:
        return idx, val
    lo, end = prog.input_addr // 4, prog.input_addr + len(input_bytes)
    hi = -(-end // 4)
    inside = (idx >= lo) & (idx < hi)
    buf = np.zeros(hi - lo, dtype="<u4")
    buf[(idx[inside] - lo).astype(np.int64)] = val[inside]
    raw = buf.view(np.uint8)
    raw[prog.input_addr - 4 * lo:end - 4 * lo] = np.frombuffer(input_bytes, np.uint8)
    return (np.concatenate([idx[~inside], np.arange(lo, hi, dtype=np.uint64)]),
            np.concatenate([val[~inside], buf.astype(np.uint64)]))


def output_keys(prog: VmProgram, n_words: int) -> np.ndarray:
    """Memory keys of the ``n_words`` output words a statement binds."""
    if not n_words:
        return np.zeros(0, np.uint64)
    return T.MEMORY + prog.output_addr // 4 + np.arange(n_words, dtype=np.uint64)


def public_init(prog: VmProgram, args: tuple[int, ...],
                input_bytes: bytes = b"") -> tuple[np.ndarray, np.ndarray]:
    """Keys and 32-bit values of the non-zero initial memory: arguments, globals, data words
    and the input."""
    words, values = memory_words(prog, input_bytes)
    keys = [T.STACK + np.arange(len(args), dtype=np.uint64),
            T.GLOBAL + np.arange(len(prog.globals_init), dtype=np.uint64),
            T.MEMORY + words]
    vals = [np.array(args, dtype=np.uint64), prog.globals_init & np.uint64(0xFFFFFFFF), values]
    k, v = np.concatenate(keys), np.concatenate(vals)
    return k[v != 0], v[v != 0]


def fp_limit(prog: VmProgram) -> int:
    """The largest frame pointer a call may create: fp + sh stays below the stack's end."""
    return T.MAX_ADDR - 1 - (int(prog.rom[:, 6].max(initial=0)) if len(prog.rom) else 0)


class VmAir(Air):
    """The VM AIR for one statement; rejects (ValueError) statements outside its bounds."""

    name = "wasm_vm/i32-v3"
    width = WIDTH
    num_challenges = 2  # alpha (LogUp), beta (tuple fingerprints)
    lookup_width = T.TUPLE_LEN

    def __init__(self, public_inputs: VmInputs) -> None:
        prog, st = public_inputs.program, public_inputs.statement
        if not 1 <= st.log_n <= MAX_LOG_N:
            raise ValueError(f"trace of 2^{st.log_n} rows out of range")
        n = 1 << st.log_n
        exp = prog.exports.get(st.export)
        if exp is None:
            raise ValueError(f"program has no export {st.export!r}")
        if len(st.args) != exp.nparams or len(st.result_words) != self.results_of(exp, st):
            raise ValueError("arguments or result do not match the export's signature")
        if any(a >= 1 << 32 for a in st.args) or (st.result or 0) >= 1 << (32 * (1 + st.wide)):
            raise ValueError("arguments and result words must be 32-bit")
        if not 1 <= st.steps < n:
            raise ValueError("steps must be in [1, trace length)")
        max_sh = int(prog.rom[:, 6].max(initial=0)) if len(prog.rom) else 0
        if max_sh >= T.MAX_ADDR // 2 or len(prog.globals_init) >= T.MAX_ADDR \
                or prog.end_pages > T.MAX_MEMORY_PAGES:
            raise ValueError("program too large for the VM's key spaces")
        indexed = np.isin(prog.rom[:, 1], [OP_IDS["br_table"], OP_IDS["call_indirect"]])
        if np.any(prog.rom[indexed, 2] >= 1 << 16):
            raise ValueError("a br_table or call_indirect immediate is too large for the VM")
        memory_bytes = prog.mem_pages * 65536
        if st.input and (prog.input_addr is None or prog.input_addr + len(st.input) > memory_bytes):
            raise ValueError("the input does not fit the program's input buffer")
        if st.output_len and (prog.output_addr is None or st.output_offset != prog.output_addr % 4
                              or prog.output_addr + st.output_len > memory_bytes):
            raise ValueError("the output does not match the program's output buffer")
        table_size = len(prog.rom) + T.N_FIXED
        if len(st.mult_index) and int(st.mult_index[-1]) >= table_size:
            raise ValueError("multiplicity index outside the public tables")
        if int(st.mult_count.sum()) > 40 * n:
            raise ValueError("multiplicities exceed the number of lookups")
        super().__init__(public_inputs, n)
        self.program, self.statement, self.entry = prog, st, exp.entry
        self.end_key = T.MEMORY + prog.end_pages * T.PAGE_WORDS
        self.fp_limit = fp_limit(prog)
        self._sum_key: tuple | None = None
        self._sum = np.zeros(4, dtype=np.uint64)
        self.tensor = uses_tensor(prog.rom)
        self.width = WIDTH + (TENSOR_WIDTH if self.tensor else 0)  # the table: its own columns
        self.terms_per_row = len(lookup_terms(View([Degree(1)] * self.width), self.tensor))
        self.aux_width = -(-self.terms_per_row // TERMS_PER_COLUMN)

    def public_inputs_bytes(self) -> bytes:
        return self.statement.encode()

    def results_of(self, exp, st: VmStatement) -> int:
        """How many result words the statement must carry (none after a trap)."""
        return exp.nresults if st.trap is None else 0

    # --- public side of the LogUp sum ----------------------------------------------------------

    @cached_property
    def public_init(self) -> tuple[np.ndarray, np.ndarray]:
        return public_init(self.program, self.statement.args, self.statement.input)

    @cached_property
    def public_memory(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Keys and limbs (m, 8) of the public initial memory, and of the bound final words."""
        keys, vals = self.public_init
        return (keys, T.nibbles(vals), output_keys(self.program, len(self.statement.output_words)),
                T.nibbles(self.statement.output_words))

    @cached_property
    def public_lookups(self) -> tuple[np.ndarray, np.ndarray]:
        """The public side of the LogUp sum as tuples (m, TUPLE_LEN) and their multiplicities:
        the used entries of the concatenated public table (ROM, then the fixed tables), the
        public initial memory (MEM, key, nibbles, ts 0) with its keys (PUBKEY, key), and the
        bound output words (PUBOUT, key, nibbles)."""
        rom = T.pad_tuples(T.rom_tuples(self.program.rom))
        idx = self.statement.mult_index.astype(np.int64)
        L = len(rom)
        table = np.empty((len(idx), T.TUPLE_LEN), dtype=np.uint64)
        table[idx < L] = rom[idx[idx < L]]
        table[idx >= L] = T.FIXED[idx[idx >= L] - L]
        keys, limbs, out_keys, out_limbs = self.public_memory
        mem = np.zeros((len(keys), T.TUPLE_LEN), dtype=np.uint64)
        mem[:, 0], mem[:, 1] = T.MEM, keys
        mem[:, 2:10] = limbs
        pub = np.zeros((len(keys), T.TUPLE_LEN), dtype=np.uint64)
        pub[:, 0], pub[:, 1] = T.PUBKEY, keys
        out = np.zeros((len(out_keys), T.TUPLE_LEN), dtype=np.uint64)
        out[:, 0], out[:, 1] = T.PUBOUT, out_keys
        out[:, 2:10] = out_limbs
        ones = np.ones(2 * len(keys) + len(out_keys), dtype=np.uint64)
        return (np.concatenate([table, mem, pub, out]),
                np.concatenate([self.statement.mult_count.astype(np.uint64), ones]))

    def lookup_denominators(self) -> int:
        """Every row's terms (padding rows too) and the public side."""
        return self.terms_per_row * self.trace_length + len(self.public_lookups[0])

    def public_sum(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """sum over the public side (:attr:`public_lookups`) of m / (alpha - fingerprint);
        raises ZeroDenominator if a public tuple's fingerprint equals alpha."""
        key = (alpha.tobytes(), beta.tobytes())
        if self._sum_key != key:
            self._sum = T.logup_sum(*self.public_lookups, alpha, beta)
            self._sum_key = key
        return self._sum

    def build_aux_trace(self, main: np.ndarray, challenges: list[np.ndarray]) -> np.ndarray:
        return aux_columns(main, challenges, self.tensor)

    def eval(self, b: ConstraintBuilder) -> None:
        c, nx = View(b.main_cur), View(b.main_nxt)
        self.control(b, c, nx)
        value_constraints(b, c, self.program.max_pages, self.program.end_pages)
        memory_table_constraints(b, c, nx, self.statement.result_words, self.end_key)
        alpha, beta = b.challenges
        public = None if isinstance(alpha, Degree) else Fp4(self.public_sum(alpha.v, beta.v))
        if self.tensor:
            cpu_constraints(b, c)
            table_constraints(b, TensorRow(b.main_cur), TensorRow(b.main_nxt))
        logup_constraints(b, c, public, self.tensor)

    def control(self, b: ConstraintBuilder, c: View, nx: View) -> None:
        """Control flow from the export's entry to the halt the statement names (a segment of
        a longer run, circuits.wasm_vm.segment, starts and ends elsewhere)."""
        control_constraints(b, c, nx, self.entry, self.statement.steps, self.fp_limit,
                            self.statement.trap, self.program.mem_pages)
