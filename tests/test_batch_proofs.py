"""Batch proof bundles of one segment: the encoding round-trips and its decoder refuses any
malformed bytes (fuzzed); check_bundle accepts an honest bundle against its header alone and
refuses a bundle of another header, a statement that contradicts the header, a broken root
chain and a tampered STARK. Chains of several segments: tests/test_batch_segments.py."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from circuits.rollup.batch import BatchAir
from memjit.rollup.proving import Rules, check_bundle
from memjit.rollup.header import Header, root_bytes
from prover import prove
from test_batch_air import EMISSION, FAST, KEY1, build

RULES = Rules(EMISSION, 1000, 200)
from verifier.batch import Bundle, BundleFormatError, Segment, decode_bundle, decode_statement


@pytest.fixture(scope="module")
def proven():
    statement, main = build()
    statement = dataclasses.replace(statement, facts_commitment=b"\x11" * 32,
                                    prev_commitment=b"\x22" * 32)
    proof = prove(BatchAir(statement), main, FAST)
    scores = {bytes([1] * 32): 0, bytes([2] * 32): 0}
    for f in statement.facts:
        scores[bytes([1 if f.key == KEY1 else 2] * 32)] += f.score
    header = Header(7, b"\x22" * 32, root_bytes(statement.old_root),
                    root_bytes(statement.new_root), b"\x11" * 32, len(statement.facts),
                    sum(f.reward for f in statement.facts), 20_000 * 86_400_000,
                    tuple(sorted(scores.items())), (b"k" * 48,), b"s" * 96)
    return header, Bundle(header.hash, (Segment(statement, proof),)), statement.old_root


def test_honest_bundle_round_trips_and_checks(proven):
    header, bundle, prev = proven
    assert decode_bundle(bundle.encode()) == bundle
    verdict = check_bundle(header, bundle, prev, min_security_bits=0, rules=RULES)
    assert verdict.valid, verdict.reason


def test_bundle_contradicting_its_header_rejected(proven):
    header, bundle, prev = proven
    [seg] = bundle.segments
    pi = seg.inputs
    cases = [
        (header, dataclasses.replace(bundle, header_hash=bytes(32)), prev),
        (dataclasses.replace(header, number=8), bundle, prev),
        (dataclasses.replace(header, minted=header.minted + 1), bundle, prev),
        (dataclasses.replace(header, state_root_after=bytes(32)), bundle, prev),
        (dataclasses.replace(header, state_root_before=header.state_root_after), bundle, prev),
        (dataclasses.replace(header, timestamp_ms=header.timestamp_ms + 86_400_000), bundle, prev),
        (dataclasses.replace(header, scores=((bytes([1] * 32), 1),)), bundle, prev),
        (header, bundle, pi.new_root),  # broken chain
        (header, bundle, None),  # batch 1 must start from the empty tree
        (header, dataclasses.replace(bundle, segments=(
            Segment(dataclasses.replace(pi, base_reward=999), seg.proof),)),
         prev),  # another base reward than the market's
    ]
    for head, bun, before in cases:
        if head is not header:
            bun = dataclasses.replace(bun, header_hash=head.hash)
        assert not check_bundle(head, bun, before, min_security_bits=0, rules=RULES).valid


def test_scores_are_matched_per_worker(proven):
    """The facts' scores summed per key hash must be the header's per worker: the same totals
    on other workers, or moved between workers, are refused; a worker scored 0 is no score."""
    header, bundle, prev = proven
    (w1, s1), (w2, s2) = header.scores
    assert s1 != s2
    w3 = bytes([3] * 32)

    def check(scores):
        head = dataclasses.replace(header, scores=scores)
        return check_bundle(head, dataclasses.replace(bundle, header_hash=head.hash), prev,
                            min_security_bits=0, rules=RULES)

    for scores in (((w1, s2), (w2, s1)), ((w1, s1), (w3, s2)), ((w1, s1 + 1), (w2, s2 - 1)),
                   ((w1, s1 + s2),), ((w1, s1), (w2, s2), (w3, 1))):
        verdict = check(scores)
        assert not verdict.valid and verdict.reason == "the statements' scores are not the " \
            "header's", scores
    assert check(((w1, s1), (w2, s2), (w3, 0))).valid


def test_tampered_stark_rejected(proven):
    header, bundle, prev = proven
    [seg] = bundle.segments
    proof = bytearray(seg.proof)
    proof[len(proof) // 2] ^= 1
    tampered = dataclasses.replace(bundle, segments=(Segment(seg.inputs, bytes(proof)),))
    assert not check_bundle(header, tampered, prev, min_security_bits=0, rules=RULES).valid


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_decoders_refuse_garbage(data):
    for decode in (decode_bundle, decode_statement):
        try:
            decode(data)
        except BundleFormatError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_decoder_refuses_any_truncation_or_flip(proven, data):
    _, bundle, _ = proven
    encoded = bundle.encode()
    start = 8 + 1 + 32 + 4 + 4  # magic, version, header hash, segment count, statement length
    head = start + len(bundle.segments[0].inputs.encode())
    cut = data.draw(st.integers(0, head - 1))
    with pytest.raises(BundleFormatError):
        decode_statement(encoded[start:cut] if cut > start else b"")
    flip = data.draw(st.integers(0, head - 1))
    mutated = bytearray(encoded)
    mutated[flip] ^= 0xFF
    try:
        decoded = decode_bundle(bytes(mutated))
    except BundleFormatError:
        return
    assert decoded != bundle
