"""STARK core: completeness, malicious provers, wrong statements, tampered and malformed proofs."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from circuits.examples.fibonacci import FibonacciAir, FibonacciInputs, fibonacci_trace
from circuits.examples.range_check import RangeCheckAir, RangeCheckInputs, range_check_trace
from circuits.field import EXT_BITS, P, Fp4, add, ext_eval_poly, ext_from_base, ext_pow, root_of_unity, sub
from prover import ProverStats, prove
from prover.stark import StarkProver
from prover.composition import ConstraintViolation
from verifier import DEFAULT_PARAMS, ProofParams, verify
from verifier.params import AirShape
from verifier.proof import decode, encode
from verifier.stark import SHIFT, composition_at
from verifier.transcript import Transcript

FAST = ProofParams(num_queries=8, grinding_bits=2)  # for soundness tests: shape, not security


@pytest.fixture(scope="module")
def fib_proof():
    trace, pi = fibonacci_trace(1024)
    return pi, prove(FibonacciAir(pi), trace)


@pytest.fixture(scope="module")
def range_proof():
    values = np.random.default_rng(1).integers(0, 256, 1024)
    trace, pi = range_check_trace(values)
    return pi, prove(RangeCheckAir(pi), trace)


# --- completeness -------------------------------------------------------------------------------

@pytest.mark.parametrize("log_n", [1, 3, 7, 11, 13])
def test_fibonacci_completeness(log_n):
    trace, pi = fibonacci_trace(1 << log_n, a=3, b=5)
    verdict = verify(FibonacciAir, pi, prove(FibonacciAir(pi), trace))
    assert verdict.valid, verdict.reason
    assert verdict.security_bits >= 100


@pytest.mark.parametrize("log_n", [8, 10, 12])
def test_range_check_completeness(log_n):
    values = np.random.default_rng(log_n).integers(0, 256, 1 << log_n)
    trace, pi = range_check_trace(values)
    verdict = verify(RangeCheckAir, pi, prove(RangeCheckAir(pi), trace))
    assert verdict.valid, verdict.reason


@pytest.mark.parametrize("params", [
    ProofParams(log_blowup=1, num_queries=84, grinding_bits=16, fri_log_folding=1, fri_log_final=0),
    ProofParams(log_blowup=2, num_queries=42, grinding_bits=16, fri_log_folding=2, fri_log_final=3),
    ProofParams(log_blowup=4, num_queries=21, grinding_bits=16, fri_log_folding=4, fri_log_final=4),
])
def test_other_parameter_sets(params):
    trace, pi = fibonacci_trace(1024)
    assert verify(FibonacciAir, pi, prove(FibonacciAir(pi), trace, params)).valid
    if params.blowup >= RangeCheckAir(range_check_trace(np.zeros(256))[1]).num_segments():
        trace, pi = range_check_trace(np.random.default_rng(3).integers(0, 256, 1024))
        assert verify(RangeCheckAir, pi, prove(RangeCheckAir(pi), trace, params)).valid


def test_blowup_below_constraint_degree_refused():
    trace, pi = range_check_trace(np.zeros(256, dtype=np.uint64))
    with pytest.raises(ValueError, match="blowup"):
        prove(RangeCheckAir(pi), trace, ProofParams(log_blowup=1, num_queries=84))


def test_proof_is_deterministic_and_reencodes(fib_proof):
    pi, proof = fib_proof
    trace, _ = fibonacci_trace(1024)
    assert prove(FibonacciAir(pi), trace) == proof
    assert encode(decode(proof)) == proof


# --- wrong statements ---------------------------------------------------------------------------

def test_wrong_public_inputs_rejected(fib_proof):
    pi, proof = fib_proof
    for bad in [dataclasses.replace(pi, result=(pi.result + 1) % P),
                dataclasses.replace(pi, a=2), dataclasses.replace(pi, b=0),
                dataclasses.replace(pi, n_rows=2048)]:
        assert not verify(FibonacciAir, bad, proof).valid


def test_wrong_air_rejected(fib_proof, range_proof):
    pi, proof = fib_proof
    rpi, rproof = range_proof
    assert not verify(RangeCheckAir, rpi, proof).valid
    assert not verify(FibonacciAir, pi, rproof).valid


def test_range_check_wrong_total_rejected(range_proof):
    pi, proof = range_proof
    assert not verify(RangeCheckAir, dataclasses.replace(pi, total=pi.total + 1), proof).valid


# --- malicious provers: each breaks exactly one constraint and skips its own checks -----------

def test_broken_transition_rejected():
    trace, pi = fibonacci_trace(256)
    trace[1, 100] = (trace[1, 100] + 1) % P  # y' = x + y fails at row 99 only... and 100
    with pytest.raises(ConstraintViolation):
        prove(FibonacciAir(pi), trace)
    assert not verify(FibonacciAir, pi, prove(FibonacciAir(pi), trace, check=False)).valid


def test_broken_last_transition_row_rejected():
    trace, pi = fibonacci_trace(256)
    trace[1, -1] = (trace[1, -1] + 7) % P  # only the final transition breaks
    pi = dataclasses.replace(pi, result=int(trace[1, -1]))
    assert not verify(FibonacciAir, pi, prove(FibonacciAir(pi), trace, check=False)).valid


def test_broken_boundary_rejected():
    # A valid Fibonacci run from (2, 1), claimed to start from (1, 1): only a first-row
    # assertion fails.
    trace, real = fibonacci_trace(256, a=2, b=1)
    claim = dataclasses.replace(real, a=1)
    with pytest.raises(ConstraintViolation, match="first"):
        prove(FibonacciAir(claim), trace)
    assert not verify(FibonacciAir, claim, prove(FibonacciAir(claim), trace, check=False)).valid


def test_out_of_range_lookup_rejected():
    # 300 is not in the byte table; every other constraint (sum, table) still holds.
    values = np.random.default_rng(5).integers(0, 256, 512)
    values[17] = 300
    trace, pi = range_check_trace(values)
    with pytest.raises(ConstraintViolation, match="last"):
        prove(RangeCheckAir(pi), trace)
    assert not verify(RangeCheckAir, pi, prove(RangeCheckAir(pi), trace, check=False)).valid


def test_wrong_multiplicity_rejected():
    values = np.random.default_rng(6).integers(0, 256, 512)
    trace, pi = range_check_trace(values)
    trace[3, 10] += 1  # claims value 10 is looked up once more than it is
    assert not verify(RangeCheckAir, pi, prove(RangeCheckAir(pi), trace, check=False)).valid


class TamperedAuxAir(RangeCheckAir):
    """Builds the LogUp running sum honestly, then corrupts one row of it."""

    def build_aux_trace(self, main, challenges):
        aux = super().build_aux_trace(main, challenges)
        aux[0, 200, 2] = (aux[0, 200, 2] + 1) % P
        return aux


def test_corrupted_running_sum_rejected():
    values = np.random.default_rng(7).integers(0, 256, 512)
    trace, pi = range_check_trace(values)
    proof = prove(TamperedAuxAir(pi), trace, check=False)
    assert not verify(RangeCheckAir, pi, proof).valid


class LyingOodProver(StarkProver):
    """Claims composition values at z that satisfy the out-of-domain check for a bad trace."""

    def ood_values(self, z, gz, main_coeffs, aux_coeffs, seg_coeffs):
        ood_main, ood_aux, ood_comp = super().ood_values(z, gz, main_coeffs, aux_coeffs, seg_coeffs)
        cols = lambda a: [Fp4(v) for v in a]  # noqa: E731
        values = self.air.evaluate(cols(ood_main[0]), cols(ood_main[1]), cols(ood_aux[0]),
                                   cols(ood_aux[1]), [Fp4(c) for c in self.challenges])
        wanted = composition_at(self.air, values, self.alphas, z)
        # C(z) = sum_k z^(kn) C_k(z): shift segment 0 by the difference.
        ood_comp = ood_comp.copy()
        ood_comp[0] = add(ood_comp[0], sub(wanted, ext_eval_poly(ood_comp, ext_pow(z, self.air.trace_length))))
        return ood_main, ood_aux, ood_comp


def test_lying_ood_values_caught_by_fri():
    trace, pi = fibonacci_trace(256)
    trace[0, 50] = (trace[0, 50] + 1) % P
    proof = LyingOodProver(FibonacciAir(pi), FAST, check=False).prove(trace)
    verdict = verify(FibonacciAir, pi, proof, min_security_bits=0)
    assert not verdict.valid
    assert "FRI" in verdict.reason, verdict.reason


def test_lying_ood_values_caught_by_fri_with_aux():
    values = np.random.default_rng(9).integers(0, 256, 512)
    values[3] = 999
    trace, pi = range_check_trace(values)
    proof = LyingOodProver(RangeCheckAir(pi), FAST, check=False).prove(trace)
    verdict = verify(RangeCheckAir, pi, proof, min_security_bits=0)
    assert not verdict.valid
    assert "FRI" in verdict.reason, verdict.reason


# --- parameters and security ---------------------------------------------------------------------
# The security formula changed with issue 14: every term counts (verifier.params), grinding only
# counts when the queries alone reach 80 bits, and log2 |F_p^4| = 123.63 is no longer rounded up.

def test_weak_parameters_refused():
    trace, pi = fibonacci_trace(64)
    weak = prove(FibonacciAir(pi), trace, FAST)
    verdict = verify(FibonacciAir, pi, weak)
    assert not verdict.valid and "limited by fri_queries" in verdict.reason
    # 8 queries at blowup 4 are 16 bits; 2 grinding bits cannot count below the 80-bit floor.
    bits = FAST.security(AirShape.of(FibonacciAir(pi))).bits
    assert bits == 16 and verify(FibonacciAir, pi, weak, min_security_bits=bits).valid
    assert not verify(FibonacciAir, pi, weak, min_security_bits=bits + 1).valid


def test_ext_bits_are_the_fields_own():
    assert EXT_BITS == pytest.approx(math.log2(P ** 4)) and 123.62 < EXT_BITS < 123.63


def test_grinding_does_not_rescue_weak_queries():
    shape = AirShape(log_trace_length=10, max_degree=1, segments=1)
    assert ProofParams(num_queries=34, grinding_bits=32).security(shape).bits == 68
    assert ProofParams(num_queries=40, grinding_bits=20).security(shape).bits == 100


VM_SHAPE = dict(max_degree=3, segments=2, lookup_width=11)  # 42 LogUp terms a row


@pytest.mark.parametrize("log_n", range(1, 25))
def test_default_parameters_reach_100_bits_up_to_2_24_rows(log_n):
    # The example AIRs' shapes (the VM AIR's own is checked in test_vm_air.py).
    for air in (FibonacciAir(FibonacciInputs(1 << log_n, 0)),
                RangeCheckAir(RangeCheckInputs(max(1 << log_n, 256), 0))):
        assert DEFAULT_PARAMS.security(AirShape.of(air)).bits >= 100, air.name


def test_every_term_is_counted():
    # Without the commit-phase proof of work, the VM AIR's LogUp argument (42 terms of up to 11
    # fields a row) is what limits it, and falls below 100 bits long before 2^24 rows.
    bare = dataclasses.replace(DEFAULT_PARAMS, commit_grinding_bits=0)
    vm = AirShape(22, lookup_denominators=42 << 22, **VM_SHAPE)
    sec = bare.security(vm)
    assert sec.limited_by == "logup" and sec.bits == 92
    assert sec.terms["logup"] == pytest.approx(EXT_BITS - math.log2(42 * 12) - 22)
    assert sec.terms["fri_folding"] == pytest.approx(EXT_BITS - math.log2(7) - 24)
    assert sec.terms["deep_batching"] == pytest.approx(EXT_BITS - 24)
    assert sec.terms["ood"] == pytest.approx(EXT_BITS - 2 - 22)
    assert DEFAULT_PARAMS.security(vm).terms["logup"] == pytest.approx(sec.terms["logup"] + 16)
    # Without lookups, at 2^24 rows the FRI folding of the 2^26-point LDE binds (94.8 bits).
    fib = bare.security(AirShape(24, 1, 1))
    assert fib.limited_by == "fri_folding" and fib.bits == 94


def test_verdict_names_the_limiting_term():
    trace, pi = fibonacci_trace(1024)
    params = ProofParams(num_queries=60, commit_grinding_bits=0)  # queries give 136 bits
    proof = prove(FibonacciAir(pi), trace, params)
    verdict = verify(FibonacciAir, pi, proof, min_security_bits=0)
    assert verdict.valid and verdict.limited_by == "fri_folding"
    assert verdict.security_bits == 108  # 123.63 - log2(7 * 4096)
    refused = verify(FibonacciAir, pi, proof, min_security_bits=109)
    assert not refused.valid and "limited by fri_folding" in refused.reason


def test_prover_reports_the_security_it_proves():
    trace, pi = fibonacci_trace(256)
    stats = ProverStats()
    proof = prove(FibonacciAir(pi), trace, stats=stats)
    verdict = verify(FibonacciAir, pi, proof)
    assert (stats.security_bits, stats.limited_by) == (verdict.security_bits, verdict.limited_by)
    assert verdict.security_bits >= 100


# --- the out-of-domain point: forced into the domains it must avoid ------------------------------

def force_ood(monkeypatch, z: int) -> None:
    """Patch the transcript, prover's and verifier's alike, to draw z as the out-of-domain point:
    no prover can steer a hash there, so the patch plays the (2^-97) accident."""
    real = Transcript.draw_ext
    monkeypatch.setattr(Transcript, "draw_ext", lambda self, label: ext_from_base(np.uint64(z))
                        if label == b"ood" else real(self, label))


@pytest.mark.parametrize("where, z", [
    ("trace domain", pow(root_of_unity(256), 5, P)),
    ("LDE coset", SHIFT * pow(root_of_unity(256 * DEFAULT_PARAMS.blowup), 7, P) % P),
])
def test_out_of_domain_point_in_a_domain_rejected(monkeypatch, where, z):
    trace, pi = fibonacci_trace(256)
    force_ood(monkeypatch, z)
    proof = prove(FibonacciAir(pi), trace, check=False)
    verdict = verify(FibonacciAir, pi, proof)
    assert not verdict.valid and verdict.reason == f"out-of-domain point fell in the {where}"


def test_every_proof_of_work_is_checked():
    trace, pi = fibonacci_trace(1024)
    proof = decode(prove(FibonacciAir(pi), trace))
    for i in range(len(proof.challenge_nonces)):
        bad = dataclasses.replace(proof, challenge_nonces=[
            v ^ (1 << 40) if j == i else v for j, v in enumerate(proof.challenge_nonces)])
        verdict = verify(FibonacciAir, pi, encode(bad))
        assert not verdict.valid and "proof of work before" in verdict.reason, verdict.reason
    short = dataclasses.replace(proof, challenge_nonces=proof.challenge_nonces[:-1])
    assert verify(FibonacciAir, pi, encode(short)).reason == "wrong number of proof-of-work nonces"


# --- tampering, truncation, fuzzing -------------------------------------------------------------

def sections(proof_bytes: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges of each proof section, derived from the decoded proof."""
    p = decode(proof_bytes)
    header = 7 + 2 + len(p.air_name) + 6 + 6
    commits = 32 * (2 + (1 if p.aux_width else 0))
    ood = 4 * (p.ood_main.size + p.ood_aux.size + p.ood_comp.size)
    fri_roots = 32 * len(p.fri_roots)
    final = 4 * p.fri_final.size
    bounds, pos = {}, 0
    nonces = 1 + 8 * len(p.challenge_nonces) + 8
    for name, size in [("header", header), ("commitments", commits), ("ood", ood),
                       ("fri_roots", fri_roots), ("final_poly", final), ("nonces", nonces)]:
        bounds[name] = (pos, pos + size)
        pos += size
    trace_open = sum(4 * op.values.size + 2 + 32 * len(op.siblings)
                     for op in [p.main_open, p.aux_open, p.comp_open] if op is not None) + 1
    bounds["trace_openings"] = (pos, pos + trace_open)
    bounds["fri_openings"] = (pos + trace_open, len(proof_bytes))
    return bounds


def flip(data: bytes, pos: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


@pytest.mark.parametrize("which", ["fib", "range"])
def test_every_section_rejects_single_byte_changes(which, fib_proof, range_proof):
    pi, proof = fib_proof if which == "fib" else range_proof
    air = FibonacciAir if which == "fib" else RangeCheckAir
    rng = np.random.default_rng(11)
    for name, (lo, hi) in sections(proof).items():
        assert hi > lo, name
        positions = set(range(lo, min(hi, lo + 12))) | set(rng.integers(lo, hi, 25).tolist())
        for pos in sorted(positions):
            for mask in (0x01, 0x80):
                verdict = verify(air, pi, flip(proof, pos, mask))
                assert not verdict.valid, f"{name} byte {pos} mask {mask:#x} accepted"


def test_truncated_and_extended_proofs_rejected(fib_proof):
    pi, proof = fib_proof
    for cut in [0, 1, 7, 20, len(proof) // 2, len(proof) - 32, len(proof) - 1]:
        assert not verify(FibonacciAir, pi, proof[:cut]).valid
    for extra in [b"\x00", b"\xff" * 32]:
        verdict = verify(FibonacciAir, pi, proof + extra)
        assert not verdict.valid and "trailing" in verdict.reason


def test_absurd_size_rejected_before_work(fib_proof):
    pi, proof = fib_proof
    name_len = proof[8]
    log_n_at = 9 + name_len + 6
    huge = bytearray(proof)
    huge[log_n_at] = 60
    verdict = verify(FibonacciAir, pi, bytes(huge))
    assert not verdict.valid and "out of range" in verdict.reason
    # A statement that itself claims 2^60 rows is refused on the shape, without allocating.
    giant = FibonacciInputs(n_rows=1 << 60, result=pi.result)
    assert not verify(FibonacciAir, giant, proof).valid


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_proofs_never_raise(fib_proof, data):
    pi, proof = fib_proof
    op = data.draw(st.sampled_from(["flip", "insert", "delete", "splice"]))
    pos = data.draw(st.integers(0, len(proof) - 1))
    if op == "flip":
        bad = flip(proof, pos, data.draw(st.integers(1, 255)))
    elif op == "insert":
        bad = proof[:pos] + data.draw(st.binary(min_size=1, max_size=8)) + proof[pos:]
    elif op == "delete":
        bad = proof[:pos] + proof[pos + data.draw(st.integers(1, 8)):]
    else:
        bad = proof[:pos] + data.draw(st.binary(max_size=64))
    if bad != proof:
        assert not verify(FibonacciAir, pi, bad).valid


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(blob):
    assert not verify(FibonacciAir, FibonacciInputs(n_rows=1024, result=1), blob).valid


def test_fused_prover_fold_matches_verifier_fold():
    from prover.fri import _fold_kernel
    from verifier.fri import fold_once
    from circuits.field import mul, powers, root_of_unity
    rng = np.random.default_rng(2)
    f = rng.integers(0, P, (64, 4), dtype=np.uint64)
    beta = rng.integers(0, P, 4, dtype=np.uint64)
    shift = 31
    x = mul(powers(np.uint64(root_of_unity(64)), 32), np.uint64(shift))
    inv_two_x = np.array([pow(2 * int(v), P - 2, P) for v in x], dtype=np.uint64)
    assert (_fold_kernel(f, inv_two_x, beta) == fold_once(f[:32], f[32:], inv_two_x, beta)).all()
