"""Segmented proving (continuations): completeness, the verifier's walk over the segments, and
malicious provers that lie at a segment's boundary (each rejected by the walk or the proof)."""

from __future__ import annotations

import dataclasses
import json

import blake3
import numpy as np
import pytest
import wasmtime
from hypothesis import given, settings, strategies as st

from circuits.wasm_vm import tables as T
from circuits.wasm_vm.segment import SegmentAir, State, decode_segment
from circuits.wasm_vm.statement import StatementFormatError
from helpers import cli
from memjit.errors import BadInput
from memjit.market.facts import claim_digests
from memjit.runtime.claims import check_supported, prove_claim, vk_of, vm_program
from memjit.runtime.sandbox import run
from memjit.runtime.segments import default_segment_log, run_statement, segment_jobs
from memjit.runtime.tracer import trace, trace_stream
from memjit.runtime.wasm import load
from memjit.workers import load as load_worker, wasm_path
from prover import prove
from prover.composition import ConstraintViolation, check_trace
from verifier import ProofParams, verify_air
from verifier.claims import Claim, ClaimFormatError, decode_claim, verify_claim
from verifier.segments import walk

FAST = ProofParams(num_queries=8, grinding_bits=2)  # soundness tests: shape, not security
CHALLENGES = [np.array([3, 1, 4, 1], np.uint64), np.array([5, 9, 2, 6], np.uint64)]
LOG = 8  # segments of 2^8 rows: fib(7) runs 617 steps, three segments


def jobs_of(module: bytes, export: str, args: list[int], log: int = LOG):
    prog = load(module)
    check_supported(prog)
    vm = vm_program(prog)
    tr = trace(prog, export, args)
    statement = dataclasses.replace(run_statement(tr, vm), log_n=log)
    return vm, statement, list(segment_jobs(tr, vm, statement, log, FAST))


@pytest.fixture(scope="module")
def fib_run():
    return jobs_of(load_worker("fib"), "fib", [7])


@pytest.fixture(scope="module")
def fib_claim():
    module = load_worker("fib")
    claim = prove_claim(module, "fib", [7], FAST, segment_log=LOG)
    return module, vk_of(module), claim


def constraints_hold(vm, seg, main) -> None:
    air = SegmentAir(vm, seg)
    check_trace(air, main, air.build_aux_trace(main, CHALLENGES), CHALLENGES)


def assert_rejected(vm, seg, main) -> None:
    """The prover's own check fails, and a proof made without it does not verify."""
    with pytest.raises(ConstraintViolation):
        constraints_hold(vm, seg, main)
    air = SegmentAir(vm, seg)
    assert not verify_air(air, prove(air, main, FAST, check=False), min_security_bits=0).valid


def verdict(vk: bytes, claim: Claim, segments=None, **changes):
    statement = dataclasses.replace(claim.statement, **changes)
    data = Claim(statement, b"", tuple(claim.segments if segments is None else segments)).encode()
    return verify_claim(data, vk, min_security_bits=0)


# --- completeness ---------------------------------------------------------------------------------

def test_segments_chain_and_satisfy_the_air(fib_run):
    vm, statement, jobs = fib_run
    assert len(jobs) == 3 and sum(j.segment.steps for j in jobs) == statement.steps
    for i, job in enumerate(jobs):
        seg = job.segment
        assert seg.index == i and seg.final == (i == 2) and seg.base.log_n <= LOG
        if i:
            assert seg.start == jobs[i - 1].segment.end
        assert decode_segment(seg.encode())[0].encode() == seg.encode()
        constraints_hold(vm, seg, job.main)


def test_segmented_claim_verifies_and_reencodes(fib_claim):
    module, vk, claim = fib_claim
    data = claim.encode()
    assert data[7] == 2 and decode_claim(data).encode() == data  # claim format version 2
    assert claim.statement.result == run(module, "fib", [7]).results[0]
    assert claim.statement.steps == 617 and len(claim.segments) == 3
    result = verify_claim(data, vk, min_security_bits=0)
    assert result.valid, result.reason


def test_a_segmented_claims_fact_commits_to_every_segments_proof(fib_claim):
    """A market fact's proof digest is of the proof bytes: for a segmented claim, every
    segment's statement and proof (not the empty version-1 proof field)."""
    _, _, claim = fib_claim
    _, statement, proof = claim_digests(claim.encode())
    assert proof != blake3.blake3(b"").digest()
    segments = list(claim.segments)
    for i in range(len(segments)):
        seg, body = segments[i]
        forged = bytearray(body)
        forged[len(forged) // 2] ^= 1
        other = Claim(claim.statement, b"", tuple(segments[:i] + [(seg, bytes(forged))]
                                                  + segments[i + 1:]))
        _, other_statement, other_proof = claim_digests(other.encode())
        assert other_statement == statement and other_proof != proof
    dropped = Claim(claim.statement, b"", tuple(segments[:-1]))
    assert claim_digests(dropped.encode())[2] != proof


def test_a_run_that_fits_one_segment_gives_todays_claim():
    module = load_worker("fib")
    claim = prove_claim(module, "fib", [3], FAST, segment_log=LOG)
    assert not claim.segments and claim.encode()[7] == 1
    assert verify_claim(claim.encode(), vk_of(module), min_security_bits=0).valid


def test_linear_memory_crosses_segments():
    vm, _, jobs = jobs_of(load_worker("sort"), "sort", [12, 5], log=9)
    assert len(jobs) > 2
    written = [j.segment.keys[(j.segment.keys > T.MEMORY) & (j.segment.init != j.segment.fin)]
               for j in jobs]
    read_later = [np.intersect1d(w, j.segment.keys) for w, j in zip(written, jobs[1:])]
    assert any(len(r) for r in read_later)  # a word written in one segment is read in another
    for job in jobs:
        constraints_hold(vm, job.segment, job.main)


@pytest.mark.parametrize("module, export, args, log", [
    (load_worker("fib"), "fib", [7], LOG), (load_worker("sort"), "sort", [12, 5], 9)])
def test_segments_of_a_streamed_trace_are_those_of_the_whole_trace(module, export, args, log):
    """The client records a long run chunk by chunk as the segments reach it (never the whole
    trace at once); chunks and segments do not line up (2^K rows against 2^K - 1 steps, slices
    halved where the memory table overflows), and the jobs are those of the whole trace."""
    vm, statement, jobs = jobs_of(module, export, args, log)
    streamed = list(segment_jobs(trace_stream(module, export, args), vm, statement, log, FAST))
    assert len(streamed) == len(jobs) > 2
    for a, b in zip(jobs, streamed):
        assert a.segment.encode() == b.segment.encode() and np.array_equal(a.main, b.main)


LOOP = "(local.set 1 (i32.const 0)) (block (loop (br_if 1 (i32.ge_u (local.get 1) (local.get 0)))" \
       " (local.set 1 (i32.add (local.get 1) (i32.const 1))) {body} (br 0)))"
WIDE = wasmtime.wat2wasm(
    '(module (memory 1 3) (func (export "f") (param i32) (result i64) (local i32 i64) '
    '(drop (memory.grow (i32.const 1))) (i32.store (i32.const 70000) (local.get 0))'
    + LOOP.format(body="(local.set 2 (i64.add (local.get 2) (i64.const 0x100000001)))")
    + ' (i64.add (local.get 2) (i64.extend_i32_u (i32.load (i32.const 70000))))))')
TRAPS = wasmtime.wat2wasm(
    '(module (func (export "f") (param i32) (result i32) (local i32) '
    + LOOP.format(body="") + ' unreachable))')


@pytest.mark.parametrize("module, outcome", [(WIDE, "result"), (TRAPS, "trap")])
def test_wide_results_traps_and_grown_memory_across_segments(module, outcome):
    vm, statement, jobs = jobs_of(module, "f", [40], log=6)
    assert len(jobs) > 2
    assert walk(vm, statement, tuple(j.segment for j in jobs)) is None
    assert (statement.trap is not None) == (outcome == "trap")
    if outcome == "result":  # the grown page and the word stored in it outlive segment 0
        assert statement.result == 40 * 0x100000001 + 40 and jobs[-1].segment.start.pages == 2
    for job in jobs:
        constraints_hold(vm, job.segment, job.main)


def test_segment_size_bounds_and_default():
    with pytest.raises(BadInput):
        prove_claim(load_worker("fib"), "fib", [7], FAST, segment_log=3)
    assert 16 <= default_segment_log(1 << 30) <= default_segment_log(64 << 30) <= 22


# --- the walk: segments that do not make up the run -------------------------------------------------

def test_skipped_repeated_or_reordered_segment_rejected(fib_claim):
    _, vk, claim = fib_claim
    a, b, c = claim.segments
    for segments, why in (([a, c], "skipped"), ([a, a, b, c], "repeated"),
                          ([b, a, c], "reordered"), ([a, b, b, c], "repeated")):
        result = verdict(vk, claim, segments)
        assert not result.valid and why in result.reason, (why, result.reason)


def test_last_segment_not_final_rejected(fib_claim):
    _, vk, claim = fib_claim
    result = verdict(vk, claim, claim.segments[:2])
    assert not result.valid and "does not halt" in result.reason


def test_wrong_outcome_or_steps_rejected(fib_claim):
    _, vk, claim = fib_claim
    for change in ({"result": claim.statement.result + 1}, {"steps": claim.statement.steps - 1}):
        assert not verdict(vk, claim, **change).valid


def test_segment_starting_in_another_state_rejected_by_the_walk(fib_claim):
    _, vk, claim = fib_claim
    seg, proof = claim.segments[1]
    moved = dataclasses.replace(seg, start=seg.start._replace(pc=seg.start.pc + 1))
    result = verdict(vk, claim, [claim.segments[0], (moved, proof), claim.segments[2]])
    assert not result.valid and "does not start" in result.reason


def test_segment_reading_another_memory_value_rejected_by_the_walk(fib_claim):
    _, vk, claim = fib_claim
    seg, proof = claim.segments[1]
    init = seg.init.copy()
    init[0] ^= 1
    result = verdict(vk, claim, [claim.segments[0], (dataclasses.replace(seg, init=init), proof),
                                 claim.segments[2]])
    assert not result.valid and "reads memory" in result.reason


def test_segments_of_two_runs_spliced_rejected(fib_claim):
    _, vk, claim = fib_claim
    _, other, jobs = jobs_of(load_worker("fib"), "fib", [8])
    spliced = [claim.segments[0], *((j.segment, b"") for j in jobs[1:])]
    result = verdict(vk, claim, spliced)
    assert not result.valid and "another run" in result.reason
    # nor does the other run's statement adopt this run's first segment
    result = verify_claim(Claim(dataclasses.replace(other, nonce=claim.statement.nonce), b"",
                                tuple(spliced)).encode(), vk, min_security_bits=0)
    assert not result.valid and "another run" in result.reason


# --- the proof: a segment whose statement lies about its own trace ----------------------------------

def test_segment_claiming_another_start_rejected_by_its_proof(fib_run):
    vm, _, jobs = fib_run
    seg = jobs[1].segment
    for field in ("pc", "fp", "depth"):
        lie = dataclasses.replace(seg, start=seg.start._replace(**{field: getattr(seg.start,
                                                                                  field) + 1}))
        with pytest.raises(ConstraintViolation):
            constraints_hold(vm, lie, jobs[1].main)
    assert_rejected(vm, dataclasses.replace(seg, start=seg.start._replace(pc=seg.start.pc + 1)),
                    jobs[1].main)


def test_segment_claiming_another_end_rejected_by_its_proof(fib_run):
    vm, _, jobs = fib_run
    seg = jobs[0].segment
    assert_rejected(vm, dataclasses.replace(seg, end=seg.end._replace(fp=seg.end.fp + 1)),
                    jobs[0].main)


def test_segment_claiming_other_memory_rejected_by_its_proof(fib_run):
    vm, _, jobs = fib_run
    seg = jobs[1].segment
    read = np.flatnonzero(seg.init != seg.fin)[0]  # a key the segment touches
    for field in ("init", "fin"):
        values = getattr(seg, field).copy()
        values[read] ^= 1
        with pytest.raises(ConstraintViolation):
            constraints_hold(vm, dataclasses.replace(seg, **{field: values}), jobs[1].main)
    init = seg.init.copy()
    init[read] ^= 1
    assert_rejected(vm, dataclasses.replace(seg, init=init), jobs[1].main)


def test_segment_that_continues_claimed_final_rejected_by_its_proof(fib_run):
    vm, statement, jobs = fib_run
    seg = jobs[0].segment
    base = dataclasses.replace(seg.base, result=statement.result)
    assert_rejected(vm, dataclasses.replace(seg, base=base, end=None), jobs[0].main)


def test_final_segment_claimed_to_continue_rejected_by_its_proof(fib_run):
    vm, _, jobs = fib_run
    seg = jobs[-1].segment
    base = dataclasses.replace(seg.base, result=None)
    lie = dataclasses.replace(seg, base=base, end=State(0, 0, 0, seg.start.pages))
    with pytest.raises(ConstraintViolation):
        constraints_hold(vm, lie, jobs[-1].main)


# --- decoders -------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_segment_decoder_fuzz(data):
    try:
        seg, used = decode_segment(b"MJSG\x01" + data)
    except StatementFormatError:
        return
    assert decode_segment(seg.encode())[0].encode() == seg.encode()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2000), st.binary(min_size=1, max_size=8))
def test_segmented_claim_decoder_fuzz(fib_claim, cut, junk):
    data = fib_claim[2].encode()
    cut = min(cut, len(data) - 1)
    for bad in (data[:cut], data[:cut] + junk + data[cut + len(junk):], data + junk):
        try:
            decode_claim(bad)
        except ClaimFormatError:
            pass


# --- the command line -------------------------------------------------------------------------------

def test_prove_segment_rows_cli(capsys, monkeypatch, tmp_path):
    fib, claim = str(wasm_path("fib")), tmp_path / "fib.claim"
    code, out, err = cli(capsys, monkeypatch, "prove", fib, "--export", "fib", "--args", "7",
                         "--out", str(claim), "--segment-rows", "2^8", "--cluster", "serial",
                         "--json")
    assert (code, err) == (0, "") and json.loads(out)["segments"] == 3
    code, out, err = cli(capsys, monkeypatch, "verify", str(claim), "--program", fib, "--json")
    assert (code, err) == (0, "") and json.loads(out)["segments"] == 3
    for bad in (["--segment-rows", "300"], ["--segment-rows", "2^3"], ["--cluster", "udp://x"]):
        code, out, err = cli(capsys, monkeypatch, "prove", fib, "--export", "fib", "--args", "7",
                             "--out", str(tmp_path / "x.claim"), *bad)
        assert code == 2 and len(err.strip().splitlines()) == 1, (bad, err)


def test_segments_benchmark_sizes_and_plot(tmp_path, capsys, monkeypatch):
    from benchmarks.segments import crc32_steps, plot

    n, steps = crc32_steps(12)
    assert steps < 1 << 12 and trace(load_worker("crc32"), "crc32", [n, 1]).steps == steps
    rows = [{"segment_log": s, "steps": 1 << k, "prove_s": k * s, "peak_rss_mb": 100 * k,
             "verify_s": 0.1 * k} for s in (16, 18) for k in (18, 20)]
    plot(rows, tmp_path / "segments.png")
    assert (tmp_path / "segments.png").stat().st_size > 10_000
    code, _, err = cli(capsys, monkeypatch, "bench", "sweep", "--series", "vm_segments",
                       "--max-log", "25", "--out", str(tmp_path / "out"))
    assert code == 2 and "vm_segments needs" in err


def test_segments_benchmark_points_and_verify_table():
    """Every segment size up to 2^20 steps, longer runs at one size; the verification table
    counts a claim's segments and the memory keys they carry."""
    import wasmtime
    from benchmarks.segments import TOUCH, points, verify_point

    grid = points(16, 24, (16, 18, 20), long_segment_log=18)
    assert (20, 20) in grid and (16, 18) not in grid and (22, 16) not in grid
    assert [p for p in grid if p[0] > 20] == [(k, 18) for k in range(21, 25)]
    touch = wasmtime.wat2wasm(TOUCH)
    few, many = (verify_point(touch, "touch", [40, 4 * words - 1], 8, 1, FAST)
                 for words in (1, 16))
    assert few["segments"] == many["segments"] > 1 and few["steps"] == many["steps"]
    assert many["keys"] > few["keys"] and many["keys_per_segment"] > few["keys_per_segment"] + 8
