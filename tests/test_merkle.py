"""Merkle trees (prover) and batch-opening verification (verifier), including adversarial input."""

import random

import numpy as np
import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from prover.merkle import MerkleTree
from verifier.merkle import sibling_count, sibling_positions, verify_batch


def reference_root(leaves: list[bytes]) -> bytes:
    level = [blake3(x).digest() for x in leaves]
    while len(level) > 1:
        level = [blake3(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def make_tree(depth: int, leaf_len: int = 12, seed: int = 0):
    data = np.random.default_rng(seed).integers(0, 256, (1 << depth, leaf_len), dtype=np.uint8)
    return MerkleTree(data), [row.tobytes() for row in data]


@pytest.mark.parametrize("depth", range(8))
@pytest.mark.parametrize("leaf_len", [0, 8, 100, 1500])
def test_root_matches_reference(depth, leaf_len):
    tree, leaves = make_tree(depth, leaf_len, depth)
    assert tree.depth == depth
    assert tree.root == reference_root(leaves)
    assert len(tree.levels) == depth + 1 and tree.levels[-1].shape == (1, 32)


def test_from_field_rows_uses_u32_little_endian():
    m = np.random.default_rng(3).integers(0, 2013265921, (16, 3), dtype=np.uint64)
    leaves = [b"".join(int(v).to_bytes(4, "little") for v in row) for row in m]
    assert MerkleTree.from_field_rows(m).root == reference_root(leaves)
    cols = np.ascontiguousarray(m.T)
    assert MerkleTree.from_field_rows(cols.T).root == reference_root(leaves)


def test_rejects_bad_leaf_arrays():
    for bad in (np.zeros((3, 4), np.uint8), np.zeros((0, 4), np.uint8), np.zeros((4, 4), np.int32),
                np.zeros(4, np.uint8)):
        with pytest.raises(ValueError):
            MerkleTree(bad)


def index_sets(depth: int, rng: random.Random):
    n = 1 << depth
    yield [0]
    yield [n - 1]
    yield list(range(n))
    for _ in range(6):
        yield sorted(rng.sample(range(n), rng.randint(1, n)))


@pytest.mark.parametrize("depth", range(7))
def test_openings_verify(depth):
    tree, leaves = make_tree(depth, 9, 10 + depth)
    rng = random.Random(depth)
    for idx in index_sets(depth, rng):
        sib = tree.open(idx)
        assert len(sib) == sibling_count(depth, idx)
        assert verify_batch(tree.root, depth, idx, [leaves[i] for i in idx], sib)


def test_canonical_order_example():
    # depth 3, leaves 1 and 4: level 0 siblings 0 and 5, level 1 siblings 1 and 3, level 2 none.
    assert sibling_positions(3, [1, 4]) == [(0, 0), (0, 5), (1, 1), (1, 3)]
    assert sibling_positions(3, [0, 1]) == [(1, 1), (2, 1)]
    assert sibling_positions(0, [0]) == []
    tree, _ = make_tree(3)
    assert tree.open([1, 4]) == [tree.levels[lv][k].tobytes() for lv, k in sibling_positions(3, [1, 4])]


def test_tampering_is_rejected():
    depth = 5
    tree, leaves = make_tree(depth, 16, 99)
    idx = [2, 3, 7, 20, 31]
    sib = tree.open(idx)
    opened = [leaves[i] for i in idx]
    root = tree.root
    assert verify_batch(root, depth, idx, opened, sib)

    def flip(b: bytes, pos: int) -> bytes:
        return b[:pos] + bytes([b[pos] ^ 1]) + b[pos + 1:]

    for j in range(len(sib)):
        for pos in (0, 31):
            assert not verify_batch(root, depth, idx, opened, sib[:j] + [flip(sib[j], pos)] + sib[j + 1:])
    for j in range(len(opened)):
        assert not verify_batch(root, depth, idx, opened[:j] + [flip(opened[j], 5)] + opened[j + 1:], sib)
        assert not verify_batch(root, depth, idx, opened[:j] + [opened[j] + b"\0"] + opened[j + 1:], sib)
    assert not verify_batch(flip(root, 7), depth, idx, opened, sib)
    assert not verify_batch(root, depth, [2, 3, 7, 20, 30], opened, sib)  # moved index
    assert not verify_batch(root, depth, idx, opened, sib + [sib[0]])  # extra sibling
    assert not verify_batch(root, depth, idx, opened, sib[:-1])  # missing sibling
    assert not verify_batch(root, depth, idx, opened, sib[1:])
    assert not verify_batch(root, depth, idx, opened, sib[::-1])  # wrong order
    assert not verify_batch(root, depth - 1, idx[:-1], opened[:-1], sib)
    assert not verify_batch(root, depth + 1, idx, opened, sib)
    swapped = [idx[1], idx[0]] + idx[2:]
    assert not verify_batch(root, depth, swapped, [opened[1], opened[0]] + opened[2:], sib)


@pytest.mark.parametrize("args", [
    ("root", 5, [1], [b"x"], []),  # root not 32 bytes
    (bytes(32), -1, [0], [b"x"], []),
    (bytes(32), 65, [0], [b"x"], []),
    (bytes(32), 2, [], [], []),  # nothing opened
    (bytes(32), 2, [1, 1], [b"a", b"a"], [bytes(32)] * 2),  # duplicate
    (bytes(32), 2, [2, 1], [b"a", b"b"], [bytes(32)] * 2),  # unsorted
    (bytes(32), 2, [4], [b"a"], [bytes(32)] * 2),  # out of range
    (bytes(32), 2, [-1], [b"a"], [bytes(32)] * 2),
    (bytes(32), 2, [1], [b"a", b"b"], [bytes(32)] * 2),  # leaf count
    (bytes(32), 2, [1], [b"a"], [bytes(31), bytes(32)]),  # short digest
    (bytes(32), 2, [1], [b"a"], [bytes(32), "x" * 32]),
    (bytes(32), 2, [1], ["text"], [bytes(32)] * 2),
    (bytes(32), 2, [1], [None], [bytes(32)] * 2),
    (bytes(32), 2, [True], [b"a"], [bytes(32)] * 2),
    (bytes(32), 2, [1.0], [b"a"], [bytes(32)] * 2),
    (bytes(32), 2.0, [1], [b"a"], [bytes(32)] * 2),
    (bytes(32), 2, None, [b"a"], [bytes(32)] * 2),
    (bytes(32), 2, [1], None, [bytes(32)] * 2),
    (bytes(32), 2, [1], [b"a"], None),
    (None, 2, [1], [b"a"], [bytes(32)] * 2),
])
def test_malformed_input_returns_false(args):
    assert verify_batch(*args) is False


def test_sibling_count_rejects_malformed():
    for depth, idx in [(2, []), (2, [3, 1]), (2, [1, 1]), (2, [4]), (-1, [0]), (1.5, [0])]:
        with pytest.raises(ValueError):
            sibling_count(depth, idx)
    assert sibling_count(4, list(range(16))) == 0
    assert sibling_count(4, [5]) == 4


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(0, 9), data=st.data())
def test_random_openings_property(depth, data):
    n = 1 << depth
    idx = sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=min(n, 40))))
    tree, leaves = make_tree(depth, 8, depth)
    sib = tree.open(idx)
    opened = [leaves[i] for i in idx]
    assert len(sib) == sibling_count(depth, idx)
    assert verify_batch(tree.root, depth, idx, opened, sib)
    if sib:
        j = data.draw(st.integers(0, len(sib) - 1))
        bad = sib[:j] + [bytes(32)] + sib[j + 1:]
        assert verify_batch(tree.root, depth, idx, opened, bad) == (sib[j] == bytes(32))
        assert not verify_batch(tree.root, depth, idx, opened, sib[:j] + sib[j + 1:])
    j = data.draw(st.integers(0, len(idx) - 1))
    assert not verify_batch(tree.root, depth, idx, opened[:j] + [opened[j] + b"!"] + opened[j + 1:], sib)
