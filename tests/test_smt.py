"""The sparse Merkle tree: roots against a naive reference, incremental updates, and proofs that
verify from the root alone and reject every change."""

from __future__ import annotations

import random

from blake3 import blake3
from hypothesis import given
from hypothesis import strategies as st

from memjit.rollup.smt import DEFAULTS, DEPTH, SparseMerkleTree, leaf_hash, verify_proof


def reference_root(items: dict[bytes, bytes]) -> bytes:
    """The root by definition: hash every level of the full tree, empty subtrees by default."""
    leaves = {int.from_bytes(k, "big"): leaf_hash(k, v) for k, v in items.items()}

    def node(h: int, keys: list[int]) -> bytes:
        if not keys:
            return DEFAULTS[h]
        if h == 0:
            return leaves[keys[0]]
        left = [k for k in keys if not k >> (h - 1) & 1]
        right = [k for k in keys if k >> (h - 1) & 1]
        return blake3(node(h - 1, left) + node(h - 1, right)).digest()

    return node(DEPTH, sorted(leaves))


def key(n: int) -> bytes:
    return n.to_bytes(32, "big")


# keys that share long prefixes (siblings deep in the tree) as well as random ones
KEYS = st.one_of(st.binary(min_size=32, max_size=32),
                 st.integers(0, 64).map(key),
                 st.integers(0, 64).map(lambda n: key((1 << 255) | (n << 100))))
ITEMS = st.dictionaries(KEYS, st.binary(max_size=40), max_size=12)


def test_empty_tree() -> None:
    tree = SparseMerkleTree()
    assert tree.root == DEFAULTS[DEPTH] == reference_root({})
    proof = tree.prove(key(5))
    assert len(proof) == 33 and verify_proof(tree.root, key(5), None, proof)
    assert not verify_proof(tree.root, key(5), b"", proof)


@given(ITEMS, KEYS)
def test_roots_and_proofs_match_the_definition(items: dict[bytes, bytes], probe: bytes) -> None:
    tree = SparseMerkleTree(items.items())
    assert tree.root == reference_root(items)
    assert len(tree) == len(items) and dict(tree.items()) == items
    for k, v in items.items():
        proof = tree.prove(k)
        assert verify_proof(tree.root, k, v, proof)
        assert not verify_proof(tree.root, k, v + b"x", proof)
        assert not verify_proof(tree.root, k, None, proof)
    expected = items.get(probe)
    proof = tree.prove(probe)  # inclusion if present, else non-inclusion
    assert verify_proof(tree.root, probe, expected, proof)
    wrong = b"" if expected is None else None
    assert not verify_proof(tree.root, probe, wrong, proof)


@given(ITEMS, ITEMS, st.randoms(use_true_random=False))
def test_incremental_updates_equal_a_fresh_tree(first: dict, second: dict,
                                                rng: random.Random) -> None:
    tree = SparseMerkleTree(first.items())
    assert len(tree.root) == 32  # fills the cache: updates must invalidate it correctly
    changes = [(k, None) for k in first if k not in second] + list(second.items())
    rng.shuffle(changes)
    for k, v in changes:
        tree.set(k, v)
        tree.prove(k)
    assert tree.root == SparseMerkleTree(second.items()).root == reference_root(second)
    for k, v in list(second.items()):
        tree.set(k, None)
    assert tree.root == DEFAULTS[DEPTH] and len(tree) == 0


def test_neighbours_and_extreme_keys() -> None:
    items = {key(0): b"a", key(1): b"b", key((1 << 256) - 1): b"c", key(1 << 255): b""}
    tree = SparseMerkleTree(items.items())
    assert tree.root == reference_root(items)
    for k, v in items.items():
        assert verify_proof(tree.root, k, v, tree.prove(k))
    assert verify_proof(tree.root, key(2), None, tree.prove(key(2)))
    assert tree.prove(key(0))[1:33] != bytes(32)  # height-0 sibling is the leaf at key 1


def test_every_changed_byte_of_a_proof_is_rejected() -> None:
    rng = random.Random(7)
    items = {rng.randbytes(32): rng.randbytes(20) for _ in range(50)}
    tree = SparseMerkleTree(items.items())
    k, v = next(iter(items.items()))
    proof = tree.prove(k)
    assert verify_proof(tree.root, k, v, proof)
    for i in range(len(proof)):
        for flip in (1, 0x80):
            bad = bytearray(proof)
            bad[i] ^= flip
            assert not verify_proof(tree.root, k, v, bytes(bad))
    assert not verify_proof(tree.root, k, v, proof[:-1])
    assert not verify_proof(tree.root, k, v, proof + bytes(32))
    assert not verify_proof(tree.root, k[:31], v, proof)
    assert not verify_proof(tree.root[:31], k, v, proof)


def test_a_default_sibling_is_never_explicit() -> None:
    tree = SparseMerkleTree([(key(4), b"x")])
    proof = tree.prove(key(4))
    padded = bytes([1]) + (1).to_bytes(32, "big") + DEFAULTS[0]  # height 0 sent explicitly
    assert proof == bytes([1]) + bytes(32)
    assert not verify_proof(tree.root, key(4), b"x", padded)
