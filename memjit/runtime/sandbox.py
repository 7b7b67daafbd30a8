"""Run one export of a worker module in wasmtime, with every operator limit enforced.

Each call gets a fresh Store and Instance (no state survives between calls) and runs under:

- no imports but memjit's precompiles (memjit.runtime.wasm.opcodes.PRECOMPILES, implemented
  here natively with fuel charged by size): a module importing anything else is refused before
  it runs (UnsupportedModule);
- a fuel budget (wasmtime's own fuel accounting) -> OutOfFuel, exactly when the call consumes
  more than the budget (instantiation gets a budget of the same size of its own);
- a wall-clock deadline by epoch interruption -> DeadlineExceeded;
- a linear-memory cap -> MemoryCapExceeded. The cap is an operator limit, not part of the
  WebAssembly semantics, so a `memory.grow` refused *because of the cap* is a fault, while a
  grow past the module's own declared maximum still returns -1 as WebAssembly says;
- any trap -> Trap(code), with the codes of TRAP_CODES (shared with the tracer).

How the limits are implemented (wasmtime-py 50 exposes no trap-on-grow-failure option):

- Linear memories come from our own memory creator (mmap'd region of wasmtime's requested
  reservation plus guard pages, made accessible page by page as the memory grows; released
  regions are zeroed and pooled). Wasmtime only asks it to grow within the module's declared
  maximum, so a growth it refuses is exactly a growth denied by the cap: the creator marks the
  call as capped and bumps the epoch so that the call stops at its next epoch check.
- Every store's epoch deadline is one tick; a shared ticker thread advances the engine epoch
  every TICK_S while any call is running, and the store's epoch callback then decides: stop if
  the call's wall-clock deadline passed or its memory cap was hit, otherwise continue one more
  tick. Deadlines are per call, so a tick can never cut a later or concurrent call short.

The hot path calls wasmtime's C API through wasmtime-py's ctypes bindings (`wasmtime._ffi`)
instead of its object layer, which alone costs ~40 us per call; engine and compiled modules
are cached (modules per content ID), so a call on a cached module costs a few tens of us.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import mmap
import os
import threading
import time
from collections import OrderedDict
from ctypes import byref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._error import WasmtimeError

from memjit.errors import (
    BadInput,
    DeadlineExceeded,
    MemoryCapExceeded,
    OutOfFuel,
    Trap,
    UnsupportedModule,
)
from memjit.runtime.wasm.opcodes import DOT_I8I8, PRECOMPILE_MODULE, PRECOMPILES, precompile_fuel

# Trap codes of the integer WebAssembly subset, as the sandbox and the tracer both name them.
TRAP_CODES: tuple[str, ...] = (
    "unreachable",
    "integer_divide_by_zero",
    "integer_overflow",
    "memory_out_of_bounds",
    "indirect_call_type_mismatch",
    "table_out_of_bounds",
    "indirect_call_to_null",
    "stack_overflow",
)

_TRAP_NAMES: dict[wasmtime.TrapCode, str] = {
    wasmtime.TrapCode.UNREACHABLE: "unreachable",
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer_divide_by_zero",
    wasmtime.TrapCode.INTEGER_OVERFLOW: "integer_overflow",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "memory_out_of_bounds",
    wasmtime.TrapCode.BAD_SIGNATURE: "indirect_call_type_mismatch",
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: "table_out_of_bounds",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "indirect_call_to_null",
    wasmtime.TrapCode.STACK_OVERFLOW: "stack_overflow",
}

TICK_S = 0.005  # epoch period while calls run: the deadline's resolution
MAX_MEMORY_MB = 4096  # a 32-bit linear memory cannot exceed 4 GiB
MODULE_CACHE_SIZE = 64  # compiled modules kept (least recently used evicted)

_INT_RANGES = {"i32": (-(1 << 31), (1 << 31) - 1), "i64": (-(1 << 63), (1 << 63) - 1)}


@dataclass(frozen=True)
class Limits:
    """Operator limits of one call: fuel budget, wall-clock deadline, linear-memory cap."""

    fuel: int = 1_000_000_000
    timeout_s: float = 5.0
    memory_mb: int = 64

    def __post_init__(self) -> None:
        if not 0 <= self.fuel < 1 << 63:
            raise BadInput(f"fuel must be in [0, 2^63), got {self.fuel}")
        if not self.timeout_s > 0:
            raise BadInput(f"timeout must be positive, got {self.timeout_s}")
        if not 0 <= self.memory_mb <= MAX_MEMORY_MB:
            raise BadInput(f"memory cap must be in [0, {MAX_MEMORY_MB}] MiB, got {self.memory_mb}")


@dataclass(frozen=True)
class RunResult:
    """Outcome of a call that returned normally."""

    results: tuple[int, ...]  # i32/i64 results, signed as wasmtime returns them
    fuel_used: int  # fuel consumed by the call (wasmtime's accounting; instantiation excluded)
    memory: bytes | None  # final contents of the exported memory "memory", if any
    elapsed_s: float  # wall time of instantiation plus call


# --- host memory: mmap-backed linear memories that enforce the per-call cap -----------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
]
_libc.mprotect.restype = ctypes.c_int
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.munmap.restype = ctypes.c_int
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.madvise.restype = ctypes.c_int
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", 4)
_MAP_FAILED = ctypes.c_void_p(-1).value
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)
_PAGE = mmap.PAGESIZE
_PROT_NONE = 0
_PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE


def _page_up(n: int) -> int:
    return (n + _PAGE - 1) // _PAGE * _PAGE


class _Call:
    """Per-call state shared with the epoch and memory callbacks."""

    __slots__ = ("cap_bytes", "deadline", "cap_hit", "deadline_hit")

    def __init__(self, cap_bytes: int, deadline: float) -> None:
        self.cap_bytes = cap_bytes
        self.deadline = deadline
        self.cap_hit = False
        self.deadline_hit = False


class _Region:
    """An mmap'd linear memory: `accessible` read-write bytes at the start of `mapped` bytes.

    Wasm sees `size` bytes; the rest of the reservation and the guard pages stay PROT_NONE,
    as wasmtime's generated code (which may elide bounds checks) requires. Released regions
    are zeroed and pooled, since fresh mappings cost page faults on every call.
    """

    __slots__ = ("base", "mapped", "capacity", "accessible", "size", "call")

    def __init__(self, base: int, mapped: int, capacity: int) -> None:
        self.base, self.mapped, self.capacity = base, mapped, capacity
        self.accessible = 0
        self.size = 0
        self.call: _Call | None = None

    def set_accessible(self, nbytes: int) -> None:
        """Make exactly the first `nbytes` (page-rounded) read-write, the rest inaccessible."""
        nbytes = _page_up(nbytes)
        if nbytes > self.accessible:
            start, length, prot = self.accessible, nbytes - self.accessible, _PROT_RW
        elif nbytes < self.accessible:
            start, length, prot = nbytes, self.accessible - nbytes, _PROT_NONE
        else:
            return
        if _libc.mprotect(self.base + start, length, prot) != 0:
            raise OSError(ctypes.get_errno(), f"mprotect: {os.strerror(ctypes.get_errno())}")
        self.accessible = nbytes

    def zero(self) -> None:
        """Reset the contents to zeros (memset when small, page discard when large)."""
        if self.accessible <= ZERO_BY_MEMSET:
            ctypes.memset(self.base, 0, self.accessible)
        elif _libc.madvise(self.base, self.accessible, _MADV_DONTNEED) != 0:
            raise OSError(ctypes.get_errno(), f"madvise: {os.strerror(ctypes.get_errno())}")


ZERO_BY_MEMSET = 1 << 20  # released memories up to this size are zeroed by memset
POOL_PER_SHAPE = 8  # released regions kept per (capacity, mapped) shape

_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # a NULL finalizer pointer
_calls: dict[int, _Call] = {}
_regions: dict[int, _Region] = {}  # live memories by the env key handed to wasmtime
_pool: dict[tuple[int, int], list[_Region]] = {}
_ids = itertools.count(1)
_local = threading.local()  # .call: the _Call instantiating on this thread (for new memories)


def _error_ptr(message: str) -> int:
    """A fresh wasmtime_error_t* (ownership passes to wasmtime) as an integer address."""
    err = ffi.wasmtime_error_new(message.encode())
    return ctypes.cast(err, ctypes.c_void_p).value or 0


def _guarded(body: Callable[..., int]) -> Callable[..., int]:
    """Wrap a callback returning a wasmtime_error_t*: a Python exception becomes an error.

    ctypes would otherwise print the exception and return 0, which wasmtime reads as success.
    """

    @functools.wraps(body)
    def callback(*args: object) -> int:
        try:
            return body(*args)
        except BaseException as exc:  # noqa: BLE001 - must never unwind into wasmtime
            return _error_ptr(f"memjit sandbox callback failed: {exc!r}")

    return callback


@ffi.wasmtime_memory_get_callback_t
def _memory_get(env: int, byte_size: Any, byte_capacity: Any) -> int:
    region = _regions[env]
    byte_size[0] = region.size
    byte_capacity[0] = region.capacity
    return region.base


@ffi.wasmtime_memory_grow_callback_t
@_guarded
def _memory_grow(env: int, new_size: int) -> int:
    region = _regions[env]
    call = region.call
    if call is not None and new_size > call.cap_bytes:
        call.cap_hit = True
        _engine().increment_epoch()  # stop at the next epoch check, not at the next tick
        return _error_ptr(f"memory cap of {call.cap_bytes} bytes exceeded")
    if new_size > region.capacity:
        return _error_ptr("memory growth beyond its reservation")
    region.set_accessible(new_size)
    region.size = new_size
    return 0


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _memory_free(env: int) -> None:
    region = _regions.pop(env)
    region.call = None
    pool = _pool.setdefault((region.capacity, region.mapped), [])
    if len(pool) < POOL_PER_SHAPE:
        try:
            region.zero()
        except OSError:
            pass  # not reusable: unmap it below
        else:
            pool.append(region)
            return
    _libc.munmap(region.base, region.mapped)


@ffi.wasmtime_new_memory_callback_t
@_guarded
def _memory_new(
    env: object, ty: object, minimum: int, maximum: int, reserved: int, guard: int, out: Any
) -> int:
    call: _Call | None = getattr(_local, "call", None)
    if call is not None and minimum > call.cap_bytes:
        call.cap_hit = True
        return _error_ptr(f"initial memory exceeds the cap of {call.cap_bytes} bytes")
    # Reserve what wasmtime's code generation assumes (reservation + guard pages); for a
    # dynamically checked memory, enough to grow in place up to the cap or declared maximum.
    capacity = reserved or min(maximum, call.cap_bytes if call is not None else maximum)
    capacity = _page_up(max(capacity, minimum))
    mapped = capacity + _page_up(guard)
    pool = _pool.get((capacity, mapped))
    if pool:
        region = pool.pop()
    else:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
        base = _libc.mmap(None, mapped, _PROT_NONE, flags, -1, 0)
        if base is None or base == _MAP_FAILED:
            return _error_ptr(f"mmap of {mapped} bytes failed: {os.strerror(ctypes.get_errno())}")
        region = _Region(base, mapped, capacity)
    try:
        region.set_accessible(minimum)
    except OSError as exc:
        _libc.munmap(region.base, region.mapped)
        return _error_ptr(str(exc))
    region.size = minimum
    region.call = call
    key = next(_ids)
    _regions[key] = region
    out[0].env = key
    out[0].get_memory = _memory_get
    out[0].grow_memory = _memory_grow
    out[0].finalizer = _memory_free
    return 0


# --- engine, epoch ticker and the per-store epoch callback --------------------------------


@ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t),
)
@_guarded
def _on_epoch(ctx: object, data: int, delta: Any, kind: Any) -> int:
    call = _calls[data]
    if call.cap_hit:
        return _error_ptr("memory cap exceeded")
    if time.monotonic() >= call.deadline:
        call.deadline_hit = True
        return _error_ptr("deadline exceeded")
    delta[0] = 1
    kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
    return 0


class _Ticker:
    """Advances the engine epoch every TICK_S while at least one call is running."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._cv = threading.Condition()
        self._active = 0
        self._thread: threading.Thread | None = None

    def enter(self) -> None:
        with self._cv:
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="memjit-epoch", daemon=True)
                self._thread.start()
            self._cv.notify()

    def exit(self) -> None:
        with self._cv:
            self._active -= 1

    def forget_thread(self) -> None:
        """After fork: the child has no ticker thread and no running call."""
        self._cv = threading.Condition()
        self._active = 0
        self._thread = None

    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._active == 0:
                    self._cv.wait()
            time.sleep(TICK_S)
            self._engine.increment_epoch()


_engine_lock = threading.Lock()
_engine_obj: wasmtime.Engine | None = None
_ticker: _Ticker | None = None


def _engine() -> wasmtime.Engine:
    """The process-wide engine: fuel, epoch interruption, our capped memory creator."""
    global _engine_obj, _ticker
    if _engine_obj is None:
        with _engine_lock:
            if _engine_obj is None:
                config = wasmtime.Config()
                config.consume_fuel = True
                config.epoch_interruption = True
                # Copy-on-write memory images assume wasmtime's own mmaps (a custom memory
                # with a data segment hits an `unreachable!` in wasmtime 50): initialize by copy.
                ffi.wasmtime_config_memory_init_cow_set(config.ptr(), False)
                creator = ffi.wasmtime_memory_creator_t()
                creator.new_memory = _memory_new
                ffi.wasmtime_config_host_memory_creator_set(config.ptr(), byref(creator))
                engine = wasmtime.Engine(config)
                _ticker = _Ticker(engine)
                _engine_obj = engine
    return _engine_obj


def _after_fork() -> None:
    if _ticker is not None:
        _ticker.forget_thread()


os.register_at_fork(after_in_child=_after_fork)


# --- compiled modules ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Export:
    params: tuple[str, ...]
    results: tuple[str, ...]


class _Compiled:
    """A compiled module with what each call needs precomputed."""

    def __init__(self, module: wasmtime.Module, source: bytes, cid: str) -> None:
        self.module = module
        self.source = source
        self.cid = cid
        self.first_import = next((f"{i.module}.{i.name}" for i in module.imports
                                  if i.module != PRECOMPILE_MODULE or i.name not in PRECOMPILES),
                                 None)
        self.precompiles = tuple(PRECOMPILES[i.name] - DOT_I8I8 for i in module.imports
                                 if self.first_import is None)
        self.functions: dict[str, _Export] = {}
        self.other_exports: dict[str, str] = {}
        for exp in module.exports:
            ty = exp.type
            if isinstance(ty, wasmtime.FuncType):
                self.functions[exp.name] = _Export(
                    tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)
                )
            else:
                self.other_exports[exp.name] = type(ty).__name__.removesuffix("Type").lower()
        memory = next((e for e in module.exports if e.name == "memory"), None)
        self.has_memory = memory is not None and isinstance(memory.type, wasmtime.MemoryType)

    def refuse_imports(self) -> None:
        """Raise UnsupportedModule naming the first import other than a precompile, if the
        module has any, or if it imports a precompile without exporting its memory."""
        if self.first_import is not None:
            raise UnsupportedModule(
                f"module imports {self.first_import}; workers may import only memjit's "
                f"precompiles ({', '.join(PRECOMPILES)})"
            )
        if self.precompiles and not self.has_memory:
            raise UnsupportedModule("a worker that imports a precompile must export its memory "
                                    "as 'memory'")

    def export(self, name: str) -> _Export:
        """The signature of function export `name`, refusing non-integer interfaces."""
        sig = self.functions.get(name)
        if sig is None:
            if name in self.other_exports:
                raise BadInput(f"export {name!r} is a {self.other_exports[name]}, not a function")
            known = ", ".join(sorted(self.functions)) or "none"
            raise BadInput(f"module has no function export {name!r} (functions: {known})")
        for ty in sig.params + sig.results:
            if ty not in _INT_RANGES:
                raise UnsupportedModule(
                    f"export {name!r} has type {_sig_text(sig)}; "
                    "only i32/i64 parameters and results are supported"
                )
        return sig


def _sig_text(sig: _Export) -> str:
    return f"({', '.join(sig.params)}) -> ({', '.join(sig.results)})"


_cache_lock = threading.Lock()
_by_cid: OrderedDict[str, _Compiled] = OrderedDict()  # least recently used first
_cid_by_source: dict[bytes, str] = {}  # spares the (slow) CID computation on repeat calls


def _compile(module: bytes) -> _Compiled:
    """The cached compiled module for these bytes (keyed by content ID)."""
    if not isinstance(module, (bytes, bytearray, memoryview)):
        raise BadInput(f"module must be bytes, not {type(module).__name__}")
    source = bytes(module)
    cid = _cid_by_source.get(source)
    if cid is None:
        from memjit.runtime.store import cid_of  # multiformats is slow to import; only on a miss

        cid = cid_of(source)
    with _cache_lock:
        compiled = _by_cid.get(cid)
        if compiled is not None:
            _by_cid.move_to_end(cid)
            return compiled
    try:
        wasm_module = wasmtime.Module(_engine(), source)
    except WasmtimeError as exc:
        raise BadInput(f"invalid WebAssembly module: {_one_line(str(exc))}") from None
    compiled = _Compiled(wasm_module, source, cid)
    compiled.refuse_imports()
    # Workers must be provable: refuse anything outside the integer subset (floats, SIMD, ...)
    # before it ever runs, naming the first offending instruction.
    from memjit.runtime.wasm import load

    load(source, crosscheck=False)
    with _cache_lock:
        _by_cid[cid] = compiled
        _cid_by_source[source] = cid
        while len(_by_cid) > MODULE_CACHE_SIZE:
            _, evicted = _by_cid.popitem(last=False)
            _cid_by_source.pop(evicted.source, None)
    return compiled


def _one_line(text: str) -> str:
    """A wasmtime error on one line: its headline and, if any, its root cause."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip() != "Caused by:"]
    if not lines:
        return "unknown error"
    return lines[0] if len(lines) == 1 else f"{lines[0]}: {lines[-1]}"


def check_imports(module: bytes) -> None:
    """Refuse a module that imports anything (a worker gets no host functions at all)."""
    _compile(module).refuse_imports()


# --- precompiles ---------------------------------------------------------------------------


def dot(memory: bytes | memoryview, a: int, b: int, n: int, b_signed: bool) -> int:
    """The precompile ``dot_i8i8`` (b_signed) or ``dot_i8u8`` on linear memory: the int32
    (wrapping) sum of int8 a[i] times int8 / uint8 b[i], i < n; IndexError if an operand lies
    outside the memory (the call's trap)."""
    if a + n > len(memory) or b + n > len(memory):
        raise IndexError("precompile operand outside linear memory")
    x = np.frombuffer(memory, np.int8, n, a).astype(np.int64)
    y = np.frombuffer(memory, np.int8 if b_signed else np.uint8, n, b).astype(np.int64)
    total = int(x @ y) & 0xFFFFFFFF
    return total - (total >> 31 << 32)


@ffi.wasmtime_func_callback_t
def _precompile(env, caller, args, nargs, results, nresults):  # type: ignore[no-untyped-def]
    """wasmtime's call of a precompile (env: its index in PRECOMPILES): charge its fuel, then
    compute it on the caller's memory; returns a trap pointer, or 0."""
    ctx = ffi.wasmtime_caller_context(caller)
    a, b, n = (args[i].of.i32 & 0xFFFFFFFF for i in range(3))
    cost, left = precompile_fuel(n), _fuel_left(ctx)
    if cost >= left:  # the sandbox's budget has one unit of headroom (see run)
        ffi.wasmtime_context_set_fuel(ctx, 0)
        return ctypes.cast(ffi.wasmtime_trap_new_code(_OUT_OF_FUEL_CODE), ctypes.c_void_p).value
    ffi.wasmtime_context_set_fuel(ctx, left - cost)
    item = ffi.wasmtime_extern_t()
    ffi.wasmtime_caller_export_get(caller, b"memory", 6, byref(item))
    size = ffi.wasmtime_memory_data_size(ctx, byref(item.of.memory))
    base = ffi.wasmtime_memory_data(ctx, byref(item.of.memory))
    view = (ctypes.c_uint8 * size).from_address(ctypes.addressof(base.contents))
    try:
        value = dot(memoryview(view).cast("B"), a, b, n, (env or 0) == 0)
    except IndexError:
        return ctypes.cast(ffi.wasmtime_trap_new_code(_OOB_CODE), ctypes.c_void_p).value
    except Exception as exc:  # a bug here must stop the call, never return a wrong value
        message = f"memjit precompile failed: {exc!r}".encode()
        return ctypes.cast(ffi.wasmtime_trap_new(message, len(message)), ctypes.c_void_p).value
    results[0].kind = _KIND["i32"]
    results[0].of.i32 = value
    return 0


_OUT_OF_FUEL_CODE, _OOB_CODE = 11, 1  # wasmtime_trap_code_t: OUT_OF_FUEL, MEMORY_OUT_OF_BOUNDS


@functools.lru_cache(maxsize=1)
def _precompile_type() -> wasmtime.FuncType:
    i32 = wasmtime.ValType.i32()
    return wasmtime.FuncType([i32, i32, i32], [i32])


def _host_imports(ctx: Any, compiled: _Compiled) -> ctypes.Array:
    """The store's functions for the module's imports (precompiles), in import order."""
    externs = (ffi.wasmtime_extern_t * len(compiled.precompiles))()
    for k, index in enumerate(compiled.precompiles):
        func = ffi.wasmtime_func_t()
        ffi.wasmtime_func_new(ctx, _precompile_type().ptr(), _precompile, index, _NO_FINALIZER,
                              byref(func))
        externs[k].kind = ffi.WASMTIME_EXTERN_FUNC
        externs[k].of.func = func
    return externs


# --- one call -----------------------------------------------------------------------------

_KIND = {"i32": ffi.WASMTIME_I32.value, "i64": ffi.WASMTIME_I64.value}


def _convert_args(export: str, sig: _Export, args: Sequence[int]) -> ctypes.Array:
    if len(args) != len(sig.params):
        raise BadInput(
            f"export {export!r} takes {len(sig.params)} argument(s) {_sig_text(sig)}, got {len(args)}"
        )
    vals = (ffi.wasmtime_val_t * len(args))()
    for i, (arg, ty) in enumerate(zip(args, sig.params)):
        if isinstance(arg, bool) or not isinstance(arg, int):
            raise BadInput(f"argument {i} of {export!r} must be an integer, got {arg!r}")
        lo, hi = _INT_RANGES[ty]
        if not lo <= arg <= hi:
            raise BadInput(f"argument {i} of {export!r} = {arg} is out of {ty} range [{lo}, {hi}]")
        vals[i].kind = _KIND[ty]
        if ty == "i32":
            vals[i].of.i32 = arg
        else:
            vals[i].of.i64 = arg
    return vals


def _out_of_fuel(subject: str, limits: Limits) -> OutOfFuel:
    return OutOfFuel(f"out of fuel: {subject} used more than its budget of {limits.fuel} fuel")


def _fuel_left(ctx: Any) -> int:
    fuel = ctypes.c_uint64()
    ffi.wasmtime_context_get_fuel(ctx, byref(fuel))
    return fuel.value


def _fault(call: _Call, subject: str, limits: Limits, error: Any, trap: Any) -> Exception:
    """The typed error of a failed instantiation or call; takes ownership of error/trap.

    `subject` names what ran in messages: the quoted export, or "instantiation".
    """
    message = ""
    code = None
    if trap:
        trap_obj = wasmtime.Trap._from_ptr(trap)
        code = trap_obj.trap_code
        message = trap_obj.message
    if error:
        message = str(WasmtimeError._from_ptr(error))
    if call.cap_hit:
        return MemoryCapExceeded(
            f"memory cap exceeded: {subject} needed more than {limits.memory_mb} MiB"
        )
    if call.deadline_hit:
        return DeadlineExceeded(f"deadline exceeded: {subject} ran past {limits.timeout_s:g} s")
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return _out_of_fuel(subject, limits)
    if code is not None:
        name = _TRAP_NAMES.get(code, code.name.lower())
        return Trap(name, f"trap: {name} in {subject}")
    return Trap("unknown", f"trap in {subject}: {_one_line(message)}")


def run(
    module: bytes, export: str, args: Sequence[int] = (), limits: Limits = Limits(),
    input_bytes: bytes = b"",
) -> RunResult:
    """Run `export(*args)` on a fresh instance of `module` under `limits`, with `input_bytes`
    written to its `memjit_input` buffer first (see memjit.runtime.tensor_io).

    Raises UnsupportedModule for a module with imports or a non-integer export signature,
    BadInput for invalid bytes, a missing export or bad arguments, and a WorkerFault
    (OutOfFuel, DeadlineExceeded, MemoryCapExceeded, Trap) when the worker fails.
    """
    compiled = _compile(module)
    compiled.refuse_imports()
    sig = compiled.export(export)
    params = _convert_args(export, sig, args)
    placement = None
    if input_bytes:
        from memjit.runtime.tensor_io import input_placement
        from memjit.runtime.wasm import load

        placement = input_placement(load(compiled.source, crosscheck=False), input_bytes)
        if not compiled.has_memory:
            raise BadInput("a worker that takes input must export its memory as 'memory'")
    results = (ffi.wasmtime_val_t * len(sig.results))()
    engine = _engine()
    assert _ticker is not None

    start = time.monotonic()
    call = _Call(limits.memory_mb << 20, start + limits.timeout_s)
    call_id = next(_ids)
    _calls[call_id] = call
    store = ffi.wasmtime_store_new(engine.ptr(), None, _NO_FINALIZER)
    ctx = ffi.wasmtime_store_context(store)
    _ticker.enter()
    try:
        # Wasmtime checks fuel only at function entries and loop headers, so code can run past
        # the budget by a straight-line stretch, after which the fuel left reads 0. One unit of
        # headroom makes the verdict exact: 0 left means more than the budget was consumed.
        budget = limits.fuel + 1
        ffi.wasmtime_context_set_fuel(ctx, budget)
        ffi.wasmtime_context_set_epoch_deadline(ctx, 1)
        ffi.wasmtime_store_epoch_deadline_callback(store, _on_epoch, call_id, _NO_FINALIZER)
        instance = ffi.wasmtime_instance_t()
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        _local.call = call
        try:
            imports = _host_imports(ctx, compiled) if compiled.precompiles else None
            error = ffi.wasmtime_instance_new(
                ctx, compiled.module.ptr(), imports, len(compiled.precompiles), byref(instance),
                byref(trap)
            )
        finally:
            _local.call = None
        if error or trap or call.cap_hit:
            raise _fault(call, "instantiation", limits, error, trap)
        # Instantiation (1 fuel per data-segment byte, the start function) has its own budget.
        if _fuel_left(ctx) == 0:
            raise _out_of_fuel("instantiation", limits)
        ffi.wasmtime_context_set_fuel(ctx, budget)

        item = ffi.wasmtime_extern_t()
        if placement is not None:  # checked to fit in the initial memory
            ffi.wasmtime_instance_export_get(ctx, byref(instance), b"memory", 6, byref(item))
            address, data = placement
            base = ffi.wasmtime_memory_data(ctx, byref(item.of.memory))
            ctypes.memmove(ctypes.addressof(base.contents) + address, data, len(data))
        name = export.encode()
        ffi.wasmtime_instance_export_get(ctx, byref(instance), name, len(name), byref(item))
        error = ffi.wasmtime_func_call(
            ctx, byref(item.of.func), params, len(params), results, len(results), byref(trap)
        )
        if error or trap or call.cap_hit or call.deadline_hit:
            raise _fault(call, repr(export), limits, error, trap)
        fuel_after = _fuel_left(ctx)
        if fuel_after == 0:
            raise _out_of_fuel(repr(export), limits)
        fuel_used = budget - fuel_after
        values = tuple(r.of.i32 if r.kind == _KIND["i32"] else r.of.i64 for r in results)

        memory = None
        if compiled.has_memory:
            ffi.wasmtime_instance_export_get(ctx, byref(instance), b"memory", 6, byref(item))
            size = ffi.wasmtime_memory_data_size(ctx, byref(item.of.memory))
            memory = ctypes.string_at(ffi.wasmtime_memory_data(ctx, byref(item.of.memory)), size)
        return RunResult(values, fuel_used, memory, time.monotonic() - start)
    finally:
        _ticker.exit()
        ffi.wasmtime_store_delete(store)
        del _calls[call_id]

