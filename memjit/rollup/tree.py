"""The state tree: worker accounts in a depth-32 indexed Merkle tree with Poseidon2 nodes.

An account gets an index when it is first written (the next free one, as zkSync Lite assigns
account ids at registration) and keeps it; its leaf (circuits.rollup.leaf) sits at that index.
Node = Poseidon2 compression (Plonky3's TruncatedPermutation) of its children, leaf digest =
Poseidon2(limbs)[0:8]; an empty slot holds the digest of 16 zero limbs, and DEFAULTS[h] is the
root of an empty subtree of height h. Only the non-empty nodes are stored (a dict per height).

The batch AIR (circuits.rollup.batch) checks each update's path: `update` returns exactly the
witness it needs (old limbs, new limbs, the 32 siblings from the leaf up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits.poseidon2 import DIGEST
from circuits.rollup.leaf import EMPTY_LIMBS, leaf_digest
from prover.poseidon2 import compress, fold_path

DEPTH = 32
SUBTREE_DEPTH = 30
MAX_INDEX = 1 << SUBTREE_DEPTH
"""Indexes stay below 2^30 < p: every account lies in the depth-30 subtree at the far left,
whose root (`StateTree.subroot`) is what the batch AIR proves the update of."""


def _defaults() -> list[np.ndarray]:
    out = [leaf_digest(EMPTY_LIMBS)]
    for _ in range(DEPTH):
        out.append(compress(out[-1][None], out[-1][None])[0])
    return out


DEFAULTS = _defaults()


@dataclass(frozen=True)
class PathWitness:
    """One leaf update as the batch AIR sees it."""

    index: int
    old: np.ndarray  # 16 limbs before
    new: np.ndarray  # 16 limbs after
    siblings: np.ndarray  # (32, 8), from the leaf's sibling up


class StateTree:
    """The indexed Merkle tree of worker accounts."""

    def __init__(self) -> None:
        self._leaves: dict[int, np.ndarray] = {}
        self._nodes: list[dict[int, np.ndarray]] = [{} for _ in range(DEPTH + 1)]

    def __len__(self) -> int:
        return len(self._leaves)

    @property
    def root(self) -> np.ndarray:
        return self._node(DEPTH, 0).copy()

    @property
    def subroot(self) -> np.ndarray:
        """The root of the depth-30 subtree holding every account (the root's left-left)."""
        return self._node(SUBTREE_DEPTH, 0).copy()

    def _node(self, height: int, index: int) -> np.ndarray:
        return self._nodes[height].get(index, DEFAULTS[height])

    def limbs(self, index: int) -> np.ndarray:
        """The 16 limbs at `index` (zeros for an empty slot)."""
        return self._leaves.get(index, EMPTY_LIMBS).copy()

    def siblings(self, index: int) -> np.ndarray:
        """The 32 siblings of the path of `index`, from the leaf level up."""
        return np.stack([self._node(h, (index >> h) ^ 1) for h in range(DEPTH)])

    def update(self, index: int, limbs: np.ndarray) -> PathWitness:
        """Write `limbs` at `index`; returns the update's witness."""
        if not 0 <= index < MAX_INDEX:
            raise ValueError(f"index {index} out of range")
        limbs = np.asarray(limbs, dtype=np.uint64).copy()
        witness = PathWitness(index, self.limbs(index), limbs, self.siblings(index))
        self._leaves[index] = limbs
        path = fold_path(compress(limbs[None, :8], limbs[None, 8:])[0], witness.siblings, index)
        for h in range(DEPTH + 1):
            self._nodes[h][index >> h] = path[h]
        return witness

    def build(self, leaves: dict[int, np.ndarray]) -> None:
        """Write many leaves at once, hashing each level in one batched call."""
        if not leaves:
            return
        idx = np.array(sorted(leaves), dtype=np.int64)
        if idx[0] < 0 or idx[-1] >= MAX_INDEX:
            raise ValueError("index out of range")
        for i in idx:
            self._leaves[int(i)] = np.asarray(leaves[int(i)], dtype=np.uint64).copy()
        digests = leaf_digest(np.stack([self._leaves[int(i)] for i in idx]))
        self._nodes[0].update(zip(idx.tolist(), digests))
        for h in range(DEPTH):
            parents = np.unique(idx >> 1)
            left = np.stack([self._node(h, 2 * int(p)) for p in parents])
            right = np.stack([self._node(h, 2 * int(p) + 1) for p in parents])
            self._nodes[h + 1].update(zip(parents.tolist(), compress(left, right)))
            idx = parents


def verify_path(root: np.ndarray, index: int, limbs: np.ndarray, siblings: np.ndarray) -> bool:
    """Whether `limbs` sit at `index` under `root` (reference Poseidon2: light)."""
    from circuits.poseidon2 import compress as ref_compress

    node = leaf_digest(limbs)
    for h in range(DEPTH):
        sib = np.asarray(siblings[h], dtype=np.uint64)
        node = ref_compress(sib, node) if (index >> h) & 1 else ref_compress(node, sib)
    return bool(np.array_equal(node, root)) and len(node) == DIGEST
