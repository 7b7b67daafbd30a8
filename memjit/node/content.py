"""Content by CID between nodes: a node serves its store's blocks, and a fetcher checks every
block it gets against the CID it asked for.

A block is fetched whole over HTTP (`GET /v1/blocks/{cid}`) and re-hashed (BLAKE3, the CID's
multihash) before anything uses or stores it; a peer that served bytes that do not hash to
the CID is never asked again by this fetcher (its URL is banned for the process's lifetime).
"""

from __future__ import annotations

import threading

import httpx

from memjit.errors import BadInput, Rejected
from memjit.runtime.store import Store, cid_of, digest_of_cid

MAX_BLOCK_BYTES = 8 * 1024 * 1024


class WrongBlock(Rejected):
    """A peer served bytes that do not hash to the CID asked for."""


class Fetcher:
    """Fetches blocks by CID from peers into a store, re-hashing each one."""

    def __init__(self, store: Store, timeout_s: float = 30.0,
                 client: httpx.Client | None = None) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.client = client or httpx.Client()
        self.banned: set[str] = set()
        self._lock = threading.Lock()

    def fetch(self, peer: str, cid: str) -> bytes:
        """The block `cid`, from the store or else from `peer` (re-hashed, then stored).
        WrongBlock when the peer's bytes do not hash to the CID (the peer is banned), Rejected
        when the peer is banned, unreachable or does not have it."""
        digest_of_cid(cid)  # BadInput on a malformed CID
        if self.store.has(cid):
            return self.store.get(cid)
        base = peer.rstrip("/")
        with self._lock:
            if base in self.banned:
                raise Rejected(f"peer {base} served a wrong block before; not asking it again")
        try:
            with self.client.stream("GET", f"{base}/v1/blocks/{cid}",
                                    timeout=self.timeout_s) as r:
                if r.status_code != 200:
                    raise Rejected(f"peer {base} has no block {cid} (HTTP {r.status_code})")
                data = bytearray()
                for chunk in r.iter_bytes():
                    data += chunk
                    if len(data) > MAX_BLOCK_BYTES:
                        raise Rejected(f"peer {base} sent a block over {MAX_BLOCK_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise Rejected(f"cannot fetch {cid} from {base}: {exc}") from None
        data = bytes(data)
        try:
            actual = cid_of(data)
        except BadInput:
            actual = None
        if actual != cid:
            with self._lock:
                self.banned.add(base)
            raise WrongBlock(f"peer {base} served bytes that do not hash to {cid}; banned")
        self.store.put(data)
        return data
