"""The batch header: what a committed batch of facts claims, in one canonical binary encoding.

Encoding (version 3, big-endian unless said, every length explicit, no trailing bytes)::

    "MJBATCH" u8 version
    u64 number                      1, 2, 3, ...
    prev_hash (32)                  hash of batch number-1; 32 zero bytes for batch 1
    state_root_before (32)          Poseidon2 root of the worker accounts' state tree
    state_root_after (32)           (memjit.rollup.tree: 8 field elements, little-endian u32,
                                    each < p: root_bytes), proven by the batch's STARK
    facts_root (32)                 Merkle root of the batch's fact hashes, in order
    u32 fact_count
    u64 minted                      SWT minted by this batch (sum of its facts' rewards)
    u64 timestamp_ms                when the batch was cut (ledger clock)
    u32 n + n x (worker id (32), u64 score)   aggregated score per worker, ids increasing
    u8 m + m x public key (48)      the committee that signs, keys increasing
    ---- the batch hash is blake3 of everything above (the "signed part") ----
    signature (96)                  BLS aggregate (G2ProofOfPossession) over the batch hash

The signature cannot be inside what it signs, so the batch hash covers the signed part only;
it does cover the committee, so a header names exactly who must have signed it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import pairwise

import blake3
import numpy as np

from circuits.field import P
from memjit.errors import BadInput
from memjit.market.facts import HASH_BYTES

MAGIC = b"MJBATCH"
VERSION = 3
PUBLIC_KEY_BYTES = 48
SIGNATURE_BYTES = 96
MAX_SCORES = 1 << 24
ZERO_HASH = bytes(HASH_BYTES)


def root_bytes(root: Iterable[int]) -> bytes:
    """A Poseidon2 root (8 field elements) as the header's 32 bytes (little-endian u32)."""
    return np.array([int(x) for x in root], dtype="<u4").tobytes()


def root_elements(data: bytes) -> tuple[int, ...] | None:
    """The 8 field elements of a root's 32 bytes (None if not 32 bytes of reduced elements)."""
    if len(data) != HASH_BYTES:
        return None
    out = tuple(int(x) for x in np.frombuffer(data, dtype="<u4"))
    return out if all(x < P for x in out) else None


class BatchFormatError(BadInput):
    """Bytes that are not a well-formed batch header, batch data or state diff."""


class Reader:
    """Bounded reads over one encoding; every overrun is a BatchFormatError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = bytes(data), 0, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BatchFormatError(f"truncated {self.what}")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def uint(self, fmt: str) -> int:
        """One big-endian unsigned integer: fmt is B, H, I or Q."""
        return struct.unpack(">" + fmt, self.take(struct.calcsize(fmt)))[0]

    def end(self) -> None:
        if self.pos != len(self.data):
            raise BatchFormatError(f"trailing bytes after the {self.what}")


@dataclass(frozen=True)
class Header:
    """One batch header (see the module docstring for the meaning and encoding of each field)."""

    number: int
    prev_hash: bytes
    state_root_before: bytes
    state_root_after: bytes
    facts_root: bytes
    fact_count: int
    minted: int
    timestamp_ms: int
    scores: tuple[tuple[bytes, int], ...]
    committee: tuple[bytes, ...]
    signature: bytes = b""

    def signed_part(self) -> bytes:
        """The canonical encoding of everything but the signature."""
        out = [MAGIC, bytes([VERSION]), struct.pack(">Q", self.number), self.prev_hash,
               self.state_root_before, self.state_root_after, self.facts_root,
               struct.pack(">IQQI", self.fact_count, self.minted, self.timestamp_ms,
                           len(self.scores))]
        out += [worker + struct.pack(">Q", score) for worker, score in self.scores]
        out += [bytes([len(self.committee)]), *self.committee]
        return b"".join(out)

    @property
    def hash(self) -> bytes:
        """The batch hash: blake3 of the signed part; the committee signs exactly this."""
        return blake3.blake3(self.signed_part()).digest()

    def encode(self) -> bytes:
        """The full header: signed part followed by the aggregate signature."""
        if len(self.signature) != SIGNATURE_BYTES:
            raise ValueError("an unsigned header has no full encoding")
        return self.signed_part() + self.signature

    def signed(self, signature: bytes) -> Header:
        """This header with its committee's aggregate signature."""
        return replace(self, signature=bytes(signature))


def decode_header(data: bytes) -> Header:
    """Parse a full header, refusing anything non-canonical (BatchFormatError)."""
    r = Reader(data, "batch header")
    if r.take(len(MAGIC)) != MAGIC or r.uint("B") != VERSION:
        raise BatchFormatError("not a memjit batch header (bad magic or version)")
    number = r.uint("Q")
    prev, before, after, facts = (r.take(HASH_BYTES) for _ in range(4))
    fact_count = r.uint("I")
    minted, timestamp_ms, n = r.uint("Q"), r.uint("Q"), r.uint("I")
    if n > MAX_SCORES:
        raise BatchFormatError(f"too many scores in batch header ({n})")
    scores = tuple((r.take(HASH_BYTES), r.uint("Q")) for _ in range(n))
    committee = tuple(r.take(PUBLIC_KEY_BYTES) for _ in range(r.uint("B")))
    header = Header(number, prev, before, after, facts, fact_count, minted, timestamp_ms,
                    scores, committee, r.take(SIGNATURE_BYTES))
    r.end()
    if root_elements(before) is None or root_elements(after) is None:
        raise BatchFormatError("a state root is not 8 reduced field elements")
    check_order([w for w, _ in scores], "score worker ids")
    check_order(list(committee), "committee keys")
    if number < 1 or not committee:
        raise BatchFormatError("batch number below 1 or empty committee")
    return header


def check_order(items: list[bytes], what: str) -> None:
    """Refuse a list that is not strictly increasing (canonical: sorted, no duplicates)."""
    if any(a >= b for a, b in pairwise(items)):
        raise BatchFormatError(f"{what} are not strictly increasing")
