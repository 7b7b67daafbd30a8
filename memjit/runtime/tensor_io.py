"""Tensor inputs and outputs: the byte buffers a worker exposes through two exported globals.

A tensor worker exports immutable i32 globals holding buffer addresses: `memjit_input` (the
caller's input bytes are written there on the fresh instance, before the call; the length is
passed as an argument when the worker needs it) and `memjit_output` (the output bytes are read
from there after the call; their length is fixed by the caller or is the call's result).
The sandbox, the tracer and the VM AIR all place the input the same way; in a claim both byte
strings are public inputs, bound by the proof through the memory argument.
"""

from __future__ import annotations

from collections.abc import Sequence

from circuits.wasm_vm.statement import MAX_IO  # what a statement can carry, per buffer
from memjit.errors import BadInput
from memjit.runtime.wasm.program import INPUT_GLOBAL, OUTPUT_GLOBAL, PAGE, Program

RESULT = "result"  # output length: the call's (i32) result


def buffer_address(prog: Program, name: str, size: int) -> int:
    """The address of the buffer behind global `name`, checked to hold `size` bytes inside
    the initial memory (BadInput otherwise)."""
    if not 0 <= size <= MAX_IO:
        raise BadInput(f"{name.split('_')[1]} of {size} bytes exceeds the limit of "
                       f"{MAX_IO} bytes")
    address = prog.buffers.get(name)
    if address is None:
        raise BadInput(f"module does not export a global {name!r} (its "
                       f"{name.split('_')[1]} buffer)")
    memory_bytes = prog.mem_min * PAGE if prog.has_memory else 0
    if address + size > memory_bytes:
        raise BadInput(f"{name.split('_')[1]} of {size} bytes at {address} does not fit in the "
                       f"module's initial memory of {memory_bytes} bytes")
    return address


def input_placement(prog: Program, input_bytes: bytes) -> tuple[int, bytes] | None:
    """(address, bytes) to write before the call, or None when there is no input."""
    if not input_bytes:
        return None
    return buffer_address(prog, INPUT_GLOBAL, len(input_bytes)), bytes(input_bytes)


def output_length(output_len: int | str | None, results: Sequence[int]) -> int:
    """The output length: fixed, the call's result (``"result"``), or 0 (None: no output)."""
    if output_len is None:
        return 0
    if output_len == RESULT:
        if len(results) != 1:
            raise BadInput("the output length is the call's result, but it returned none")
        length = results[0] & 0xFFFFFFFF
    elif isinstance(output_len, int):
        length = output_len
    else:
        raise BadInput(f"output length must be a byte count or {RESULT!r}, got {output_len!r}")
    if not 0 <= length <= MAX_IO:
        raise BadInput(f"output of {length} bytes exceeds the limit of {MAX_IO} bytes")
    return length


def read_output(prog: Program, memory: bytes | None, length: int) -> bytes:
    """The `length` output bytes from a final memory image (BadInput if out of range)."""
    if not length:
        return b""
    address = prog.buffers.get(OUTPUT_GLOBAL)
    if address is None:
        raise BadInput(f"module does not export a global {OUTPUT_GLOBAL!r} (its output buffer)")
    if memory is None or address + length > len(memory):
        raise BadInput(f"output of {length} bytes at {address} lies outside the final memory")
    return bytes(memory[address:address + length])
