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


def input_capacity(prog: Program) -> int:
    """The bytes the input buffer can take, as far as the module's layout shows: from its
    address up to the next thing the module places above it (the output buffer, initialised
    data such as weights) or the end of the initial memory. A module declares no buffer
    sizes, so an input running into an undeclared variable is not seen; one that would
    overwrite the output buffer or the module's data is."""
    address = buffer_address(prog, INPUT_GLOBAL, 0)
    end = prog.mem_min * PAGE if prog.has_memory else 0
    above = [a for a in (prog.buffers.get(OUTPUT_GLOBAL), *(o for o, _ in prog.data_segments))
             if a is not None and a > address]
    return min([end, *above]) - address


def input_placement(prog: Program, input_bytes: bytes) -> tuple[int, bytes] | None:
    """(address, bytes) to write before the call, or None when there is no input; BadInput
    when the input is larger than the buffer (:func:`input_capacity`)."""
    if not input_bytes:
        return None
    address = buffer_address(prog, INPUT_GLOBAL, len(input_bytes))
    capacity = input_capacity(prog)
    if len(input_bytes) > capacity:
        raise BadInput(f"input of {len(input_bytes)} bytes is larger than the module's input "
                       f"buffer: {capacity} bytes at {address}, before its other data")
    return address, bytes(input_bytes)


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
