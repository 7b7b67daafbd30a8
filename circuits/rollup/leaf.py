"""The state tree's leaf: a worker account as 16 field elements ("limbs"), hashed by Poseidon2.

    limb  0-6   key hash: Poseidon2(worker id as 16 little-endian u16 limbs)[0:7] (~217 bits)
    limb  7, 8  stake      = lo + 2^30 hi     (lo < 2^30, hi < 2^23: amounts are < 2^53)
    limb  9     usefulness (ppm, <= 10^6)
    limb 10     last use   (the day of the account's last fact; 0: never)
    limb 11, 12 minted     = lo + 2^30 hi     (SWT minted to the worker by proven batches)
    limb 13, 14 slashed    = lo + 2^30 hi
    limb 15     version (1); an empty slot is 16 zeros

Every limb is far below p, and every sum the batch AIR forms of them (a 30-bit limb plus a
30-bit reward, an EMA of 20-bit values scaled by 1000) stays below p: nothing wraps. The leaf's
digest is Poseidon2(limbs)[0:8], which is Plonky3's compression of limbs 0-7 with limbs 8-15.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from circuits.poseidon2 import DIGEST, WIDTH, permute

KEY, KEY_LIMBS = 0, 7
STAKE, USEFULNESS, LAST_DAY, MINTED, SLASHED, VERSION = 7, 9, 10, 11, 13, 15
LEAF_VERSION = 1
LIMB_BITS = 30
LIMB = 1 << LIMB_BITS
MAX_AMOUNT = (1 << 53) - 1


def key_hash(worker_id: bytes) -> np.ndarray:
    """The 7 key-hash limbs of a 32-byte worker id."""
    return key_hashes([worker_id])[0]


def key_hashes(worker_ids: Sequence[bytes]) -> np.ndarray:
    """The key-hash limbs (n, 7) of n 32-byte worker ids, in one batched permutation."""
    if any(len(w) != 32 for w in worker_ids):
        raise ValueError("a worker id is 32 bytes")
    limbs = np.frombuffer(b"".join(worker_ids), dtype="<u2").astype(np.uint64).reshape(-1, 16)
    return permute(limbs)[:, :KEY_LIMBS]


@dataclass(frozen=True)
class Leaf:
    """An account as the state tree holds it (integers; see the module docstring)."""

    key: tuple[int, ...]
    stake: int = 0
    usefulness: int = 0
    last_day: int = 0
    minted: int = 0
    slashed: int = 0

    def limbs(self) -> np.ndarray:
        """The 16 limbs (ValueError for a field out of range)."""
        for name in ("stake", "minted", "slashed"):
            if not 0 <= getattr(self, name) <= MAX_AMOUNT:
                raise ValueError(f"{name} out of range")
        if not 0 <= self.usefulness <= 1_000_000 or not 0 <= self.last_day < LIMB:
            raise ValueError("usefulness or last day out of range")
        out = np.zeros(WIDTH, dtype=np.uint64)
        out[KEY:KEY + KEY_LIMBS] = self.key
        for pos, amount in ((STAKE, self.stake), (MINTED, self.minted), (SLASHED, self.slashed)):
            out[pos], out[pos + 1] = amount % LIMB, amount >> LIMB_BITS
        out[USEFULNESS], out[LAST_DAY], out[VERSION] = self.usefulness, self.last_day, LEAF_VERSION
        return out

    @classmethod
    def of(cls, limbs: np.ndarray) -> "Leaf | None":
        """The account of 16 limbs (None for an empty slot)."""
        v = [int(x) for x in limbs]
        if not any(v):
            return None
        return cls(tuple(v[KEY:KEY + KEY_LIMBS]), v[STAKE] + (v[STAKE + 1] << LIMB_BITS),
                   v[USEFULNESS], v[LAST_DAY], v[MINTED] + (v[MINTED + 1] << LIMB_BITS),
                   v[SLASHED] + (v[SLASHED + 1] << LIMB_BITS))


EMPTY_LIMBS = np.zeros(WIDTH, dtype=np.uint64)


def leaf_digest(limbs: np.ndarray) -> np.ndarray:
    """The digest (8) of a leaf's limbs (an empty slot hashes its 16 zeros)."""
    return permute(np.asarray(limbs, dtype=np.uint64))[..., :DIGEST]
