"""The WASM front end: decode, validate, check the provable subset, lower to a flat program.

``load(module_bytes) -> Program`` is the whole pipeline; :mod:`.program` documents the
lowered machine and its ROM layout.
"""

from __future__ import annotations

import functools

import wasmtime

from memjit.errors import BadInput
from memjit.runtime.wasm.decode import decode_module
from memjit.runtime.wasm.lower import lower
from memjit.runtime.wasm.program import Program
from memjit.runtime.wasm.subset import check_module
from memjit.runtime.wasm.validate import validate_function, validate_module

__all__ = ["Program", "load"]


def load(data: bytes, crosscheck: bool = True) -> Program:
    """Decode, validate, subset-check and lower a module (BadInput / UnsupportedModule).

    With ``crosscheck`` a module this front end accepts must also pass wasmtime's validator,
    so that nothing it lets through can fail later in the sandbox as invalid.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BadInput(f"module must be bytes, not {type(data).__name__}")
    return _load(bytes(data), crosscheck)


@functools.lru_cache(maxsize=32)
def _load(data: bytes, crosscheck: bool) -> Program:
    m = decode_module(data)
    check_module(m)
    validate_module(m)
    codes = [validate_function(m, i) for i in range(len(m.funcs))]
    program = lower(m, codes)
    if crosscheck:
        _wasmtime_validate(data)
    return program


def _wasmtime_validate(data: bytes) -> None:
    try:
        wasmtime.Module.validate(_engine(), data)
    except wasmtime.WasmtimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reason = lines[-1] if lines else "rejected by wasmtime"
        raise BadInput(f"invalid module: {reason}") from None


@functools.lru_cache(maxsize=1)
def _engine() -> wasmtime.Engine:
    """A default engine: wasmtime's validator with its default feature set."""
    return wasmtime.Engine()
