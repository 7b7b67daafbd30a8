"""The follower's choice of peers, in process (httpx.MockTransport peers, a stand-in for the
DHT): it asks the providers of a batch before the sequencer, refuses a malformed listing, an
oversized one and a forged batch (each peer then untrusted for that batch), bans a peer that
serves wrong bytes and takes that block from another provider, applies the honest chain and
provides every block of it."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import httpx

from memjit.node.batches import ledger_refs, rendezvous
from memjit.node.content import Fetcher
from memjit.node.follower import MAX_LISTING_BYTES, Follower
from memjit.rollup.batcher import decode_data
from memjit.rollup.replica import Replica
from memjit.runtime.store import Store
from test_batcher import claims, template  # noqa: F401 (fixtures)
from test_replica import chain  # noqa: F401 (fixture)

SEQ, FORGER, LIAR, HUGE, GARBLED = (f"http://{n}" for n in ("seq", "forger", "liar", "huge",
                                                             "garbled"))


class Dht:
    """Stands in for the node's Membership: every batch and block is provided by `peers`."""

    def __init__(self, peers: list[str]) -> None:
        self.discovery, self.peers, self.provided = self, peers, []

    def find_providers(self, cid: str, count: int = 20) -> list:
        return [SimpleNamespace(endpoint=p) for p in self.peers]

    def provide_all(self, cids: list[str]) -> None:
        self.provided += cids


def peers(market, asked: list[str]) -> httpx.MockTransport:
    forged: dict[str, bytes] = {}

    def listing(after: int, limit: int) -> list[dict]:
        return [r.to_json() for r in ledger_refs(market.ledger, market.store, after, limit)]

    def handle(request: httpx.Request) -> httpx.Response:
        peer, path = f"http://{request.url.host}", request.url.path
        if path == "/v1/batches":
            asked.append(peer)
            after = int(request.url.params.get("after", 0))
            limit = int(request.url.params.get("limit", 16))
            if peer == HUGE:
                return httpx.Response(200, content=b" " * (MAX_LISTING_BYTES + 1))
            if peer == GARBLED:
                return httpx.Response(200, json={"batches": [{"number": "one"}]})
            refs = listing(after, limit)
            if peer == FORGER:
                for ref in refs:  # every batch's first fact scored otherwise
                    data = decode_data(market.store.get(ref["data"]))
                    fact = dataclasses.replace(data.facts[0], score=data.facts[0].score + 1)
                    bad = dataclasses.replace(data, facts=(fact, *data.facts[1:])).encode()
                    ref["data"] = Store(market.home).put(bad)
                    forged[ref["data"]] = bad
            return httpx.Response(200, json={"height": len(listing(0, 64)), "batches": refs})
        cid = path.rsplit("/", 1)[1]
        if not market.store.has(cid):
            return httpx.Response(404)
        data = market.store.get(cid)
        return httpx.Response(200, content=b"x" + data[1:] if peer == LIAR else data)

    return httpx.MockTransport(handle)


def test_the_follower_refuses_bad_peers_and_applies_the_honest_chain(chain, tmp_path):  # noqa: F811
    market, refs, committee = chain
    asked: list[str] = []
    transport = peers(market, asked)
    home = tmp_path / "follower"
    replica = Replica(home, Store(home), committee, min_security_bits=0)
    dht = Dht([GARBLED, HUGE, FORGER, LIAR, SEQ])
    follower = Follower(replica, Fetcher(Store(home), client=httpx.Client(transport=transport)),
                        dht, lambda: SEQ, "http://me", "main",
                        client=httpx.Client(transport=transport))
    assert follower.sync() == 2
    assert (replica.height, replica.head.hash) == (2, refs[-1].hash)
    assert {(GARBLED, 1), (HUGE, 1), (FORGER, 1)} <= follower.distrusted
    assert LIAR in follower.fetcher.banned  # wrong bytes: its blocks came from others
    assert asked[0] == SEQ and asked[1:5] == [GARBLED, HUGE, FORGER, LIAR]  # height, then
    assert set(dht.provided) >= {rendezvous("main", 1), rendezvous("main", 2), refs[0].header,
                                 refs[1].bundle}
    assert follower.sync() == 0 and asked[-1] == SEQ  # the sequencer has nothing new
    replica.close()
