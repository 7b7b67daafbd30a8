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
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.isa import OP_IDS
from circuits.wasm_vm.program import Export
from circuits.wasm_vm.statement import NO_NONCE, NONCE_BYTES, TRAPS
from memjit.errors import BadInput, Trap, UnsupportedModule
from memjit.runtime.tracer import trace_checked
from memjit.runtime.wasm import Program, load
from memjit.runtime.wasm.opcodes import BR_ENTRY, MEMORY_GROW, OP_NAMES, TABLE_ENTRY
from memjit.runtime.tensor_io import buffer_address, output_length
from memjit.runtime.wasm.program import INPUT_GLOBAL, OUTPUT_GLOBAL, PAGE
from memjit.runtime.witness import witness
from prover import ProverStats, prove
from verifier.claims import Claim, encode_claim, verify_claim  # noqa: F401  (re-exported)
from verifier.params import DEFAULT_PARAMS, ProofParams

# --- verification key -------------------------------------------------------------------------

MAX_GROW_PAGES = T.MAX_ADDR // 16384 - 1
"""The largest memory (pages) a program using memory.grow may declare: every word's key
must fit the VM's linear-memory key space."""

def check_supported(prog: Program) -> None:
    """Refuse (UnsupportedModule, naming it) any instruction the VM AIR does not prove."""
    ops = np.unique(prog.op)
    allowed = set(OP_IDS.values()) | {BR_ENTRY, TABLE_ENTRY}  # data rows are never executed
    bad = [int(o) for o in ops if int(o) not in allowed]
    if bad:
        names = ", ".join(OP_NAMES[o] for o in bad)
        raise UnsupportedModule(f"module uses instructions the VM cannot prove yet: {names}")
    indexed = (prog.op == OP_IDS["br_table"]) | (prog.op == OP_IDS["call_indirect"])
    if np.any(prog.imm[indexed] >= 1 << 16):
        raise UnsupportedModule("module has a br_table of 2^16 or more labels or 2^16 types")
    if MEMORY_GROW in ops and prog.mem_max > MAX_GROW_PAGES:
        raise UnsupportedModule(f"module uses memory.grow without a declared maximum of at most "
                                f"{MAX_GROW_PAGES} pages (the VM cannot prove larger memories)")


def vm_program(prog: Program) -> VmProgram:
    """The VK contents of a lowered program (UnsupportedModule if an I/O buffer lies outside
    its initial memory)."""
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
                     prog.mem_max if MEMORY_GROW in prog.op else None)


def vk_of(module_bytes: bytes) -> bytes:
    """The verification key of a module (canonical bytes; its BLAKE3 digest names it)."""
    return vm_program(load(module_bytes)).encode()


# --- claims -----------------------------------------------------------------------------------

def prove_claim(module_bytes: bytes, export: str, args: list[int] | tuple[int, ...] = (),
                params: ProofParams = DEFAULT_PARAMS, stats: ProverStats | None = None, *,
                input_bytes: bytes = b"", output_len: int | str | None = None,
                nonce: bytes = NO_NONCE) -> Claim:
    """Trace ``export(*args)`` on ``input_bytes`` (cross-checked against wasmtime) and prove it,
    binding ``output_len`` output bytes (a count, ``"result"`` for the call's result, None for
    none; see memjit.runtime.tensor_io) and the ``nonce`` it answers (a request's 32 bytes);
    UnsupportedModule for instructions outside the AIR."""
    if len(nonce) != NONCE_BYTES:
        raise BadInput(f"a nonce is {NONCE_BYTES} bytes, got {len(nonce)}")
    prog = load(module_bytes)
    check_supported(prog)
    vm = vm_program(prog)
    if export not in vm.exports:
        prog.signature(export)  # BadInput naming the known exports
        raise UnsupportedModule(f"export {export!r} has a non-i32 signature")
    stats = stats if stats is not None else ProverStats()
    with stats.phase("run"):  # wasmtime and the tracer; the trace must agree with wasmtime
        tr = trace_checked(module_bytes, export, list(args), input_bytes=input_bytes)
    if tr.trap is not None and tr.trap not in TRAPS:
        raise Trap(tr.trap, f"trap: {tr.trap} (only {', '.join(TRAPS)} traps are provable yet)")
    length = output_length(output_len, tr.results)
    if length:
        buffer_address(prog, OUTPUT_GLOBAL, length)  # BadInput unless inside the initial memory
    with stats.phase("witness"):
        main, st = witness(tr, vm, input_bytes, length)
    st = replace(st, nonce=bytes(nonce))
    air = VmAir(VmInputs(vm, st))
    return Claim(st, prove(air, main, params, stats=stats))


__all__ = ["Claim", "encode_claim", "prove_claim", "verify_claim", "vk_of", "witness"]
