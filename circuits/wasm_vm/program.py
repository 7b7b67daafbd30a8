"""The verification key: a lowered program as the VM AIR sees it, with its canonical encoding.

The VK bytes are a deterministic function of the module (built by ``memjit.runtime.claims.vk_of``);
their BLAKE3 digest names the program in every statement, so a proof made for one program
never verifies under another's key. The VK holds all of an instance's start state: the code and
the function table (ROM rows), the initial memory (every non-zero word after the data segments),
the globals and the memory limits, including the sandbox's memory cap for a program that grows
its memory. A module whose instantiation traps (a segment out of bounds) has no VK.

Encoding (version 3, little-endian)::

    "MJVK" u8 version
    u32 L, then L ROM rows of 7 u64 (pc, op, imm, arg1, arg2, arg3, sh; two's complement)
    u32 memory pages
    u32 G, then G u64 global initial values
    u32 D, then D (u32 word index, u32 value) data words, strictly increasing, values non-zero
    u16 E, then E exports: u16 name length, name (utf-8), u32 entry pc, u8 nparams, u8 nresults
        (in 32-bit slots: an i64 takes two)
    u32 input buffer address, u32 output buffer address (0xFFFFFFFF: the module has none)
    u32 maximum pages: the module's declared maximum (65536 when it declares none); a
        memory.grow past it returns -1
    u32 cap pages: the most pages the memory can reach: the initial pages for a program
        without memory.grow, else min(maximum, the sandbox's memory cap); a grow past the cap
        (within the maximum) stops the sandbox with a fault and has no proof

Version 3 added the maximum and the cap (version 2 had one "grow limit": a maximum of at most
255 pages) and widened export names to 2^16 - 1 bytes (the spec testsuite has longer than 255);
loads and stores hold offsets below 2^32.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import blake3
import numpy as np

from circuits.wasm_vm.isa import LOADS, OP_IDS, STORES
from circuits.wasm_vm.reader import ByteReader

MAGIC = b"MJVK"
VERSION = 3
MAX_ROM = 1 << 20
MAX_GLOBALS = 1 << 16
MAX_DATA = 1 << 24  # a 64 MiB memory's words
MAX_EXPORTS = 1 << 12
MAX_PAGES = 1 << 16
NO_BUFFER = 0xFFFFFFFF


class VkFormatError(ValueError):
    """The bytes are not a well-formed verification key."""


@dataclass(frozen=True, eq=False)
class Export:
    entry: int
    nparams: int
    nresults: int


@dataclass(frozen=True, eq=False)
class VmProgram:
    rom: np.ndarray  # (L, 7) uint64
    mem_pages: int
    globals_init: np.ndarray  # (G,) uint64
    data_index: np.ndarray  # (D,) uint64 word indices, increasing
    data_value: np.ndarray  # (D,) uint64 non-zero 32-bit words
    exports: dict[str, Export]
    input_addr: int | None = None  # byte address of the tensor input buffer (memjit_input)
    output_addr: int | None = None  # byte address of the tensor output buffer (memjit_output)
    max_pages: int = MAX_PAGES  # declared maximum: a memory.grow past it returns -1
    cap_pages: int | None = None  # the most pages the memory reaches (None: mem_pages)

    @property
    def precompiles(self) -> tuple[str, ...]:
        """The precompiles the program calls (isa's memjit.dot_*), named from the ROM that the
        key commits to: a proof of a call uses the tensor table exactly when this is not
        empty (circuits.wasm_vm.tensor)."""
        ops = set(self.rom[:, 1].tolist()) if len(self.rom) else set()
        return tuple(name for name, oid in OP_IDS.items() if name.startswith("memjit.")
                     and oid in ops)

    @property
    def end_pages(self) -> int:
        """The most pages the memory can ever have (its keys lie below them)."""
        return self.mem_pages if self.cap_pages is None else self.cap_pages

    def encode(self) -> bytes:
        out = [MAGIC, bytes([VERSION]), struct.pack("<I", len(self.rom)),
               np.ascontiguousarray(self.rom, dtype="<u8").tobytes(),
               struct.pack("<II", self.mem_pages, len(self.globals_init)),
               np.ascontiguousarray(self.globals_init, dtype="<u8").tobytes(),
               struct.pack("<I", len(self.data_index)),
               np.stack([self.data_index, self.data_value], axis=1).astype("<u4").tobytes(),
               struct.pack("<H", len(self.exports))]
        for name in sorted(self.exports):
            e = self.exports[name]
            raw = name.encode()
            out += [struct.pack("<H", len(raw)), raw,
                    struct.pack("<IBB", e.entry, e.nparams, e.nresults)]
        out.append(struct.pack("<II", *(NO_BUFFER if a is None else a
                                        for a in (self.input_addr, self.output_addr))))
        out.append(struct.pack("<II", self.max_pages, self.end_pages))
        return b"".join(out)

    def digest(self) -> bytes:
        return blake3.blake3(self.encode()).digest()


def decode_vk(data: bytes) -> VmProgram:
    """Parse and validate VK bytes (canonical: re-encoding gives the same bytes)."""
    r = ByteReader(bytes(data), VkFormatError, "truncated verification key")
    if r.take(4) != MAGIC or r.take(1)[0] != VERSION:
        raise VkFormatError("not a memjit verification key (bad magic or version)")
    n = r.count("<I", MAX_ROM, "ROM rows")
    rom = np.frombuffer(r.take(56 * n), dtype="<u8").reshape(n, 7).astype(np.uint64)
    if not np.array_equal(rom[:, 0], np.arange(n, dtype=np.uint64)):
        raise VkFormatError("ROM rows are not numbered 0..L-1")
    pages = r.count("<I", MAX_PAGES, "memory pages")
    g = r.count("<I", MAX_GLOBALS, "globals")
    glob = np.frombuffer(r.take(8 * g), dtype="<u8").astype(np.uint64)
    d = r.count("<I", MAX_DATA, "data words")
    data_words = np.frombuffer(r.take(8 * d), dtype="<u4").reshape(d, 2).astype(np.uint64)
    idx, val = data_words[:, 0], data_words[:, 1]
    if d and (np.any(np.diff(idx.astype(np.int64)) <= 0) or not val.all()
              or int(idx[-1]) >= pages * 16384):
        raise VkFormatError("data words must be increasing, non-zero and inside memory")
    exports = {}
    for _ in range(r.count("<H", MAX_EXPORTS, "exports")):
        raw = r.take(r.unpack("<H")[0])
        try:
            name = raw.decode()
        except UnicodeDecodeError:
            raise VkFormatError("export name is not utf-8") from None
        entry, nparams, nresults = r.unpack("<IBB")
        if entry >= n or nresults > 2 or name in exports:
            raise VkFormatError(f"bad export {name!r}")
        exports[name] = Export(entry, nparams, nresults)
    buffers = [None if a == NO_BUFFER else a for a in r.unpack("<II")]
    if any(a is not None and a >= pages * 65536 for a in buffers):
        raise VkFormatError("an I/O buffer lies outside memory")
    max_pages, cap = r.unpack("<II")
    if not pages <= cap <= max_pages <= MAX_PAGES:
        raise VkFormatError("memory limits must satisfy initial <= cap <= maximum <= 65536")
    if cap != pages and not np.any(rom[:, 1] == OP_IDS["memory.grow"]):
        raise VkFormatError("the cap of a program without memory.grow is its initial memory")
    accesses = np.isin(rom[:, 1], [OP_IDS[o] for o in (*LOADS, *STORES)])
    if np.any(rom[accesses, 2] >= 1 << 32):
        raise VkFormatError("a load or store offset is 2^32 or more")
    prog = VmProgram(rom, pages, glob, idx, val, exports, *buffers, max_pages, cap)
    if r.pos != len(r.data) or prog.encode() != r.data:
        raise VkFormatError("verification key is not canonical (trailing or reordered bytes)")
    return prog
