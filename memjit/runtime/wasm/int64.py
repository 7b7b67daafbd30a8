"""i64 as pairs of i32: every i64 instruction lowered to rows of the i32 VM.

The VM AIR proves 32-bit words. As on the 32-bit zkVMs (RISC Zero and SP1 run RV32IM, where the
compiler legalizes 64-bit arithmetic), an i64 value here is two stack slots, the low word
below the high word, and each i64 instruction becomes a short sequence of i32 rows that use a
few scratch locals of the function. Soundness therefore needs no new constraint: each row is
an i32 row the AIR already proves, and the expansion's correctness is checked against
wasmtime on every traced call (and by the differential tests).

Shapes (``h`` = the stack before, high word on top): loads and stores are two 32-bit accesses
(a trap in either is the instruction's ``memory_out_of_bounds``; a store writes the high word
first, so that it traps before writing anything; see :mod:`.access`); add/sub carry through
``i32.lt_u``; comparisons decide on the high words unless they are equal; shifts and rotations
by a variable amount are branch-free (the amount's bit 5 selects the halves); multiplication
takes the 64-bit product of the low words from ``i32.mul`` and ``i32.mulhu`` (the high word of
the 32 x 32 product, a row of the AIR's product engine); division is i32 division when both
operands fit 32 bits and otherwise *advice*: the prover supplies quotient and remainder
(``advice`` rows, computed by the tracer) and i32 rows check q*d + r = n with r < d, ending in
one ``assert_eqz`` that no wrong advice can prove; the traps are raised by the i32 division
that traps on the same condition. Only ``i32.mulhu``, ``advice`` and ``assert_eqz`` needed
constraints of their own (memjit.runtime.wasm.opcodes.LOWERING_OPS).
"""

from __future__ import annotations

from typing import Callable

from memjit.runtime.wasm import access
from memjit.runtime.wasm.emit import Emitter, Label
from memjit.runtime.wasm.opcodes import ADVICE, ASSERT_EQZ, OP

SHIFTS = ("i64.shl", "i64.shr_s", "i64.shr_u", "i64.rotl", "i64.rotr")


def const(e: Emitter, value: int) -> None:
    e.const(value)
    e.const(value >> 32)


def select(e: Emitter) -> None:
    """[a_lo a_hi b_lo b_hi c] -> c ? a : b."""
    c, b_hi, b_lo, a_hi = e.s(0), e.s(1), e.s(2), e.s(3)
    for slot in (c, b_hi, b_lo, a_hi):
        e.set(slot)
    e.get(b_lo), e.get(c), e.select()
    e.get(a_hi), e.get(b_hi), e.get(c), e.select()


def _operands(e: Emitter) -> tuple[int, int, int]:
    """[a_lo a_hi b_lo b_hi] -> [a_lo]; returns the scratch slots (b_hi, b_lo, a_hi)."""
    b_hi, b_lo, a_hi = e.s(0), e.s(1), e.s(2)
    e.set(b_hi), e.set(b_lo), e.set(a_hi)
    return b_hi, b_lo, a_hi


def _bitwise(name: str) -> Callable[[Emitter], None]:
    def emit(e: Emitter) -> None:
        b_hi, b_lo, a_hi = _operands(e)
        e.get(b_lo), e.binary(name)
        e.get(a_hi), e.get(b_hi), e.binary(name)
    return emit


def _add(e: Emitter) -> None:
    b_hi, b_lo, a_hi = _operands(e)
    lo = e.s(3)
    e.get(b_lo), e.binary("i32.add"), e.tee(lo)
    e.get(b_lo), e.binary("i32.lt_u")  # the carry: lo < b_lo
    e.get(a_hi), e.binary("i32.add"), e.get(b_hi), e.binary("i32.add")
    e.set(a_hi), e.get(lo), e.get(a_hi)


def _sub(e: Emitter) -> None:
    b_hi, b_lo, a_hi = _operands(e)
    a_lo = e.s(3)
    e.tee(a_lo), e.get(b_lo), e.binary("i32.sub")
    e.get(a_lo), e.get(b_lo), e.binary("i32.lt_u"), e.set(a_lo)  # the borrow: a_lo < b_lo
    e.get(a_hi), e.get(b_hi), e.binary("i32.sub"), e.get(a_lo), e.binary("i32.sub")


def _equal(negate: bool) -> Callable[[Emitter], None]:
    def emit(e: Emitter) -> None:
        b_hi, b_lo = e.s(0), e.s(1)
        e.set(b_hi), e.set(b_lo)
        e.get(b_hi), e.binary("i32.xor"), e.set(b_hi)
        e.get(b_lo), e.binary("i32.xor"), e.get(b_hi), e.binary("i32.or")
        e.unary("i32.eqz")
        if negate:
            e.unary("i32.eqz")
    return emit


def _compare(low: str, high: str) -> Callable[[Emitter], None]:
    """a OP b = (a_hi == b_hi) ? a_lo OP_u b_lo : a_hi OP_strict b_hi."""
    def emit(e: Emitter) -> None:
        b_hi, b_lo, a_hi = _operands(e)
        e.get(b_lo), e.binary(low)
        e.get(a_hi), e.get(b_hi), e.binary(high)
        e.get(a_hi), e.get(b_hi), e.binary("i32.eq")
        e.select()
    return emit


def _eqz(e: Emitter) -> None:
    e.binary("i32.or"), e.unary("i32.eqz")


# --- multiplication -------------------------------------------------------------------------

def _mul(e: Emitter) -> None:
    """a*b mod 2^64 = lo*lo (low word: i32.mul, high word: i32.mulhu) + (a_lo*b_hi +
    a_hi*b_lo) << 32: 17 rows."""
    b_hi, b_lo, a_hi, a_lo = (e.s(k) for k in range(4))
    e.set(b_hi), e.set(b_lo), e.set(a_hi), e.tee(a_lo), e.get(b_lo), e.binary("i32.mul")
    e.get(a_lo), e.get(b_lo), e.binary("i32.mulhu")
    e.get(a_lo), e.get(b_hi), e.binary("i32.mul"), e.binary("i32.add")
    e.get(a_hi), e.get(b_lo), e.binary("i32.mul"), e.binary("i32.add")


def const_mul(e: Emitter, value: int) -> None:
    """[lo hi] -> the product by a constant (the i64.const before it emits no row): 11 to 15
    rows."""
    c_lo, c_hi = value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF
    a_hi, a_lo = e.s(0), e.s(1)
    e.set(a_hi), e.tee(a_lo), e.const(c_lo), e.binary("i32.mul")
    e.get(a_lo), e.const(c_lo), e.binary("i32.mulhu")
    if c_hi:
        e.get(a_lo), e.const(c_hi), e.binary("i32.mul"), e.binary("i32.add")
    e.get(a_hi), e.const(c_lo), e.binary("i32.mul"), e.binary("i32.add")


# --- shifts and rotations -------------------------------------------------------------------

def _funnel(e: Emitter, first: int, second: int, s: int, left: bool) -> None:
    """Push ``first`` shifted by s mod 32, or-ed with the bits ``second`` moves in (none when
    s mod 32 = 0: a double shift by 1 and by 31 - s mod 32, as i32 shifts mask by 31)."""
    near, far = ("i32.shl", "i32.shr_u") if left else ("i32.shr_u", "i32.shl")
    e.get(first), e.get(s), e.binary(near)
    e.get(second), e.const(1), e.binary(far), e.get(s), e.const(31), e.binary("i32.xor")
    e.binary(far), e.binary("i32.or")


def _pick(e: Emitter, yes: Callable[[], None], no: Callable[[], None], s: int) -> None:
    """Push ``yes()`` if bit 5 of the amount in slot ``s`` is set, else ``no()``."""
    yes(), no(), e.get(s), e.const(32), e.binary("i32.and"), e.select()


def _shift(name: str) -> Callable[[Emitter], None]:
    def emit(e: Emitter) -> None:
        s, a_hi, a_lo, lo, hi = (e.s(k) for k in range(5))
        e.pop()  # the amount's high word: only s mod 64 counts
        e.set(s), e.set(a_hi), e.set(a_lo)
        if name == "i64.shl":
            e.get(a_lo), e.get(s), e.binary("i32.shl"), e.set(lo)
            _funnel(e, a_hi, a_lo, s, True), e.set(hi)
            _pick(e, lambda: e.const(0), lambda: e.get(lo), s)
            _pick(e, lambda: e.get(lo), lambda: e.get(hi), s)
            return
        op = "i32.shr_s" if name == "i64.shr_s" else "i32.shr_u"
        e.get(a_hi), e.get(s), e.binary(op), e.set(hi)
        _funnel(e, a_lo, a_hi, s, False), e.set(lo)
        _pick(e, lambda: e.get(hi), lambda: e.get(lo), s)
        if op == "i32.shr_u":
            _pick(e, lambda: e.const(0), lambda: e.get(hi), s)
        else:
            _pick(e, lambda: (e.get(a_hi), e.const(31), e.binary(op)), lambda: e.get(hi), s)
    return emit


def _rotate(left: bool) -> Callable[[Emitter], None]:
    def emit(e: Emitter) -> None:
        s, a_hi, a_lo, lo, hi = (e.s(k) for k in range(5))
        e.pop()
        e.set(s), e.set(a_hi), e.set(a_lo)
        _pick(e, lambda: e.get(a_hi), lambda: e.get(a_lo), s), e.set(lo)  # halves swapped
        _pick(e, lambda: e.get(a_lo), lambda: e.get(a_hi), s), e.set(hi)  # when s >= 32
        _funnel(e, lo, hi, s, left)
        _funnel(e, hi, lo, s, left)
    return emit


HIGH_READ_SHIFTS = ("i64.shl", "i64.shr_u", "i64.shr_s")
"""Shifts whose expansion by a constant of 1..31 only reads the operand's high word once it
is stored: it may come from the i64 local the operand was read from (lower.py)."""


def const_shift(e: Emitter, name: str, amount: int, high: int | None = None) -> None:
    """[lo hi] -> the shift or rotation by a constant (the i64.const before it emits no row);
    with ``high``, [lo] -> the same, the high word in local ``high`` (HIGH_READ_SHIFTS by 1..31
    only)."""
    c = amount & 63
    hi, lo = e.s(0), e.s(1)
    assert high is None or (name in HIGH_READ_SHIFTS and 1 <= c <= 31)
    if high is not None:
        hi = high
    if name in ("i64.rotl", "i64.rotr"):
        c = c if name == "i64.rotl" else (64 - c) & 63
        if c == 0:
            return
        e.set(hi), e.set(lo)
        first, second = (lo, hi) if c < 32 else (hi, lo)
        c &= 31
        for x, y in ((first, second), (second, first)):
            e.get(x)
            if c:
                e.const(c), e.binary("i32.shl"), e.get(y), e.const(32 - c)
                e.binary("i32.shr_u"), e.binary("i32.or")
        return
    if c == 0:
        return
    if name == "i64.shl":
        if c >= 32:
            e.pop(), e.const(c - 32), e.binary("i32.shl"), e.set(hi), e.const(0), e.get(hi)
            return
        e.pop() if high is not None else e.set(hi)
        e.tee(lo), e.const(c), e.binary("i32.shl")
        e.get(hi), e.const(c), e.binary("i32.shl"), e.get(lo), e.const(32 - c)
        e.binary("i32.shr_u"), e.binary("i32.or")
        return
    op = "i32.shr_s" if name == "i64.shr_s" else "i32.shr_u"
    e.pop() if high is not None else e.set(hi)
    if c >= 32:
        e.pop(), e.get(hi), e.const(c - 32), e.binary(op)
        if op == "i32.shr_u":
            e.const(0)
        else:
            e.get(hi), e.const(31), e.binary(op)
        return
    e.const(c), e.binary("i32.shr_u"), e.get(hi), e.const(32 - c), e.binary("i32.shl")
    e.binary("i32.or"), e.get(hi), e.const(c), e.binary(op)


def by_const(e: Emitter, name: str, value: int, high: int | None = None) -> None:
    """[lo hi] -> the shift, rotation or product ``name`` by the constant ``value`` (``high``:
    see const_shift)."""
    if name == "i64.mul":
        const_mul(e, value)
    else:
        const_shift(e, name, value, high)


# --- bit counts and conversions -------------------------------------------------------------

def _count(name: str) -> Callable[[Emitter], None]:
    def emit(e: Emitter) -> None:
        hi, lo = e.s(0), e.s(1)
        e.set(hi), e.set(lo)
        if name == "popcnt":
            e.get(lo), e.unary("i32.popcnt"), e.get(hi), e.unary("i32.popcnt")
            e.binary("i32.add")
        else:  # clz decides on the high word, ctz on the low word, unless it is zero
            first, second = (hi, lo) if name == "clz" else (lo, hi)
            e.get(second), e.unary(f"i32.{name}"), e.const(32), e.binary("i32.add")
            e.get(first), e.unary(f"i32.{name}")
            e.get(first), e.unary("i32.eqz"), e.select()
        e.const(0)
    return emit


def _sign_word(e: Emitter) -> None:
    """[x] -> [x, x >> 31 (arithmetic)]: the high word of x sign-extended."""
    t = e.s(0)
    e.tee(t), e.get(t), e.const(31), e.binary("i32.shr_s")


def _extend(narrow: str | None) -> Callable[[Emitter], None]:
    def emit(e: Emitter) -> None:
        e.pop()
        if narrow:
            e.unary(narrow)
        _sign_word(e)
    return emit


def _extend_i32_u(e: Emitter) -> None:
    e.const(0)


def _wrap(e: Emitter) -> None:
    e.pop()


# --- division -------------------------------------------------------------------------------

def _negate(e: Emitter, lo: int, hi: int) -> None:
    """(lo, hi) = -(lo, hi) mod 2^64."""
    e.const(0), e.get(hi), e.binary("i32.sub"), e.get(lo), e.const(0), e.binary("i32.ne")
    e.binary("i32.sub"), e.set(hi)
    e.const(0), e.get(lo), e.binary("i32.sub"), e.set(lo)


def _negate_if(e: Emitter, flag: Callable[[], None], lo: int, hi: int) -> None:
    skip = Label()
    flag(), e.br_eqz(skip), _negate(e, lo, hi), e.place(skip)


def _divide(signed: bool, remainder: bool) -> Callable[[Emitter], None]:
    """Division: the traps first (by the i32 division that traps on the same condition), then
    magnitudes for signed operands, then the unsigned n / d: by i32 division when both fit 32
    bits, else checked advice (:func:`_checked_advice`), then the result's sign."""
    def emit(e: Emitter) -> None:
        nl, nh, dl, dh, ql, qh, rl, rh, sign = (e.s(k) for k in range(9))
        e.set(dh), e.set(dl), e.set(nh), e.set(nl)
        # d = 0 traps exactly as i32.div_u(1, d_lo | d_hi) does
        e.const(1), e.get(dl), e.get(dh), e.binary("i32.or"), e.binary("i32.div_u"), e.pop()
        if signed:
            if not remainder:  # INT64_MIN / -1 traps as i32.div_s(INT32_MIN, -1) does
                e.const(0x80000000), e.const(-1), e.const(1)
                e.get(nh), e.const(0x80000000), e.binary("i32.xor"), e.get(nl)
                e.binary("i32.or")
                for w in (dl, dh):
                    e.get(w), e.const(-1), e.binary("i32.xor"), e.binary("i32.or")
                e.unary("i32.eqz"), e.select(), e.binary("i32.div_s"), e.pop()
            e.get(nh)  # the result's sign: the dividend's (rem), or the signs' xor (div)
            if not remainder:
                e.get(dh), e.binary("i32.xor")
            e.const(31), e.binary("i32.shr_u"), e.set(sign)
            for lo, hi in ((nl, nh), (dl, dh)):
                _negate_if(e, lambda hi=hi: (e.get(hi), e.const(31), e.binary("i32.shr_u")),
                           lo, hi)
        wide, done = Label(), Label()
        e.get(nh), e.get(dh), e.binary("i32.or"), e.br_if(wide)  # both fit 32 bits
        e.get(nl), e.get(dl), e.binary("i32.rem_u"), e.set(rl), e.const(0), e.set(rh)
        e.get(nl), e.get(dl), e.binary("i32.div_u"), e.set(ql), e.const(0), e.set(qh), e.br(done)
        e.place(wide)
        _checked_advice(e, nl)
        e.place(done)
        lo, hi = (rl, rh) if remainder else (ql, qh)
        if signed:
            _negate_if(e, lambda: e.get(sign), lo, hi)
        e.get(lo), e.get(hi)
    return emit


def _checked_advice(e: Emitter, base: int) -> None:
    """Unsigned 64-bit division by advice: the prover supplies q and r (advice rows, locals
    base + 4..7), and rows check q*d + r = n with r < d, n in locals (base, base + 1), d != 0
    in (base + 2, base + 3); one ``assert_eqz`` pops the or of every failed check, so wrong
    advice has no proof. The product q*d is taken whole: qh*dh = 0 (one of them is zero),
    the cross products fit 32 bits (i32.mulhu = 0) and no carry leaves the high word; with
    r < d, q and r are the quotient and remainder. About 80 rows."""
    nl, nh, dl, dh, ql, qh, rl, rh = (base + k for k in range(8))
    cross = base + 9  # scratch slot 9; slot 8 holds a signed division's sign
    for k, dst in enumerate((ql, qh, rl, rh)):
        e.row(ADVICE, 1, imm=base << 2 | k), e.set(dst)
    # r >= d
    e.get(rl), e.get(dl), e.binary("i32.lt_u"), e.get(rh), e.get(dh), e.binary("i32.lt_u")
    e.get(rh), e.get(dh), e.binary("i32.eq"), e.select(), e.unary("i32.eqz")
    # qh != 0 and dh != 0; a cross product past 32 bits
    e.get(qh), e.const(0), e.get(dh), e.select(), e.binary("i32.or")
    e.get(ql), e.get(dh), e.binary("i32.mulhu"), e.binary("i32.or")
    e.get(qh), e.get(dl), e.binary("i32.mulhu"), e.binary("i32.or")
    # low word: lo(ql*dl) + rl = nl, its carry kept in nl (n's low word is not needed after)
    e.get(ql), e.get(dl), e.binary("i32.mul"), e.get(rl), e.binary("i32.add"), e.tee(cross)
    e.get(nl), e.binary("i32.xor"), e.binary("i32.or")
    e.get(cross), e.get(rl), e.binary("i32.lt_u"), e.set(nl)
    # high word: hi(ql*dl) + cross + rh + carry = nh, each addition without a carry out
    e.get(ql), e.get(dh), e.binary("i32.mul"), e.get(qh), e.get(dl), e.binary("i32.mul")
    e.binary("i32.add"), e.tee(cross)
    e.get(ql), e.get(dl), e.binary("i32.mulhu"), e.binary("i32.add"), e.tee(dh)
    e.get(cross), e.binary("i32.lt_u"), e.binary("i32.or")
    for term in (rh, nl):
        e.get(dh), e.get(term), e.binary("i32.add"), e.tee(dh), e.get(term), e.binary("i32.lt_u")
        e.binary("i32.or")
    e.get(dh), e.get(nh), e.binary("i32.xor"), e.binary("i32.or")
    e.row(ASSERT_EQZ, -1)


# --- memory ---------------------------------------------------------------------------------

def load(e: Emitter, name: str, offset: int, align: int) -> None:
    """[address] -> the i64 loaded by ``name`` (``i64.load``, ``i64.load8_s``, ...)."""
    width = name[8:].split("_")[0] or "64"
    if width == "64":
        a = e.s(0)
        e.tee(a), access.load(e, "i32.load", offset, min(align, 2), scratch=1)
        e.get(a), access.load(e, "i32.load", offset + 4, min(align, 2), scratch=1)
        return
    op = "i32.load" if width == "32" else f"i32.load{width}_{name[-1]}"
    access.load(e, op, offset, align)
    if name.endswith("_s"):
        _sign_word(e)
    else:
        e.const(0)


def store(e: Emitter, name: str, offset: int, align: int) -> None:
    """[address lo hi] -> the store ``name`` (``i64.store``, ``i64.store8``, ...). The high
    word goes first: it traps whenever the whole store would, before anything is written."""
    width = name[9:] or "64"
    if width == "64":
        hi, lo, a = e.s(0), e.s(1), e.s(2)
        e.set(hi), e.set(lo), e.tee(a), e.get(hi)
        access.store(e, "i32.store", offset + 4, min(align, 2), scratch=3)
        e.get(a), e.get(lo)
        access.store(e, "i32.store", offset, min(align, 2), scratch=3)
        return
    e.pop()
    access.store(e, "i32.store" if width == "32" else f"i32.store{width}", offset, align)


NUMERIC: dict[str, Callable[[Emitter], None]] = {
    "i64.and": _bitwise("i32.and"), "i64.or": _bitwise("i32.or"), "i64.xor": _bitwise("i32.xor"),
    "i64.add": _add, "i64.sub": _sub, "i64.mul": _mul,
    "i64.eq": _equal(False), "i64.ne": _equal(True), "i64.eqz": _eqz,
    "i64.clz": _count("clz"), "i64.ctz": _count("ctz"), "i64.popcnt": _count("popcnt"),
    "i32.wrap_i64": _wrap, "i64.extend_i32_s": _sign_word, "i64.extend_i32_u": _extend_i32_u,
    "i64.extend8_s": _extend("i32.extend8_s"), "i64.extend16_s": _extend("i32.extend16_s"),
    "i64.extend32_s": _extend(None),
    "i64.shl": _shift("i64.shl"), "i64.shr_s": _shift("i64.shr_s"),
    "i64.shr_u": _shift("i64.shr_u"), "i64.rotl": _rotate(True), "i64.rotr": _rotate(False),
    "i64.div_s": _divide(True, False), "i64.div_u": _divide(False, False),
    "i64.rem_s": _divide(True, True), "i64.rem_u": _divide(False, True),
}
"""i64 instruction name -> its expansion into i32 rows."""
for _name, (_low, _high) in {"lt_s": ("lt_u", "lt_s"), "lt_u": ("lt_u", "lt_u"),
                             "gt_s": ("gt_u", "gt_s"), "gt_u": ("gt_u", "gt_u"),
                             "le_s": ("le_u", "lt_s"), "le_u": ("le_u", "lt_u"),
                             "ge_s": ("ge_u", "gt_s"), "ge_u": ("ge_u", "gt_u")}.items():
    NUMERIC[f"i64.{_name}"] = _compare(f"i32.{_low}", f"i32.{_high}")

SCRATCH = 10
"""Scratch slots a function that uses i64 instructions reserves (the most any expansion uses:
multiplication)."""
