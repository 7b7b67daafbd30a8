"""The indexed Poseidon2 state tree: paths verify against the root, bulk builds equal updates,
an update's witness opens the old root, and leaves round-trip through their limbs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from circuits.rollup.leaf import Leaf, key_hash
from memjit.rollup.tree import DEFAULTS, DEPTH, StateTree, verify_path


def leaf(n: int) -> np.ndarray:
    return Leaf(tuple(int(x) for x in key_hash(bytes([n]) * 32)), n, 1000 * n, n, 3 * n).limbs()


def test_empty_tree_root_is_the_default():
    assert np.array_equal(StateTree().root, DEFAULTS[DEPTH])


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(0, (1 << 30) - 1), min_size=1, max_size=6, unique=True))
def test_paths_open_and_bulk_build_matches_updates(indexes):
    one_by_one, bulk = StateTree(), StateTree()
    for n, i in enumerate(indexes):
        before = one_by_one.root
        w = one_by_one.update(i, leaf(n + 1))
        assert verify_path(before, i, w.old, w.siblings)
        assert verify_path(one_by_one.root, i, w.new, w.siblings)
        assert not verify_path(one_by_one.root, i ^ 1, w.new, w.siblings)
    bulk.build({i: leaf(n + 1) for n, i in enumerate(indexes)})
    assert np.array_equal(bulk.root, one_by_one.root)


def test_leaf_limbs_round_trip():
    account = Leaf(tuple(range(1, 8)), (1 << 53) - 1, 1_000_000, 20_000, 1 << 40, 12345)
    assert Leaf.of(account.limbs()) == account
    assert Leaf.of(np.zeros(16, np.uint64)) is None
