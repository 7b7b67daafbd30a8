"""Content by CID from whichever node has it: the peers a message names first, then every
provider of the CID the DHT knows (memjit.node.membership), falling back from one to the next.

Every block goes through the node's Fetcher, which re-hashes it against the CID and bans a peer
that served wrong bytes; so a provider found in the DHT is no more trusted than the named one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from memjit.errors import MemjitError, Rejected
from memjit.node.content import Fetcher
from memjit.node.log import log


class Providers:
    """Fetches blocks by CID from the named peers, then from the DHT's providers (`find`:
    the HTTP endpoints of a CID's providers)."""

    def __init__(self, fetcher: Fetcher, find: Callable[[str], Sequence[str]]) -> None:
        self.fetcher = fetcher
        self.find = find

    def fetch(self, cid: str, named: Sequence[str] = ()) -> bytes:
        """The block `cid` (from the store if it is there); Rejected, naming why each peer
        failed, if no peer served it."""
        if self.fetcher.store.has(cid):
            return self.fetcher.store.get(cid)
        failed: list[str] = []
        asked: set[str] = set()
        for peer in self._peers(cid, named, failed):
            base = peer.rstrip("/")
            if base in asked:
                continue
            asked.add(base)
            try:
                data = self.fetcher.fetch(base, cid)
            except Rejected as exc:
                failed.append(str(exc))
                continue
            if failed:
                log(f"fetched {cid[:20]} from {base} after: {'; '.join(failed)}")
            return data
        raise Rejected(f"no provider served {cid}: " + ("; ".join(failed) or "none found"))

    def _peers(self, cid: str, named: Sequence[str], failed: list[str]) -> Iterator[str]:
        """The named peers, then (looked up only if they all failed) the DHT's providers of
        `cid`; a failed lookup goes to `failed`."""
        yield from named
        try:
            yield from self.find(cid)
        except MemjitError as exc:
            failed.append(f"DHT lookup failed: {exc}")
