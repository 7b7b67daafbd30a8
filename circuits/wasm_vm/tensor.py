"""The tensor table: memjit's precompiles (dot products of int8 vectors) proven in rows of
their own, four multiply-accumulates per row, beside the CPU rows of the VM AIR.

A precompile call is one CPU row (selector ``memjit.dot_i8i8`` or ``memjit.dot_i8u8``; slots:
n at sp-1 in X, b at sp-2 in Y, a at sp-3 in Q, the result written there in R) and a run of
``n / 4`` table rows, one per 32-bit word of each operand. The table's columns exist only in
the trace of a program whose ROM holds a precompile (``VmAir.tensor``), so other programs pay
nothing. Soundness:

* **Operands from the memory argument.** Row j of a call reads word a/4 + j and word b/4 + j
  as ordinary memory accesses: it consumes (MEM, key, nibbles, prev_ts) and produces the same
  value with the call's timestamp 3 clk + 1, prev_ts < 3 clk + 1 by two 12-bit limbs; so it
  sees exactly the memory the program wrote before the call (a word read twice in one call,
  overlapping operands, has no proof: its second read would need prev_ts < prev_ts).
  Nibbles come from memory, so they are range-checked.
* **Signed bytes.** Byte i of a word is lo + 16 hi - 256 s with s its sign bit, pinned by
  2 (hi - 8 s) in [0, 16) (three nibble-triple lookups per row for the eight bytes).
  ``dot_i8u8`` reads b's bytes unsigned: the row's sum is sum a_i ub_i - 256 (1 - kind) m with
  m = sum a_i sb_i a committed column (degree 3 at most).
* **Runs.** Consecutive rows of one call keep clk, kind, and step a, b and the count n_rows
  by one; a call's last row (``t_last``) produces (DOT, clk, kind, a, b, n, sum) on the bus,
  the CPU row consumes the same tuple, so every call has exactly one run and no run exists
  without its call. The next row starts a fresh sum.
* **Sizes.** The CPU row requires n < 2^12 (nibbles 3..7 of X zero) and a, b < 2^28 (top
  nibble zero): |sum| < 2^12 * 2^15 < 2^30, so the field sum is the integer sum, and the
  result's signed value v = R - 2^32 s (s pinned with R's top two bits equal: 1024 (R7 - 12 s)
  in [0, 4096)) equals it exactly (both lie in (-2^30, 2^30)). n = 4 n_rows and a = 4 word
  make n and the addresses multiples of 4 (a non-multiple has no word index below 2^25).
* **Bounds.** The CPU row proves a + n and b + n at most the memory's size (range-checked
  slacks), so every word the table reads is inside the current memory; a call whose operand
  leaves it is a trap row instead (:func:`trap_constraints`), the run's last.
"""

from __future__ import annotations

from circuits.air import ConstraintBuilder
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.columns import NIBBLES, WIDTH
from circuits.wasm_vm.isa import DOT_TRAPS, DOTS, OP_IDS
from circuits.wasm_vm.view import View
DOT = 12
"""Tuple tag of a call on the bus: (DOT, clk, kind, a, b, n, signed result)."""
NAMES: list[str] = ["t_act", "t_kind", "t_last", "t_clk", "t_a", "t_b", "t_n", "t_acc", "t_m"]
NAMES += [f"t_x{i}" for i in range(NIBBLES)] + [f"t_y{i}" for i in range(NIBBLES)]
NAMES += [f"t_sa{i}" for i in range(4)] + [f"t_sb{i}" for i in range(4)]
NAMES += ["t_pa", "t_pb", "t_la", "t_ha", "t_lb", "t_hb"]
TCOL: dict[str, int] = {name: WIDTH + i for i, name in enumerate(NAMES)}
"""Tensor-table column -> index in the main trace (after the VM's WIDTH columns)."""
TENSOR_WIDTH = len(NAMES)


def uses_tensor(rom) -> bool:
    """Whether a program's ROM (rows of (pc, op, ...)) calls a precompile: then its trace has
    the tensor table's columns."""
    ops = {OP_IDS[d] for d in DOTS}
    return bool(len(rom)) and any(int(o) in ops for o in set(rom[:, 1].tolist()))


class Row:
    """The tensor table's columns of one row (values of any evaluation context)."""

    def __init__(self, row) -> None:
        self.row = row

    def __getattr__(self, name: str):
        return self.row[TCOL["t_" + name]]

    def nibbles(self, op: str) -> list:
        """The operand's word (a: t_x, b: t_y) as its memory nibbles."""
        reg = {"a": "x", "b": "y"}[op]
        return [self.row[TCOL[f"t_{reg}{i}"]] for i in range(NIBBLES)]

    def signs(self, op: str) -> list:
        return [self.row[TCOL[f"t_s{op}{i}"]] for i in range(4)]

    def bytes(self, op: str, signed: bool = True) -> list:
        """The operand's four bytes: lo + 16 hi (- 256 s when signed)."""
        x, s = self.nibbles(op), self.signs(op)
        return [x[2 * i] + 16 * x[2 * i + 1] - (256 * s[i] if signed else 0) for i in range(4)]

    def contribution(self):
        """The row's four multiply-accumulates (degree 2)."""
        a, ub = self.bytes("a"), self.bytes("b", signed=False)
        prods = [a[i] * ub[i] for i in range(4)]
        return sum(prods[1:], prods[0]) - 256 * (1 - self.kind) * self.m


def signed_result(c: View):
    """The CPU row's R as the signed value the table's sum must equal: R - 2^32 sb, written as
    its low seven nibbles plus 16^7 (R7 - 16 sb) (no 32-bit field element)."""
    R = c.r("R")
    low = sum((R[i] * 16 ** i for i in range(1, 7)), R[0])
    return low + 16 ** 7 * (R[7] - 16 * c.sb)


def word(limbs: list):
    """A register below 2^28 (top nibble zero) as one field element."""
    return sum((limbs[i] * 16 ** i for i in range(1, 7)), limbs[0])


def cpu_constraints(b: ConstraintBuilder, c: View) -> None:
    """Precompile rows: operands in the table's ranges (a, b < 2^28, n < 2^12) and inside the
    memory, the result's sign bit boolean (its range: :func:`lookup_terms`); and the calls'
    trap rows.

    Inside the memory: 65536 pages - a - n = 4 (cm0 + 4096 cm1) and 65536 pages - b - n =
    4 (d0 + 4096 d1), slacks of two range-checked 12-bit limbs (pages <= 1024, so no side
    wraps): every word the table reads lies below the current page count. The memory table
    alone would not do: its end sentinel, one word past the memory, is a key it holds (zero)."""
    dot = c.s(*DOTS)
    X, Y, Q = c.r("X"), c.r("Y"), c.r("Q")
    b.every_row(dot * Q[7])
    b.every_row(dot * Y[7])
    for i in range(3, NIBBLES):
        b.every_row(dot * X[i])
    b.every_row(dot * c.sb * (c.sb - 1))
    size, n = 65536 * c.pages, word(X)
    b.every_row(dot * (4 * (c.cm0 + 4096 * c.cm1) - size + word(Q) + n))
    b.every_row(dot * (4 * (c.d0 + 4096 * c.d1) - size + word(Y) + n))
    trap_constraints(b, c)


def trap_constraints(b: ConstraintBuilder, c: View) -> None:
    """A call's out-of-bounds trap row (isa.DOT_TRAPS: WebAssembly's trap, as wasmtime's host
    function raises it): it reads n (X), b (Y) and a (Q, written back unchanged: R = Q) as the
    call does, and proves that one operand's last byte lies at or past the memory's end,
    op + n - 1 - 65536 pages = Z + 2^32 cm1 >= 0, with op = a, or b when the bit o0 says so.
    The sum runs in 16-bit halves (65535 added to the low one, 1 taken from the high one, so
    that the low carry cm0 is never negative): Z's nibbles are range-checked, cm0 and cm1 are
    12-bit limbs, so both halves hold over the integers and the distance is non-negative
    (a negative one would need a carry near p). The operands are full 32-bit words here: the
    table's size bounds (:func:`cpu_constraints`) are for the calls it proves."""
    trap, o = c.s(*DOT_TRAPS), c.o0
    Q, R = c.r("Q"), c.r("R")
    for i in range(NIBBLES):
        b.every_row(trap * (R[i] - Q[i]))
    lo, hi = (lambda v: c.half(v, False)), (lambda v: c.half(v, True))
    op_lo = lo("Q") + o * (lo("Y") - lo("Q"))
    op_hi = hi("Q") + o * (hi("Y") - hi("Q"))
    b.every_row(trap * (op_lo + lo("X") + 65535 - lo("Z") - 65536 * c.cm0))
    b.every_row(trap * (op_hi + hi("X") + c.cm0 - 1 - c.pages - hi("Z") - 65536 * c.cm1))


def table_constraints(b: ConstraintBuilder, t: Row, tn: Row) -> None:
    """Flags, runs, sums and timestamps of the table (see the module docstring)."""
    for v in (t.act, t.kind, t.last, *t.signs("a"), *t.signs("b")):
        b.every_row(v * (v - 1))
    b.every_row(t.last * (1 - t.act))
    b.transition((1 - t.act) * tn.act)  # active rows first
    a, sb = t.bytes("a"), t.signs("b")
    b.every_row(t.m - sum((a[i] * sb[i] for i in range(1, 4)), a[0] * sb[0]))
    more = 1 - t.last  # the next row continues this call
    b.transition(tn.act * (tn.acc - more * t.acc - tn.contribution()))
    b.transition(tn.act * (tn.n - more * t.n - 1))
    for col, step in (("clk", 0), ("kind", 0), ("a", 1), ("b", 1)):
        b.transition(tn.act * more * (getattr(tn, col) - getattr(t, col) - step))
    b.first_row(t.acc - t.contribution())
    b.first_row(t.n - t.act)
    for p, lo, hi in (("pa", "la", "ha"), ("pb", "lb", "hb")):
        b.every_row(3 * t.clk - getattr(t, p) - getattr(t, lo) - 4096 * getattr(t, hi))


def lookup_terms(c: View, t: Row, first: int) -> list[tuple]:
    """The CPU rows' and the table's LogUp terms, numbered from ``first`` in the row's list
    (Delta is logup's: the same memory tuple with the call's timestamp)."""
    from circuits.wasm_vm.logup import Delta, Lin  # logup imports this module

    dot = c.s(*DOTS)
    R = c.r("R")
    terms: list[tuple] = [
        (-dot, [DOT, c.clk, c.s(DOTS[1]), word(c.r("Q")), word(c.r("Y")), word(c.r("X")),
                signed_result(c)]),
        (-dot, [T.U12, Lin(0, ((R[7], 1024), (c.sb, -12288)))]),
    ]
    return terms + table_terms(t, Delta, Lin, first + len(terms))


def table_terms(t: Row, Delta, Lin, first: int) -> list[tuple]:
    """The table rows' terms, numbered from ``first``: two memory reads, their timestamp
    limbs, the sign pins, the call's tuple."""
    terms: list[tuple] = []
    for op, prev in (("a", t.pa), ("b", t.pb)):
        key = Lin(T.MEMORY, ((getattr(t, op), 1),))
        terms.append((-t.act, [T.MEM, key, *t.nibbles(op), prev]))
        terms.append((t.act, Delta(first + len(terms) - 1, 3 * t.clk + 1 - prev)))
    terms += [(-t.act, [T.U12, getattr(t, n)]) for n in ("la", "ha", "lb", "hb")]
    highs = t.nibbles("a")[1::2] + t.nibbles("b")[1::2]
    signs = t.signs("a") + t.signs("b")
    pins = [2 * (h - 8 * s) for h, s in zip(highs, signs)] + [0]
    terms += [(-t.act, [T.R3, *pins[k:k + 3]]) for k in (0, 3, 6)]
    terms.append((t.last, [DOT, t.clk, t.kind, 4 * (t.a - t.n + 1), 4 * (t.b - t.n + 1),
                           4 * t.n, t.acc]))
    return terms
