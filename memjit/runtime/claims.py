"""Claims: "this module, called at this export with these arguments, returned this result",
with a STARK proof of the VM AIR. The only place that knows both the tracer and the AIR.

``vk_of`` derives the verification key from module bytes; ``prove_claim`` traces the call,
builds the AIR witness (vectorized, from the trace columns) and proves it; ``verify_claim``
checks a claim file against VK bytes (the check itself lives in :mod:`verifier.claims`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from circuits.wasm_vm import VmAir, VmInputs, VmProgram
from circuits.wasm_vm.air import MAX_LOG_N
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.isa import OP_IDS
from circuits.wasm_vm.program import Export
from circuits.wasm_vm.statement import NO_NONCE, NONCE_BYTES, TRAPS
from memjit.errors import BadInput, InternalError, Trap, UnsupportedModule
from memjit.runtime.sandbox import Limits
from memjit.runtime.segments import MIN_SEGMENT_LOG, Engine, SerialEngine, prove_segmented
from memjit.runtime.tracer import trace_checked
from memjit.runtime.wasm import Program, load
from memjit.runtime.wasm.opcodes import BR_ENTRY, DOT_I8I8, MEMORY_GROW, OP_NAMES, TABLE_ENTRY
from memjit.runtime.tensor_io import buffer_address, output_length
from memjit.runtime.wasm.program import INPUT_GLOBAL, OUTPUT_GLOBAL, PAGE
from memjit.runtime.witness import witness
from prover import ProverStats, prove
from prover.composition import ConstraintViolation
from verifier.claims import Claim, encode_claim, verify_claim  # noqa: F401  (re-exported)
from verifier.params import DEFAULT_PARAMS, ProofParams

# --- verification key -------------------------------------------------------------------------

def check_supported(prog: Program) -> None:
    """Refuse (UnsupportedModule, naming it) any instruction the VM AIR does not prove."""
    ops = np.unique(prog.op)
    allowed = set(OP_IDS.values()) | {BR_ENTRY, TABLE_ENTRY}  # data rows are never executed
    bad = [int(o) for o in ops if int(o) not in allowed]
    if bad:
        names = ", ".join(OP_NAMES[o] for o in bad)
        raise UnsupportedModule(f"module uses instructions the VM cannot prove yet: {names}")
    if MEMORY_GROW in prog.op and (prog.op >= DOT_I8I8).any():
        raise UnsupportedModule("module calls a precompile and grows its memory: the tensor "
                                "table bounds its reads by the memory cap, not the current size")
    indexed = (prog.op == OP_IDS["br_table"]) | (prog.op == OP_IDS["call_indirect"])
    if np.any(prog.imm[indexed] >= 1 << 16):
        raise UnsupportedModule("module has a br_table of 2^16 or more labels or 2^16 types")


def vm_program(prog: Program, memory_mb: int = Limits.memory_mb) -> VmProgram:
    """The VK contents of a lowered program run under a memory cap of ``memory_mb`` MiB:
    everything of a fresh instance's start state. UnsupportedModule if the module cannot be
    instantiated, its memory can outgrow the VM's (64 MiB), or an I/O buffer lies outside its
    initial memory."""
    if prog.init_trap is not None:
        raise UnsupportedModule(f"module cannot be instantiated: {prog.init_fault}")
    cap = memory_mb * (1 << 20) // PAGE
    if prog.mem_min > cap:
        raise UnsupportedModule(f"module's initial memory of {prog.mem_min} pages exceeds the "
                                f"memory cap of {memory_mb} MiB")
    max_pages = prog.mem_max if prog.has_memory else 0
    end = min(max_pages, cap) if MEMORY_GROW in prog.op else prog.mem_min
    if end > T.MAX_MEMORY_PAGES:
        raise UnsupportedModule(
            f"module's memory can reach {end} pages; the VM proves at most "
            f"{T.MAX_MEMORY_PAGES} ({T.MAX_MEMORY_PAGES // 16} MiB)"
            + (f": declare a maximum or lower the memory cap of {memory_mb} MiB"
               if end > prog.mem_min else ""))
    long = next((name for name in prog.exports if len(name.encode()) > 0xFFFF), None)
    if long is not None:
        raise UnsupportedModule(f"export name of {len(long.encode())} bytes: a key names exports "
                                f"in at most 65535")
    for name, address in prog.buffers.items():
        if address >= (prog.mem_min * PAGE if prog.has_memory else 0):
            raise UnsupportedModule(f"global {name!r} points outside the initial memory")
    words = prog.memory_image().view("<u4").astype(np.uint64) if prog.has_memory else \
        np.zeros(0, np.uint64)
    idx = np.flatnonzero(words).astype(np.uint64)
    exports = {name: Export(int(prog.func_entry[sig.func]), int(prog.func_nparams[sig.func]),
                            len(sig.results) + sig.results.count("i64"))
               for name, sig in prog.exports.items()}
    return VmProgram(prog.to_rows(), prog.mem_min if prog.has_memory else 0,
                     prog.globals_init.astype(np.uint64), idx, words[idx.astype(np.int64)], exports,
                     prog.buffers.get(INPUT_GLOBAL), prog.buffers.get(OUTPUT_GLOBAL),
                     max_pages, end)


def vk_of(module_bytes: bytes, memory_mb: int = Limits.memory_mb) -> bytes:
    """The verification key of a module under a memory cap of ``memory_mb`` MiB (canonical
    bytes; its BLAKE3 digest names it). The cap enters the key only when the module grows its
    memory."""
    return vm_program(load(module_bytes), memory_mb).encode()


# --- claims -----------------------------------------------------------------------------------

def prove_claim(module_bytes: bytes, export: str, args: list[int] | tuple[int, ...] = (),
                params: ProofParams = DEFAULT_PARAMS, stats: ProverStats | None = None, *,
                input_bytes: bytes = b"", output_len: int | str | None = None,
                limits: Limits = Limits(), nonce: bytes = NO_NONCE,
                segment_log: int | None = None, engine: Engine | None = None) -> Claim:
    """Trace ``export(*args)`` on ``input_bytes`` under the sandbox ``limits`` (cross-checked
    against wasmtime) and prove it, binding ``output_len`` output bytes (a count, ``"result"``
    for the call's result, None for none; see memjit.runtime.tensor_io) and the ``nonce`` it
    answers (a request's 32 bytes). A run of 2^``segment_log`` steps or more is proven in
    segments of at most 2^``segment_log`` rows (memjit.runtime.segments) by ``engine``
    (default: serially, here), giving a version-2 claim. UnsupportedModule (one line) for a
    module or a call outside what the VM AIR proves; InternalError if the prover's own check
    fails."""
    if len(nonce) != NONCE_BYTES:
        raise BadInput(f"a nonce is {NONCE_BYTES} bytes, got {len(nonce)}")
    prog = load(module_bytes)
    check_supported(prog)
    vm = vm_program(prog, limits.memory_mb)
    if export not in vm.exports:
        prog.signature(export)  # BadInput naming the known exports
        raise UnsupportedModule(f"export {export!r} has a non-i32 signature")
    if len(export.encode()) > 255:
        raise UnsupportedModule(f"this call is not provable: a statement names its export in at "
                                f"most 255 bytes, this one has {len(export.encode())}")
    stats = stats if stats is not None else ProverStats()
    with stats.phase("run"):  # wasmtime and the tracer; the trace must agree with wasmtime
        tr = trace_checked(module_bytes, export, list(args), limits, input_bytes=input_bytes,
                           stream=segment_log is not None)
    if tr.trap is not None and tr.trap not in TRAPS:
        raise Trap(tr.trap, f"trap: {tr.trap} (only {', '.join(TRAPS)} traps are provable yet)")
    length = output_length(output_len, tr.results)
    if length:
        buffer_address(prog, OUTPUT_GLOBAL, length)  # BadInput unless inside the initial memory
    if segment_log is not None and tr.steps >= 1 << segment_log:
        if not MIN_SEGMENT_LOG <= segment_log <= MAX_LOG_N:
            raise BadInput(f"segments of 2^{segment_log} rows: the VM proves 2^{MIN_SEGMENT_LOG} "
                           f"to 2^{MAX_LOG_N}")
        return prove_segmented(tr, vm, input_bytes, length, nonce, segment_log, params,
                               engine if engine is not None else SerialEngine(stats), stats)
    if segment_log is not None:  # one segment: the whole (short) trace
        with stats.phase("run"):
            tr = tr.whole()
    with stats.phase("witness"):
        main, st = witness(tr, vm, input_bytes, length)
    st = replace(st, nonce=bytes(nonce))
    try:
        air = VmAir(VmInputs(vm, st))
    except ValueError as exc:  # the statement is outside the AIR's bounds (trace length, ...)
        raise UnsupportedModule(f"this call is not provable: {exc}") from None
    try:
        return Claim(st, prove(air, main, params, stats=stats))
    except ConstraintViolation as exc:
        at = ""
        if exc.row is not None and exc.row < tr.steps:
            pc = int(tr.pc[exc.row])
            at = f" (trace row {exc.row}: pc {pc}, {OP_NAMES[prog.op[pc]]})"
        raise InternalError(f"the prover's own check failed, no claim written: {exc}{at}; "
                            f"this is a bug in memjit") from None


__all__ = ["Claim", "encode_claim", "prove_claim", "verify_claim", "vk_of", "witness"]
