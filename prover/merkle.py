"""Merkle trees over BLAKE3 for commitments, built level by level with the batched kernels.

Same tree as verifier.merkle defines: leaf digest = blake3(leaf bytes), parent = blake3(l || r);
openings list the siblings in the order verifier.merkle.sibling_positions gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prover.blake3_batch import hash_field_rows, hash_pairs, hash_rows
from verifier.merkle import sibling_positions


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _levels(leaf_digests: np.ndarray) -> list[np.ndarray]:
    levels = [leaf_digests]
    while levels[-1].shape[0] > 1:
        levels.append(hash_pairs(levels[-1]))
    return levels


class MerkleTree:
    """All levels of a tree over n = 2^depth leaves: levels[0] are the leaf digests (n, 32),
    levels[depth] is the root (1, 32); each level a uint8 array."""

    def __init__(self, leaves: np.ndarray) -> None:
        """Build from leaf bytes, uint8 (n, L) with n a power of two (L may be 0)."""
        leaves = np.asarray(leaves)
        if leaves.dtype != np.uint8 or leaves.ndim != 2 or not _is_power_of_two(leaves.shape[0]):
            raise ValueError(f"expected uint8 (2^d, L) leaves, got {leaves.dtype} {leaves.shape}")
        self.levels: list[np.ndarray] = _levels(hash_rows(leaves))

    @classmethod
    def from_field_rows(cls, matrix: np.ndarray) -> MerkleTree:
        """Tree whose leaf i is row i of a field matrix (n, w) of uint32 or uint64, each value
        as 4 little-endian bytes (values < 2^31, so exact). matrix may be a strided view such
        as columns.T: it is read in place, never copied or transposed."""
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or not _is_power_of_two(matrix.shape[0]):
            raise ValueError(f"expected a (2^d, w) matrix, got shape {matrix.shape}")
        tree = cls.__new__(cls)
        tree.levels = _levels(hash_field_rows(matrix))
        return tree

    @property
    def depth(self) -> int:
        return len(self.levels) - 1

    @property
    def root(self) -> bytes:
        return self.levels[-1][0].tobytes()

    def open(self, indices: Sequence[int]) -> list[bytes]:
        """Sibling digests proving the leaves at `indices` (sorted, distinct), canonical order."""
        return [self.levels[level][k].tobytes() for level, k in sibling_positions(self.depth, indices)]
