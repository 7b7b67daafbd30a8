"""Tensor inputs: run a worker export on an input buffer the worker exposes as a global.

A tensor worker exports an immutable i32 global (by convention `memjit_input`) holding the
address of its input buffer, and a function that reads it. The sandbox's public API runs an
export on a fresh instance with integer arguments only, so the input is delivered through the
module itself: `with_input` appends one active data segment that writes the bytes at that
address during instantiation (after the module's own segments, so it wins), and the derived
module runs through `memjit.sandbox.run` under the same limits and checks as any worker.
The derived module is a pure function of (module, input), so anyone can recompute it.
"""

from __future__ import annotations

from typing import Sequence

from memjit.errors import BadInput
from memjit.sandbox import Limits, RunResult, run
from memjit.wasm.decode import Reader, decode_module

INPUT_GLOBAL = "memjit_input"
_I32_CONST, _END, _CUSTOM, _DATA, _DATA_COUNT = 0x41, 0x0B, 0, 11, 12
_PAGE = 65536


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def input_address(module: bytes, size: int, global_name: str = INPUT_GLOBAL) -> int:
    """The address held by the exported immutable i32 global `global_name`, checked to have
    room for `size` bytes inside the module's initial memory."""
    m = decode_module(bytes(module))
    export = next((e for e in m.exports if e.name == global_name), None)
    if export is None or export.kind != "global":
        raise BadInput(f"module does not export a global {global_name!r} (its input buffer)")
    index = export.index - sum(1 for i in m.imports if i.kind == "global")
    glob = m.globals[index] if index >= 0 else None  # validated: only imports lie below 0
    init = glob.init.instrs if glob is not None else ()
    if glob is None or glob.mutable or len(init) != 1 or init[0][0] != _I32_CONST:
        raise BadInput(f"global {global_name!r} must be an immutable i32 constant address")
    address = init[0][1] & 0xFFFFFFFF
    memory_bytes = m.memories[0].min * _PAGE if m.memories else 0
    if address + size > memory_bytes:
        raise BadInput(f"input of {size} bytes at {address} does not fit in the module's "
                       f"initial memory of {memory_bytes} bytes")
    return address


def _sections(module: bytes) -> list[tuple[int, bytes]]:
    """The (id, body) sections of a module, in order (already validated by decode_module)."""
    sections, pos = [], 8
    while pos < len(module):
        r = Reader(module, pos + 1)
        size = r.uleb(32)
        sections.append((module[pos], module[r.pos:r.pos + size]))
        pos = r.pos + size
    return sections


def with_input(module: bytes, input_bytes: bytes, global_name: str = INPUT_GLOBAL) -> bytes:
    """`module` plus one active data segment (the last) writing `input_bytes` at its buffer."""
    module = bytes(module)
    address = input_address(module, len(input_bytes), global_name)
    segment = (b"\x00" + bytes([_I32_CONST]) + _sleb(address - (address >> 31 << 32))
               + bytes([_END]) + _uleb(len(input_bytes)) + bytes(input_bytes))
    sections = _sections(module)
    if all(section_id != _DATA for section_id, _ in sections):
        # The data section comes after every other standard section (custom ones may follow).
        at = max((i + 1 for i, (section_id, _) in enumerate(sections) if section_id != _CUSTOM),
                 default=0)
        sections.insert(at, (_DATA, b"\x00"))
    out = bytearray(module[:8])
    for section_id, body in sections:
        if section_id == _DATA:
            count = Reader(body)
            n = count.uleb(32)
            body = _uleb(n + 1) + body[count.pos:] + segment
        elif section_id == _DATA_COUNT:
            body = _uleb(Reader(body).uleb(32) + 1)
        out += bytes([section_id]) + _uleb(len(body)) + body
    return bytes(out)


def run_with_input(module: bytes, export: str, input_bytes: bytes,
                   limits: Limits = Limits(), args: Sequence[int] = ()) -> RunResult:
    """Run `export(*args)` in the sandbox on a fresh instance whose input buffer holds
    `input_bytes` (same faults as memjit.sandbox.run)."""
    return run(with_input(module, input_bytes), export, args, limits)
