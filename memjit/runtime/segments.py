"""Segmented proving (continuations): one traced run cut into segments proven independently.

The client traces the whole call once, then walks it in slices of at most ``2^K - 1`` steps:
for each slice it builds the segment's witness (the VM AIR's columns of those rows, every
memory key public at both ends, read from a running image of the run's memory) and its
statement (circuits.wasm_vm.segment), and hands the pair to an engine that proves it. The
serial engine proves in this process; memjit.cluster proves on Dask workers. Proofs come
back in run order and make a version-2 claim (verifier.claims).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from circuits.wasm_vm import VmProgram, VmStatement
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.air import MAX_LOG_N
from circuits.wasm_vm.columns import COL, reg
from circuits.wasm_vm.segment import MemoryImage, SegmentAir, SegmentStatement, State, \
    from_limbs, to_limbs
from memjit.errors import InternalError
from memjit.runtime.tracer import Trace
from memjit.runtime.witness import run_statement, witness
from prover import ProverStats, prove
from prover.composition import ConstraintViolation
from verifier.claims import Claim
from verifier.params import AirShape, ProofParams
from verifier.segments import run_digest

SENTINELS = [T.STACK, T.STACK + 1, T.MEMORY]
"""Keys every segment's table holds: the result slots (the last segment's table starts with
them) and the word that splits the span to the end sentinel."""
MIN_SEGMENT_LOG = 6  # the smallest trace the witness builds
DEFAULT_MIN_LOG = 16  # the smallest segment size picked from free memory
BYTES_PER_ROW = 10_000  # a segment's proving peak per trace row (measured: 2^20 rows ~ 10 GB)


@dataclass(frozen=True, eq=False)
class SegmentJob:
    """What a worker needs to prove one segment: the program (from the VK), the segment's
    statement, its main trace and the proof parameters."""

    program: VmProgram
    segment: SegmentStatement
    main: np.ndarray
    params: ProofParams


def prove_segment(job: SegmentJob, stats: ProverStats | None = None) -> bytes:
    """Prove one segment (runs wherever the engine sends it)."""
    try:
        return prove(SegmentAir(job.program, job.segment), job.main, job.params, stats=stats)
    except ConstraintViolation as exc:
        raise InternalError(f"the prover's own check failed on segment {job.segment.index}: "
                            f"{exc}; this is a bug in memjit") from None


class Engine(Protocol):
    """Proves segment jobs, yielding their proofs in the jobs' order."""

    def prove_all(self, jobs: Iterable[SegmentJob]) -> Iterator[bytes]: ...


class SerialEngine:
    """Proves each segment in this process as soon as its witness exists (one at a time)."""

    def __init__(self, stats: ProverStats | None = None) -> None:
        self.stats = stats

    def prove_all(self, jobs: Iterable[SegmentJob]) -> Iterator[bytes]:
        for job in jobs:
            yield prove_segment(job, self.stats)


def default_segment_log(free_bytes: int | None = None) -> int:
    """The largest segment size (log2 rows, 2^16 to 2^22) whose proving peak fits
    ``free_bytes`` (default: the memory available now, from /proc/meminfo)."""
    if free_bytes is None:
        free_bytes = available_memory()
    rows = max(free_bytes // BYTES_PER_ROW, 1)
    return max(DEFAULT_MIN_LOG, min(rows.bit_length() - 1, MAX_LOG_N))


def available_memory() -> int:
    """Bytes of memory available to new processes (MemAvailable; 4 GiB if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def _slice(tr: Trace, t0: int, t1: int) -> Trace:
    """Rows [t0, t1) of a trace as a trace of their own; only the run's last slice keeps its
    outcome."""
    last = t1 == tr.steps
    return replace(tr, steps=t1 - t0, columns={k: v[t0:t1] for k, v in tr.columns.items()},
                   results=tr.results if last else (), trap=tr.trap if last else None)


def _state(tr: Trace, t: int) -> State:
    return State(int(tr.pc[t]), int(tr.fp[t]), int(tr.depth[t]), int(tr.pages[t]))


def segment_jobs(tr: Trace, vm: VmProgram, statement: VmStatement, log_rows: int,
                 params: ProofParams) -> Iterator[SegmentJob]:
    """The run's segments in order, each of at most 2^log_rows rows (a slice whose memory
    table would not fit is halved). Lazy: one witness is built per job requested."""
    run, image = run_digest(statement), MemoryImage(vm, statement.args, statement.input)
    end_key = T.MEMORY + vm.end_pages * T.PAGE_WORDS
    limit = (1 << log_rows) - 1
    t0, index = 0, 0
    while t0 < tr.steps:
        span = min(limit, tr.steps - t0)
        while True:
            t1 = t0 + span
            keys_of = {}

            def public(accessed: np.ndarray) -> tuple:
                keys = np.unique(np.concatenate([accessed, SENTINELS, [end_key]])
                                 .astype(np.uint64))
                keys_of["keys"] = keys
                return keys, to_limbs(keys, image.read(keys)), keys

            main, base = witness(_slice(tr, t0, t1), vm, public_memory=public)
            if base.log_n <= log_rows or span == 1:
                break
            span //= 2  # the slice touches more keys than rows: cut it shorter
        keys = keys_of["keys"]
        init = image.read(keys)
        fin = from_limbs(keys, main[reg("mfin"), :len(keys)].T)
        last = t1 == tr.steps
        if not last:  # the witness of a whole run leaves the last row's next pc 0
            main[COL["npc"], t1 - t0 - 1] = int(tr.pc[t1])
        seg = SegmentStatement(replace(base, nonce=statement.nonce), run, index, _state(tr, t0),
                               None if last else _state(tr, t1), keys, init, fin)
        image.write(keys, fin)
        yield SegmentJob(vm, seg, main, params)
        t0, index = t1, index + 1


def prove_segmented(tr: Trace, vm: VmProgram, input_bytes: bytes, output_len: int,
                    nonce: bytes, log_rows: int, params: ProofParams, engine: Engine,
                    stats: ProverStats | None = None) -> Claim:
    """A version-2 claim of a traced run, proven in segments of at most 2^log_rows rows;
    ``stats`` gets the weakest segment's conjectured security."""
    statement = replace(run_statement(tr, vm, input_bytes, output_len), log_n=log_rows,
                        nonce=bytes(nonce))
    segments: list[SegmentStatement] = []

    def jobs() -> Iterator[SegmentJob]:
        for job in segment_jobs(tr, vm, statement, log_rows, params):
            segments.append(job.segment)
            yield job

    proofs = list(engine.prove_all(jobs()))
    if stats is not None:  # the largest segment with the most public tuples is the weakest
        widest = max(segments, key=lambda s: (s.base.log_n, len(s.keys) + len(s.base.mult_index)))
        security = params.security(AirShape.of(SegmentAir(vm, widest)))
        stats.security_bits, stats.limited_by = security.bits, security.limited_by
    return Claim(statement, b"", tuple(zip(segments, proofs)))
