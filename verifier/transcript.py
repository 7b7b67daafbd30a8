"""Fiat-Shamir transcript over BLAKE3.

The state is a 32-byte digest. ``absorb`` hashes the state with a labelled, length-prefixed
message; every draw squeezes BLAKE3's extendable output from the state and a label and then
ratchets the state, so no two draws share output. Protocol order (public inputs and every
commitment absorbed before the challenges that depend on them) is fixed by verifier.stark.
"""

from __future__ import annotations

import struct

import blake3
import numpy as np

from circuits.field import P

_DOMAIN = b"memjit/transcript/v1"


class Transcript:
    def __init__(self, protocol: bytes) -> None:
        self._state = blake3.blake3(_DOMAIN + struct.pack("<H", len(protocol)) + protocol).digest()

    @property
    def state(self) -> bytes:
        """The current 32-byte state (the grinding seed)."""
        return self._state

    def absorb(self, label: bytes, data: bytes) -> None:
        """Bind a labelled message into the state."""
        h = blake3.blake3(self._state)
        h.update(struct.pack("<B", len(label)) + label + struct.pack("<Q", len(data)))
        h.update(data)
        self._state = h.digest()

    def absorb_nonce(self, nonce: int) -> None:
        """Bind a proof-of-work nonce (after checking it against ``state``)."""
        self.absorb(b"pow", struct.pack("<Q", nonce))

    def _squeeze(self, label: bytes, n: int) -> bytes:
        out = blake3.blake3(self._state + b"\x01" + label).digest(length=n)
        self._state = blake3.blake3(self._state + b"\x02" + label).digest()
        return out

    def draw_ext(self, label: bytes) -> np.ndarray:
        """One element of F_p^4: four 64-bit words reduced mod p (bias < 2^-32 per word)."""
        words = np.frombuffer(self._squeeze(label, 32), dtype="<u8")
        return (words % np.uint64(P)).astype(np.uint64)

    def draw_exts(self, label: bytes, count: int) -> np.ndarray:
        """count elements of F_p^4 as a (count, 4) array."""
        words = np.frombuffer(self._squeeze(label, 32 * count), dtype="<u8").reshape(count, 4)
        return (words % np.uint64(P)).astype(np.uint64)

    def draw_indices(self, label: bytes, count: int, domain_size: int) -> np.ndarray:
        """count uniform indices in [0, domain_size), domain_size a power of two."""
        words = np.frombuffer(self._squeeze(label, 8 * count), dtype="<u8")
        return (words & np.uint64(domain_size - 1)).astype(np.int64)


def grinding_ok(seed: bytes, nonce: int, bits: int) -> bool:
    """True iff blake3(seed || nonce) has `bits` trailing zero bits in its first 8 bytes (LE)."""
    digest = blake3.blake3(seed + struct.pack("<Q", nonce)).digest()
    return int.from_bytes(digest[:8], "little") % (1 << bits) == 0
