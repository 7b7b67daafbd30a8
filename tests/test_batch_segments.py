"""Batch proofs as chains of segments (memjit.rollup.proving): a batch of more facts than one
segment holds is proven as consecutive fact ranges, each from the root the previous one ended
at. check_bundle accepts an honest chain and refuses, each with its own reason, a missing,
swapped or duplicated segment, one that starts from another root, one proven for another fact
range, and a truncated (fuzzed), flipped or old-version bundle; an honest multi-segment batch verifies through
`memjit batch verify N` and through a follower's replica."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import cli
from hypothesis import given, settings
from hypothesis import strategies as st

from circuits.rollup.batch import BatchInputs, apply_fact, trace_length
from circuits.rollup.leaf import Leaf
from memjit.node.batches import batch_blocks, ledger_refs
from memjit.rollup.committee import members
from memjit.rollup.header import Header, root_bytes
from memjit.rollup.proving import (BatchProver, Rules, check_bundle, prove_segment,
                                   segment_capacity, segment_ranges)
from memjit.rollup.replica import Replica
from memjit.runtime.store import Store
from test_batch_air import DAY, EMISSION, FACTS, FAST, KEY1, genesis
from test_batcher import Market, claims, template  # noqa: F401 (fixtures)
from verifier.batch import (BUNDLE_MAGIC, Bundle, BundleFormatError, Segment, decode_bundle,
                            verify_batch)

RULES = Rules(EMISSION, 1000, 200)
FACTS_ROOT, PREV_HASH = b"\x11" * 32, b"\x22" * 32
PER_SEGMENT = 2  # FACTS (6) make three segments


def root_of(tree) -> tuple[int, ...]:
    return tuple(int(x) for x in tree.root)


def segment(tree, facts_range: range, first: int | None = None) -> Segment:
    """Apply FACTS[facts_range] to `tree` and prove them as one segment stating `first`
    (default: the range's start)."""
    old, old_sub, olds, news, sibs = root_of(tree), tuple(int(x) for x in tree.subroot), [], [], []
    for f in FACTS[facts_range.start:facts_range.stop]:
        w = tree.update(f.index, apply_fact(tree.limbs(f.index), f, DAY))
        olds.append(w.old), news.append(w.new), sibs.append(w.siblings.copy())
    inputs = BatchInputs(7, DAY, EMISSION, old, root_of(tree),
                         FACTS[facts_range.start:facts_range.stop], FACTS_ROOT, PREV_HASH,
                         first=facts_range.start if first is None else first,
                         old_subroot=old_sub, new_subroot=tuple(int(x) for x in tree.subroot))
    return prove_segment(inputs, np.stack(olds), np.stack(news), np.stack(sibs), FAST)


@pytest.fixture(scope="module")
def chain():
    """(header, honest 3-segment bundle, previous batch's root, the tree after 2 facts)."""
    tree = genesis()
    before = root_of(tree)
    segments = tuple(segment(tree, r) for r in segment_ranges(len(FACTS), PER_SEGMENT))
    scores = {bytes([1] * 32): 0, bytes([2] * 32): 0}
    for f in FACTS:
        scores[bytes([1 if f.key == KEY1 else 2] * 32)] += f.score
    header = Header(7, PREV_HASH, root_bytes(before), root_bytes(root_of(tree)), FACTS_ROOT,
                    len(FACTS), sum(f.reward for f in FACTS), DAY * 86_400_000,
                    tuple(sorted(scores.items())), (b"k" * 48,), b"s" * 96)
    return header, Bundle(header.hash, segments), before


def check(header: Header, bundle: Bundle, prev_root) -> str:
    verdict = check_bundle(header, bundle, prev_root, min_security_bits=0, rules=RULES)
    return "valid" if verdict.valid else verdict.reason


def test_segment_capacity_follows_the_air_rows() -> None:
    for rows in (1 << 6, 1 << 12, 1 << 15, 1 << 16):
        n = segment_capacity(rows)
        assert trace_length(n) <= rows < trace_length(n + 1)
    assert segment_capacity() >= 1000  # a 1,000-fact batch stays one STARK
    assert [(r.start, r.stop) for r in segment_ranges(5, 2)] == [(0, 2), (2, 4), (4, 5)]
    assert segment_ranges(4, 4) == [range(0, 4)]
    with pytest.raises(ValueError):
        segment_ranges(4, 0)


def test_honest_chain_round_trips_and_checks(chain) -> None:
    header, bundle, before = chain
    assert len(bundle.segments) == 3 and bundle.facts == FACTS
    assert decode_bundle(bundle.encode()) == bundle
    assert check(header, bundle, before) == "valid"


def test_broken_chains_are_refused(chain) -> None:
    header, bundle, before = chain
    s0, s1, s2 = bundle.segments
    cases = [
        ("segment 1 proves facts from 4, the chain is at fact 2", (s0, s2)),  # missing
        ("segment 0 proves facts from 2, the chain is at fact 0", (s1, s2)),
        ("the segments prove 4 facts, the header has 6", (s0, s1)),
        ("segment 1 proves facts from 4, the chain is at fact 2", (s0, s2, s1)),  # swapped
        ("segment 1 proves facts from 0, the chain is at fact 2", (s0, s0, s1, s2)),  # repeated
        ("segment 2 proves facts from 2, the chain is at fact 4", (s0, s1, s1, s2)),
        ("the bundle has no segment", ()),
    ]
    for reason, segments in cases:
        got = check(header, dataclasses.replace(bundle, segments=segments), before)
        assert got.startswith(reason), (reason, got)


def test_segment_from_another_root_is_refused(chain) -> None:
    """A valid STARK of facts 2..3, proven from a tree with one more account: its old root is
    not the root segment 0 ended at."""
    header, bundle, before = chain
    tree = genesis()
    segment(tree, range(0, 2))
    tree.update(9, Leaf(KEY1).limbs())
    other = segment(tree, range(2, 4))
    assert verify_batch(other.inputs, other.proof, 0).valid
    s0, _, s2 = bundle.segments
    bad = dataclasses.replace(bundle, segments=(s0, other, s2))
    assert check(header, bad, before) == "segment 1 does not start from the root segment 0 ended at"
    moved = dataclasses.replace(header, state_root_before=root_bytes(other.inputs.old_root))
    assert check(moved, dataclasses.replace(bundle, header_hash=moved.hash),
                 other.inputs.old_root) == \
        "segment 0 does not start from the header's state root before"
    assert check(header, bundle, other.inputs.old_root) == \
        "the batch does not start from the previous batch's proven root"


def test_segment_proven_for_another_fact_range_is_refused(chain) -> None:
    """Facts 2..3 proven from the right root as the batch's facts 0..1: placed as segment 1
    the chain refuses its range; relabelled as facts 2..3 its STARK fails (the first sequence
    number is a public input the AIR's fact accumulator uses)."""
    header, bundle, before = chain
    tree = genesis()
    segment(tree, range(0, 2))
    as_first = segment(tree, range(2, 4), first=0)
    assert verify_batch(as_first.inputs, as_first.proof, 0).valid
    s0, s1, s2 = bundle.segments
    assert check(header, dataclasses.replace(bundle, segments=(s0, as_first, s2)), before) \
        .startswith("segment 1 proves facts from 0, the chain is at fact 2")
    relabelled = Segment(dataclasses.replace(as_first.inputs, first=2), as_first.proof)
    got = check(header, dataclasses.replace(bundle, segments=(s0, relabelled, s2)), before)
    assert got.startswith("segment 1: "), got
    stolen = Segment(s1.inputs, s2.proof)  # another segment's STARK under segment 1's statement
    got = check(header, dataclasses.replace(bundle, segments=(s0, stolen, s2)), before)
    assert got.startswith("segment 1: "), got


def test_truncated_or_old_bundles_are_refused(chain) -> None:
    _, bundle, _ = chain
    data = bundle.encode()
    for cut in (0, 8, 9, 40, 44, 45, len(data) // 3, len(data) // 2, len(data) - 1):
        with pytest.raises(BundleFormatError):
            decode_bundle(data[:cut])
    with pytest.raises(BundleFormatError, match="trailing"):
        decode_bundle(data + b"\0")
    for old in (2, 3):
        with pytest.raises(BundleFormatError, match=f"version {old} is not the version"):
            decode_bundle(BUNDLE_MAGIC + bytes([old]) + data[9:])
    no_segments = data[:41] + bytes(4)
    with pytest.raises(BundleFormatError, match="segments, not 0"):
        decode_bundle(no_segments)


def test_multi_segment_batch_verifies_by_cli_and_follower(
        template: Path, claims: dict[str, bytes], tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Three facts proven one per segment (default parameters: `batch verify` wants 100 bits)
    verify through `memjit batch verify 1` and through a follower's replica."""
    home = tmp_path / "seq"
    shutil.copytree(template, home)
    market = Market(home)
    market.submit(market.fib, claims["fib10"], 700_000, 40)
    market.submit(market.crc, claims["crc16"], 500_000, 30)
    market.submit(market.fib, claims["fib11"], 300_000, 0)
    batcher = market.batcher()
    [header] = batcher.commit_pending(force=True)
    prover = BatchProver(batcher, segment_facts=1)
    assert prover.prove_pending() == [1]
    bundle = prover.bundle(1)
    assert [len(s.inputs.facts) for s in bundle.segments] == [1, 1, 1]
    refs = ledger_refs(market.ledger, market.store, 0, 64)
    for ref in refs:
        batch_blocks(market.ledger, market.store, ref)
    committee = [m.public_key for m in members(market.ledger)]
    follower = Replica(tmp_path / "follower", Store(tmp_path / "follower"), committee)
    follower.apply(follower.check(refs[0], market.store.get))
    assert follower.head.state_root_after == header.state_root_after
    follower.close()
    market.ledger.close()
    code, out, _ = cli(capsys, monkeypatch, "--home", str(home), "batch", "verify", "1",
                       "--json")
    verified = json.loads(out)
    assert code == 0 and verified["valid"] and verified["segments"] == 3
    assert verified["facts"] == 3 and verified["security_bits"] >= 100
    assert verified["new_root"] == header.state_root_after.hex()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_chain_decoder_refuses_any_truncation_or_flip(chain, data) -> None:
    _, bundle, _ = chain
    encoded = bundle.encode()
    with pytest.raises(BundleFormatError):
        decode_bundle(encoded[:data.draw(st.integers(0, len(encoded) - 1))])
    flip = data.draw(st.integers(0, len(encoded) - 1))
    mutated = bytearray(encoded)
    mutated[flip] ^= 0xFF
    try:
        decoded = decode_bundle(bytes(mutated))
    except BundleFormatError:
        return
    assert decoded != bundle
