"""Memory accesses as rows the VM AIR proves: every row reads or writes inside one 32-bit word.

An i32 load or store whose alignment hint is natural (``i32.load align=4``, ``i32.load16_u
align=2``, ...) is one row. WebAssembly only calls the hint a hint, so such an access may still
meet an unaligned address at run time; the witness refuses that call (one line, exit 2) and
every aligned call of the same module proves. An access whose hint is below natural (clang -O2
emits ``i32.load align=1`` for a 4-byte compare on a ``char*``) becomes byte accesses, the
highest byte first: that byte traps exactly when the whole access would (its end lies past the
memory's end), so the expansion traps as the instruction does, and writes nothing before it.

Offsets are clamped to 2^32 - 1 (the VM's immediates are 32-bit): ``offset + k`` of a byte
(or of an i64's high word) beyond that makes the access end past 2^32, beyond any memory, and
the clamped access traps just the same.

Rows per under-aligned access: i32.load 17, i32.load16 7, i32.store 19, i32.store16 9.
"""

from __future__ import annotations

from memjit.runtime.wasm.emit import Emitter
from memjit.runtime.wasm.opcodes import OP

MAX_OFFSET = (1 << 32) - 1
BYTES = {"i32.load": 4, "i32.load8_s": 1, "i32.load8_u": 1, "i32.load16_s": 2,
         "i32.load16_u": 2, "i32.store": 4, "i32.store8": 1, "i32.store16": 2}
"""Bytes each i32 access reads or writes; its natural alignment hint is log2 of it."""
NATURAL = {name: n.bit_length() - 1 for name, n in BYTES.items()}
SCRATCH = 2
"""Scratch slots an under-aligned access uses (the address, and a store's value)."""


def under_aligned(name: str, align: int) -> bool:
    """Whether the access ``name`` with alignment hint ``align`` (log2) expands to bytes."""
    return align < NATURAL[name]


def load(e: Emitter, name: str, offset: int, align: int, scratch: int = 0) -> None:
    """[address] -> the value ``name`` loads; scratch slots ``scratch``.. of ``e`` may be
    used (see :data:`SCRATCH`)."""
    if not under_aligned(name, align):
        e.row(OP[name], 0, imm=min(offset, MAX_OFFSET), arg1=align)
        return
    a = e.s(scratch)
    n = BYTES[name]
    e.tee(a)  # Horner from the top byte: ((b[n-1] << 8 | b[n-2]) << 8 | ...) | b[0]
    top = "i32.load8_s" if name == "i32.load16_s" else "i32.load8_u"
    e.row(OP[top], 0, imm=min(offset + n - 1, MAX_OFFSET))
    for k in range(n - 2, -1, -1):
        e.const(8), e.binary("i32.shl"), e.get(a)
        e.row(OP["i32.load8_u"], 0, imm=min(offset + k, MAX_OFFSET))
        e.binary("i32.or")


def store(e: Emitter, name: str, offset: int, align: int, scratch: int = 0) -> None:
    """[address value] -> the store ``name``; scratch slots ``scratch``.. of ``e`` may be used
    (see :data:`SCRATCH`)."""
    if not under_aligned(name, align):
        e.row(OP[name], -2, imm=min(offset, MAX_OFFSET), arg1=align)
        return
    a, v = e.s(scratch), e.s(scratch + 1)
    e.set(v)
    e.tee(a)
    for k in range(BYTES[name] - 1, -1, -1):
        if k < BYTES[name] - 1:
            e.get(a)
        e.get(v)
        if k:
            e.const(8 * k), e.binary("i32.shr_u")
        e.row(OP["i32.store8"], -2, imm=min(offset + k, MAX_OFFSET))
