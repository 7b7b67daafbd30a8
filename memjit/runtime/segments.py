"""Segmented proving (continuations): one traced run cut into segments proven independently.

The client traces the call (a counting run, then its rows chunk by chunk as the segments reach
them: the whole trace is never held), and walks it in slices of at most ``2^K - 1`` steps:
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
from memjit.runtime.tracer import Trace, TraceStream
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


class _Rows:
    """Rows of a run from a start that only moves forward: a streamed trace's chunks are
    recorded as the segments reach them and dropped once behind, so the client holds about
    two chunks of the trace, never the whole run (a whole :class:`Trace` is one chunk)."""

    def __init__(self, tr: Trace | TraceStream, chunk_rows: int) -> None:
        self.tr = tr
        self.chunks = tr.chunks(chunk_rows) if isinstance(tr, TraceStream) else iter([tr.columns])
        self.held: list[tuple[int, dict[str, np.ndarray]]] = []  # (first row, columns)

    def columns(self, t0: int, t1: int) -> dict[str, np.ndarray]:
        """Columns of rows [t0, t1); rows before t0 are forgotten."""
        self.held = [(s, c) for s, c in self.held if s + len(c["pc"]) > t0]
        while not self.held or self.held[-1][0] + len(self.held[-1][1]["pc"]) < t1:
            first = self.held[-1][0] + len(self.held[-1][1]["pc"]) if self.held else 0
            self.held.append((first, next(self.chunks)))
        parts = [(c, max(t0 - s, 0), min(t1 - s, len(c["pc"]))) for s, c in self.held
                 if s < t1]
        return {k: np.concatenate([c[k][a:b] for c, a, b in parts]) if len(parts) > 1
                else parts[0][0][k][parts[0][1]:parts[0][2]] for k in parts[0][0]}

    def slice(self, t0: int, t1: int) -> Trace:
        """Rows [t0, t1) as a trace of their own; only the run's last slice keeps its
        outcome."""
        last = t1 == self.tr.steps
        head = self.tr.head if isinstance(self.tr, TraceStream) else self.tr
        return replace(head, steps=t1 - t0, columns=self.columns(t0, t1),
                       results=head.results if last else (), trap=head.trap if last else None)

    def state(self, t: int) -> State:
        """The registers before step t."""
        c = self.columns(t, t + 1)
        return State(int(c["pc"][0]), int(c["fp"][0]), int(c["depth"][0]), int(c["pages"][0]))


def segment_jobs(tr: Trace | TraceStream, vm: VmProgram, statement: VmStatement,
                 log_rows: int, params: ProofParams) -> Iterator[SegmentJob]:
    """The run's segments in order, each of at most 2^log_rows rows (a slice whose memory
    table would not fit is halved). Lazy: one witness is built per job requested, from the
    rows of a streamed trace recorded as they are reached."""
    run, image = run_digest(statement), MemoryImage(vm, statement.args, statement.input)
    end_key = T.MEMORY + vm.end_pages * T.PAGE_WORDS
    limit = (1 << log_rows) - 1
    rows = _Rows(tr, 1 << log_rows)
    t0, index = 0, 0
    while t0 < tr.steps:
        span = min(limit, tr.steps - t0)
        start = rows.state(t0)
        while True:
            t1 = t0 + span
            keys_of = {}

            def public(accessed: np.ndarray) -> tuple:
                keys = np.unique(np.concatenate([accessed, SENTINELS, [end_key]])
                                 .astype(np.uint64))
                keys_of["keys"] = keys
                return keys, to_limbs(keys, image.read(keys)), keys

            main, base = witness(rows.slice(t0, t1), vm, public_memory=public)
            if base.log_n <= log_rows or span == 1:
                break
            span //= 2  # the slice touches more keys than rows: cut it shorter
        keys = keys_of["keys"]
        init = image.read(keys)
        fin = from_limbs(keys, main[reg("mfin"), :len(keys)].T)
        last = t1 == tr.steps
        end = None if last else rows.state(t1)
        if not last:  # the witness of a whole run leaves the last row's next pc 0
            main[COL["npc"], t1 - t0 - 1] = end.pc
        seg = SegmentStatement(replace(base, nonce=statement.nonce), run, index, start, end,
                               keys, init, fin)
        image.write(keys, fin)
        yield SegmentJob(vm, seg, main, params)
        t0, index = t1, index + 1


def prove_segmented(tr: Trace | TraceStream, vm: VmProgram, input_bytes: bytes, output_len: int,
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
