"""A sparse Merkle tree over 256-bit keys (BLAKE3), with compact inclusion / non-inclusion proofs.

The tree has a leaf slot for every 256-bit key; almost all are empty. Heights run from 0 (leaves)
to 256 (the root); the node at height h above key k is named by the prefix k >> h, and bit h of
k says whether the path goes right (1) or left (0) on the way up. Hashes:

    empty leaf    = 32 zero bytes
    leaf          = blake3(0x00 || key (32 bytes) || value)
    node          = blake3(left || right)
    empty subtree = DEFAULTS[h], with DEFAULTS[0] = empty leaf, DEFAULTS[h+1] = node(D[h], D[h])

The depth is fixed, so a node is never mistaken for a leaf; the key inside the leaf hash binds a
value to its slot. Only non-empty subtrees are ever hashed: the tree keeps the leaves (a sorted
key list finds the leaves under any prefix) and caches the hashes it computed, dropping the 257
cached nodes on a key's path when that key changes. A subtree holding a single leaf is hashed
by folding the leaf up with default siblings.

Proof of key k (version 1): ``u8 version || 32-byte bitmap || siblings``. Bit h of the bitmap
(the bitmap read as a 256-bit big-endian integer) is set when the sibling at height h is not
DEFAULTS[h]; those siblings follow, 32 bytes each, from height 0 upwards. A default sibling is
never sent explicitly, so every (tree, key) has exactly one proof. :func:`verify_proof` checks
a proof against a root alone: anyone holding a batch header can check an account offline.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator

from blake3 import blake3

DEPTH = 256
KEY_BYTES = 32
HASH_BYTES = 32
PROOF_VERSION = 1
_LEAF_TAG = b"\x00"
_BITMAP_BYTES = DEPTH // 8


def _node(left: bytes, right: bytes) -> bytes:
    return blake3(left + right).digest()


def _defaults() -> tuple[bytes, ...]:
    out = [bytes(HASH_BYTES)]
    for _ in range(DEPTH):
        out.append(_node(out[-1], out[-1]))
    return tuple(out)


DEFAULTS: tuple[bytes, ...] = _defaults()
"""DEFAULTS[h]: the hash of an empty subtree of height h (DEFAULTS[256] is the empty root)."""


def leaf_hash(key: bytes, value: bytes) -> bytes:
    """The hash of the leaf holding `value` at `key`."""
    return blake3(_LEAF_TAG + key + value).digest()


def _fold(node: bytes, key: int, start: int, stop: int,
          siblings: Iterator[bytes] | None = None, bitmap: int = 0) -> bytes:
    """Hash `node` (at height `start`, above `key`) up to height `stop`; siblings are default
    except at the heights set in `bitmap`, which are taken from `siblings` in order."""
    for h in range(start, stop):
        sibling = next(siblings) if bitmap >> h & 1 else DEFAULTS[h]  # type: ignore[arg-type]
        node = _node(sibling, node) if key >> h & 1 else _node(node, sibling)
    return node


def _key_int(key: bytes) -> int:
    if len(key) != KEY_BYTES:
        raise ValueError(f"SMT keys are {KEY_BYTES} bytes, got {len(key)}")
    return int.from_bytes(key, "big")


class SparseMerkleTree:
    """A 256-bit sparse Merkle tree of byte values (see the module docstring for the hashing)."""

    def __init__(self, items: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._values: dict[int, bytes] = {}
        self._leaves: dict[int, bytes] = {}
        self._keys: list[int] = []
        self._cache: dict[tuple[int, int], bytes] = {}
        for key, value in items:
            k = _key_int(key)
            self._values[k] = bytes(value)
            self._leaves[k] = leaf_hash(key, bytes(value))
        self._keys = sorted(self._values)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: bytes) -> bytes | None:
        """The value at `key`, or None for an empty slot."""
        return self._values.get(_key_int(key))

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every non-empty leaf, in key order."""
        for k in self._keys:
            yield k.to_bytes(KEY_BYTES, "big"), self._values[k]

    def set(self, key: bytes, value: bytes | None) -> None:
        """Put `value` at `key` (None empties the slot)."""
        k = _key_int(key)
        present = k in self._values
        if value is None:
            if not present:
                return
            del self._values[k], self._leaves[k]
            self._keys.pop(bisect_left(self._keys, k))
        else:
            self._values[k] = bytes(value)
            self._leaves[k] = leaf_hash(key, bytes(value))
            if not present:
                insort(self._keys, k)
        for h in range(DEPTH + 1):
            self._cache.pop((h, k >> h), None)

    @property
    def root(self) -> bytes:
        """The root hash (DEFAULTS[256] for an empty tree)."""
        return self._hash(DEPTH, 0)

    def prove(self, key: bytes) -> bytes:
        """The proof that `key` holds its current value, or is empty (non-inclusion)."""
        k = _key_int(key)
        found: dict[int, bytes] = {}  # height -> non-default sibling
        for h in range(DEPTH - 1, -1, -1):  # top-down, while the path holds other leaves
            lo, hi = self._count(h + 1, k >> (h + 1))
            if hi - lo == 1 and self._keys[lo] != k:  # one other leaf j: it is the only sibling
                j = self._keys[lo]
                d = (j ^ k).bit_length() - 1
                found[d] = self._hash(d, j >> d)
            if hi - lo <= 1:
                break
            sibling = self._hash(h, (k >> h) ^ 1)
            if sibling != DEFAULTS[h]:
                found[h] = sibling
        bitmap = sum(1 << h for h in found)
        return (bytes([PROOF_VERSION]) + bitmap.to_bytes(_BITMAP_BYTES, "big")
                + b"".join(found[h] for h in sorted(found)))

    def _count(self, h: int, prefix: int) -> tuple[int, int]:
        """The index range in the sorted key list of the leaves under node (h, prefix)."""
        lo = bisect_left(self._keys, prefix << h)
        return lo, bisect_left(self._keys, (prefix + 1) << h, lo)

    def _hash(self, h: int, prefix: int) -> bytes:
        """The hash of the node at height h above the keys starting with `prefix`."""
        cached = self._cache.get((h, prefix))
        if cached is not None:
            return cached
        lo, hi = self._count(h, prefix)
        if lo == hi:
            return DEFAULTS[h]
        if hi - lo == 1:
            k = self._keys[lo]
            value = _fold(self._leaves[k], k, 0, h)
        else:
            value = _node(self._hash(h - 1, prefix << 1), self._hash(h - 1, prefix << 1 | 1))
        self._cache[(h, prefix)] = value
        return value


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: bytes) -> bool:
    """Whether `proof` shows that `key` holds `value` (None: the slot is empty) under `root`.

    Needs nothing but the root, e.g. a batch header's state root; False for any malformed input.
    """
    if len(root) != HASH_BYTES or len(key) != KEY_BYTES or len(proof) < 1 + _BITMAP_BYTES \
            or proof[0] != PROOF_VERSION:
        return False
    bitmap = int.from_bytes(proof[1:1 + _BITMAP_BYTES], "big")
    body = proof[1 + _BITMAP_BYTES:]
    if len(body) != HASH_BYTES * bitmap.bit_count():
        return False
    siblings = [body[i:i + HASH_BYTES] for i in range(0, len(body), HASH_BYTES)]
    heights = [h for h in range(DEPTH) if bitmap >> h & 1]
    if any(s == DEFAULTS[h] for s, h in zip(siblings, heights)):
        return False  # a default sibling must be left implicit (one proof per key and tree)
    node = DEFAULTS[0] if value is None else leaf_hash(key, bytes(value))
    return _fold(node, _key_int(key), 0, DEPTH, iter(siblings), bitmap) == root
