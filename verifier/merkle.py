"""Merkle multiproofs over BLAKE3: the commitment scheme's definition (pure Python + blake3).

A tree has n = 2^depth leaves; leaf i's digest is blake3(leaf_bytes_i), a parent is
blake3(left || right), the root is the single node at level `depth` (for depth 0, the leaf
digest itself). A batch opening of sorted, distinct leaf indices carries the opened leaves'
bytes and the sibling digests the verifier cannot compute itself, in canonical order: level by
level from the leaves up, within a level by increasing node index. `sibling_positions` defines
that order; the prover's `open` follows it, so both sides agree by construction.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from blake3 import blake3

DIGEST_LEN = 32
MAX_DEPTH = 64


def _checked_indices(depth: object, indices: Sequence[int]) -> list[int] | None:
    """The indices as ints if depth and indices are well formed (sorted, distinct, in range,
    at least one), else None."""
    try:
        if isinstance(depth, bool) or any(isinstance(i, bool) for i in indices):
            return None
        depth = operator.index(depth)
        idx = [operator.index(i) for i in indices]
    except TypeError:
        return None
    if not 0 <= depth <= MAX_DEPTH or not idx:
        return None
    if idx[0] < 0 or idx[-1] >= 1 << depth:
        return None
    if any(a >= b for a, b in zip(idx, idx[1:])):
        return None
    return idx


def sibling_positions(depth: int, indices: Sequence[int]) -> list[tuple[int, int]]:
    """(level, node index) of every sibling a batch opening carries, in canonical order.
    Raises ValueError for a malformed depth or index list."""
    idx = _checked_indices(depth, indices)
    if idx is None:
        raise ValueError("indices must be sorted, distinct, non-empty and in [0, 2^depth)")
    out = []
    for level in range(depth):
        nxt = []
        i, n = 0, len(idx)
        while i < n:
            k = idx[i]
            if k & 1 == 0 and i + 1 < n and idx[i + 1] == k + 1:
                i += 2
            else:
                out.append((level, k ^ 1))
                i += 1
            nxt.append(k >> 1)
        idx = nxt
    return out


def sibling_count(depth: int, indices: Sequence[int]) -> int:
    """The exact number of siblings in a valid opening of `indices` (bounds proof parsing).
    Raises ValueError for a malformed depth or index list."""
    return len(sibling_positions(depth, indices))


def verify_batch(root: bytes, depth: int, indices: Sequence[int], leaves: Sequence[bytes],
                 siblings: Sequence[bytes]) -> bool:
    """True iff the leaves at `indices` with these siblings hash up to `root`. Any malformed
    input (counts, ordering, ranges, digest lengths, unused or missing siblings) gives False."""
    try:
        idx = _checked_indices(depth, indices)
        if (idx is None or not isinstance(root, (bytes, bytearray)) or len(root) != DIGEST_LEN
                or len(leaves) != len(idx)
                or not all(isinstance(s, (bytes, bytearray)) and len(s) == DIGEST_LEN
                           for s in siblings)
                or not all(isinstance(leaf, (bytes, bytearray, memoryview)) for leaf in leaves)):
            return False
        hasher = blake3()

        def digest(data: bytes) -> bytes:  # one hasher, reset: a new one costs half a hash
            hasher.update(data)
            out = hasher.digest()
            hasher.reset()
            return out

        nodes = [digest(leaf) for leaf in leaves]
        pos, total = 0, len(siblings)
        for _ in range(operator.index(depth)):
            nxt_idx, nxt = [], []
            i, n = 0, len(idx)
            while i < n:
                k = idx[i]
                if k & 1:
                    if pos == total:
                        return False
                    h = digest(siblings[pos] + nodes[i])
                    pos += 1
                    i += 1
                elif i + 1 < n and idx[i + 1] == k + 1:
                    h = digest(nodes[i] + nodes[i + 1])
                    i += 2
                else:
                    if pos == total:
                        return False
                    h = digest(nodes[i] + siblings[pos])
                    pos += 1
                    i += 1
                nxt_idx.append(k >> 1)
                nxt.append(h)
            idx, nodes = nxt_idx, nxt
        return pos == total and nodes[0] == root
    except Exception:  # malformed input of an unexpected type must reject, never raise
        return False
