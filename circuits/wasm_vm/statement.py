"""The statement of a VM proof and its canonical encoding.

"The program with VK digest ``vk`` called at export ``export`` with ``args`` returned ``result``
(or trapped with ``trap``) after ``steps`` instructions, proven over a trace of 2^log_n rows, using the public lookup
tables with multiplicities ``mult``, in answer to ``nonce``."  The multiplicities (execution
profile of the ROM and the use counts of the nibble / 12-bit tables) are part of the statement so
the verifier can add the table side of every LogUp sum itself; they are absorbed before any
challenge.

The nonce is what a proof answers: a market request's fresh 32 bytes (zero when the proof
answers no request). The AIR places no constraint on it; it is bound because the whole encoded
statement is the AIR's public input, absorbed into the transcript before the first commitment,
so a proof made for one nonce fails under any other (its challenges change), and no proof can
be delivered for two requests.

Tensor I/O (memjit.runtime.tensor_io): ``input`` is written to the program's input buffer before the
call; ``output_words`` are the final contents of the 32-bit words covering the output bytes,
which start ``output_offset`` bytes into them and are ``output_len`` long. Both are public:
the verifier derives the initial memory and the bound final words from them.

Encoding (version 3, little-endian)::

    "MJST" u8 version, vk digest (32 bytes), nonce (32 bytes), u8 name length + export name (utf-8),
    u8 nargs + u32 args (32-bit words: an i64 argument is two, low first),
    u8 outcome + u32 value (0: returned, value 0; 1: returned value; 2: trapped, value =
    index in TRAPS; 3: returned an i64, value = its low word, then u32 high word),
    u32 steps, u8 log_n,
    u32 input length + input bytes,
    u32 output length, u8 output offset (< 4; 0 without output), u32 W + W output words,
    W = ceil((offset + length) / 4),
    u32 K + K pairs (u32 table index, u32 count), indices strictly increasing, counts > 0
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from circuits.wasm_vm.reader import ByteReader

MAGIC = b"MJST"
VERSION = 3
NONCE_BYTES = 32
NO_NONCE = bytes(NONCE_BYTES)
MAX_ARGS = 64
MAX_MULT = 1 << 22
MAX_IO = 1 << 20  # bytes of input, and of output
TRAPS = ("unreachable", "integer_divide_by_zero", "integer_overflow", "table_out_of_bounds",
         "indirect_call_to_null", "indirect_call_type_mismatch", "memory_out_of_bounds")
"""Provable trap codes (the sandbox's names), by statement index: append, never reorder."""
RETURNED, RETURNED_VALUE, TRAPPED, RETURNED_I64 = range(4)


class StatementFormatError(ValueError):
    """The bytes are not a well-formed statement."""


@dataclass(frozen=True, eq=False)
class VmStatement:
    vk: bytes  # BLAKE3 digest of the VK bytes
    export: str
    args: tuple[int, ...]  # 32-bit words of the parameter slots
    result: int | None  # bit pattern (64-bit if wide); None for an export without results or a trap
    steps: int
    log_n: int
    mult_index: np.ndarray  # (K,) uint64, increasing
    mult_count: np.ndarray  # (K,) uint64, positive
    trap: str | None = None  # a name in TRAPS: the run trapped (then result is None)
    input: bytes = b""  # written at the program's input buffer before the call
    output_len: int = 0  # bytes of output, read from the output buffer after the call
    output_offset: int = 0  # the output buffer's address mod 4
    output_words: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    wide: bool = False  # the result is an i64 (two slots)
    nonce: bytes = NO_NONCE  # what the proof answers (a request's fresh nonce)

    @property
    def signed_result(self) -> int | None:
        """The result as the signed i32 (or i64, when wide) wasmtime returns."""
        if self.result is None:
            return None
        bits = 64 if self.wide else 32
        return self.result - (self.result >> (bits - 1) << bits)

    @property
    def result_words(self) -> tuple[int, ...]:
        """The result's 32-bit words, as the result slots hold them (none without a result)."""
        if self.result is None:
            return ()
        return (self.result & 0xFFFFFFFF, self.result >> 32) if self.wide else (self.result,)

    @property
    def output(self) -> bytes:
        """The output bytes the proof binds."""
        raw = self.output_words.astype("<u4").tobytes()
        return raw[self.output_offset:self.output_offset + self.output_len]

    def outcome(self) -> bytes:
        if self.trap is not None:
            return struct.pack("<BI", TRAPPED, TRAPS.index(self.trap))
        if self.result is None:
            return struct.pack("<BI", RETURNED, 0)
        if self.wide:
            return struct.pack("<BII", RETURNED_I64, *self.result_words)
        return struct.pack("<BI", RETURNED_VALUE, self.result)

    def encode(self) -> bytes:
        if len(self.nonce) != NONCE_BYTES:
            raise ValueError(f"a statement's nonce is {NONCE_BYTES} bytes, not {len(self.nonce)}")
        name = self.export.encode()
        out = [MAGIC, bytes([VERSION]), self.vk, bytes(self.nonce), bytes([len(name)]), name,
               bytes([len(self.args)]),
               struct.pack(f"<{len(self.args)}I", *self.args),
               self.outcome(),
               struct.pack("<IB", self.steps, self.log_n),
               struct.pack("<I", len(self.input)), self.input,
               struct.pack("<IBI", self.output_len, self.output_offset, len(self.output_words)),
               self.output_words.astype("<u4").tobytes(),
               struct.pack("<I", len(self.mult_index)),
               np.stack([self.mult_index, self.mult_count], axis=1).astype("<u4").tobytes()]
        return b"".join(out)


def decode_statement(data: bytes) -> tuple[VmStatement, int]:
    """Parse a statement at the start of ``data``; returns it and the bytes consumed."""
    reader = ByteReader(data, StatementFormatError, "truncated statement")
    take = reader.take

    if take(4) != MAGIC or take(1)[0] != VERSION:
        raise StatementFormatError("not a memjit statement (bad magic or version)")
    vk = take(32)
    nonce = take(NONCE_BYTES)
    try:
        export = take(take(1)[0]).decode()
    except UnicodeDecodeError:
        raise StatementFormatError("export name is not utf-8") from None
    nargs = take(1)[0]
    if nargs > MAX_ARGS:
        raise StatementFormatError("too many arguments")
    args = struct.unpack(f"<{nargs}I", take(4 * nargs))
    outcome, value = struct.unpack("<BI", take(5))
    if outcome > RETURNED_I64 or (outcome == RETURNED and value) or (
            outcome == TRAPPED and value >= len(TRAPS)):
        raise StatementFormatError("non-canonical outcome field")
    result = value if outcome in (RETURNED_VALUE, RETURNED_I64) else None
    if outcome == RETURNED_I64:
        result |= struct.unpack("<I", take(4))[0] << 32
    trap = TRAPS[value] if outcome == TRAPPED else None
    steps, log_n = struct.unpack("<IB", take(5))
    (in_len,) = struct.unpack("<I", take(4))
    if in_len > MAX_IO:
        raise StatementFormatError("input too long")
    input_bytes = take(in_len)
    out_len, out_off, n_words = struct.unpack("<IBI", take(9))
    if out_len > MAX_IO or out_off > (3 if out_len else 0) or n_words != -(-(out_off + out_len) // 4):
        raise StatementFormatError("inconsistent output length, offset and words")
    words = np.frombuffer(take(4 * n_words), dtype="<u4").astype(np.uint64)
    (k,) = struct.unpack("<I", take(4))
    if k > MAX_MULT:
        raise StatementFormatError("too many multiplicities")
    pairs = np.frombuffer(take(8 * k), dtype="<u4").reshape(k, 2).astype(np.uint64)
    idx, cnt = pairs[:, 0], pairs[:, 1]
    if k and (np.any(np.diff(idx.astype(np.int64)) <= 0) or not cnt.all()):
        raise StatementFormatError("multiplicities must have increasing indices and be positive")
    st = VmStatement(vk, export, tuple(args), result, steps, log_n, idx, cnt, trap, input_bytes,
                     out_len, out_off, words, outcome == RETURNED_I64, nonce)
    return st, reader.pos
