"""A follower: a node that keeps its own replica of the rollup (`memjit node start --follow`).

It polls, in a thread of its own, for the next batch N after its replica's head:

1. it asks the sequencer how far the network is (GET /v1/batches?after=N-1: cheap); when the
   sequencer is unreachable, or has batch N, it looks for every node holding batch N (the
   providers of `rendezvous(N)` in the DHT) and asks each in turn, other nodes before the
   sequencer (to spare it), for the refs of the batches from N on;
2. it fetches each batch's blocks by CID from the node that listed it, else from any provider
   of the CID, re-hashing every block (memjit.node.content.Fetcher: a node that serves wrong
   bytes is banned);
3. the replica checks the batch (memjit.rollup.replica: header chain, genesis committee and
   its signature, data, proof bundle, every claim under its worker's VK, the Poseidon2 root)
   and applies it; the follower then provides every block of the batch and its rendezvous key.

A batch that fails a check is refused: the node that listed it is no longer trusted for that
batch number, and the follower tries the next node. A follower that was down starts from its
replica's head and catches up from whichever nodes hold the batches.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx

from memjit.errors import BadInput, MemjitError, Rejected
from memjit.node.batches import MAX_REFS, rendezvous
from memjit.node.content import Fetcher
from memjit.node.log import log
from memjit.node.membership import Membership
from memjit.rollup.replica import BadBatch, BatchRef, Replica

POLL_S = 1.0
MAX_LISTING_BYTES = 64 * 1024


class Follower:
    """Keeps `replica` up with the network (see the module doc)."""

    def __init__(self, replica: Replica, fetcher: Fetcher, membership: Membership,
                 sequencer: Callable[[], str | None], url: str, network: str,
                 poll_s: float = POLL_S, client: httpx.Client | None = None) -> None:
        self.replica, self.fetcher, self.membership = replica, fetcher, membership
        self.sequencer, self.url, self.network, self.poll_s = sequencer, url, network, poll_s
        self.distrusted: set[tuple[str, int]] = set()
        self.client = client or httpx.Client(timeout=30)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="follower")

    def start(self) -> None:
        """Provide what the replica holds, then follow in the background."""
        refs = self.replica.refs(0)
        if refs:
            self.membership.provide_all([c for r in refs for c in (
                r.header, r.data, r.bundle, rendezvous(self.network, r.number))])
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.client.close()

    def sync(self) -> int:
        """Apply every batch some node can serve now; how many were applied."""
        applied = 0
        while not self._stop.is_set():
            n = self.replica.height + 1
            seq = self.sequencer()
            height = None if seq is None else self._height(seq)
            if height is not None and height < n:
                return applied  # the sequencer has nothing new: skip the DHT lookup
            progressed = 0
            for peer in self.candidates(n, seq):
                progressed = self._from(peer, n)
                if progressed:
                    break
            if not progressed:
                return applied
            applied += progressed

    def candidates(self, number: int, sequencer: str | None) -> list[str]:
        """The nodes to ask for batch `number`: its providers, then the sequencer; never this
        node, nor a node that served a bad batch `number`."""
        found = [r.endpoint.rstrip("/") for r in self.membership.discovery.find_providers(
            rendezvous(self.network, number))]
        peers = [p for p in found if p != sequencer] + ([sequencer] if sequencer else [])
        return [p for p in dict.fromkeys(peers)
                if p != self.url and (p, number) not in self.distrusted]

    def _height(self, peer: str) -> int | None:
        """The proven height `peer` lists (None if unreachable or malformed)."""
        try:
            value = self.client.get(f"{peer}/v1/batches", params={"limit": 0}).json()["height"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        return value if isinstance(value, int) else None

    def _refs(self, peer: str, after: int) -> list[BatchRef]:
        """The refs `peer` lists after `after` ([] if it cannot be reached; BadInput if the
        listing is malformed or over MAX_LISTING_BYTES)."""
        body = bytearray()
        try:
            with self.client.stream("GET", f"{peer}/v1/batches",
                                    params={"after": after, "limit": MAX_REFS}) as response:
                if response.status_code != 200:
                    return []
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_LISTING_BYTES:
                        raise BadInput(f"a batch listing over {MAX_LISTING_BYTES} bytes")
        except httpx.HTTPError:
            return []
        try:
            refs = json.loads(body)["batches"]
        except (ValueError, KeyError, TypeError):
            raise BadInput("a malformed batch listing") from None
        if not isinstance(refs, list) or len(refs) > MAX_REFS:
            raise BadInput("a malformed batch listing")
        return [BatchRef.from_json(r) for r in refs]

    def _from(self, peer: str, n: int) -> int:
        """Apply the batches from `n` on that `peer` lists; how many. A bad listing or batch
        makes `peer` untrusted for that batch number."""
        applied = 0
        try:
            refs = self._refs(peer, n - 1)
        except BadInput as exc:
            self._refuse(peer, n, exc)
            return 0
        for ref in refs:
            if ref.number != self.replica.height + 1 or ref.bundle is None:
                break
            try:
                checked = self.replica.check(ref, lambda cid: self.fetch(peer, cid))
            except BadBatch as exc:
                self._refuse(peer, ref.number, exc)
                break
            except MemjitError as exc:
                log(f"batch {ref.number} from {peer} unavailable: {exc}")
                break
            self.replica.apply(checked)
            applied += 1
            log(f"applied batch {ref.number} from {peer}: {len(checked.data.facts)} claims "
                f"re-verified, state root {checked.header.state_root_after.hex()[:16]}")
            self.membership.provide_all([*checked.blocks, rendezvous(self.network, ref.number)])
        return applied

    def fetch(self, peer: str, cid: str) -> bytes:
        """Block `cid` from `peer`, else from any provider of it (each one re-hashed)."""
        try:
            return self.fetcher.fetch(peer, cid)
        except Rejected as first:
            for record in self.membership.discovery.find_providers(cid):
                url = record.endpoint.rstrip("/")
                if url in (peer, self.url):
                    continue
                try:
                    return self.fetcher.fetch(url, cid)
                except Rejected:
                    continue
            raise Rejected(f"no node served block {cid} ({first})") from None

    def _refuse(self, peer: str, number: int, exc: Exception) -> None:
        self.distrusted.add((peer, number))
        log(f"refused batch {number} from {peer}: {exc}")

    def _loop(self) -> None:
        while True:
            try:
                self.sync()
            except MemjitError as exc:
                log(f"following failed: {exc}")
            if self._stop.wait(self.poll_s):
                return
