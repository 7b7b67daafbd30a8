"""A follower's replica (memjit.rollup.replica) on real, proven batches: it applies an honest
chain and reopens it, and refuses a batch whose header, data, bundle or claim was tampered
with, one signed by another committee, one out of order, and one whose committee-signed,
proven facts name a claim that does not verify (a malicious sequencer). The genesis a node
pins (memjit.node.genesis) refuses forged or other genesis; both decoders are fuzzed. The
follower's choice of peers (httpx.MockTransport peers, a stand-in for the DHT): it asks the
providers of a batch before the sequencer, refuses a malformed listing, an oversized one and a
forged batch (each peer then untrusted for that batch), bans a peer that serves wrong bytes
and takes that block from another provider, applies the honest chain and provides it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memjit.errors import BadInput
from memjit.market.identity import Identity, load_or_create
from memjit.node import genesis
from memjit.node.batches import batch_blocks, ledger_refs, rendezvous
from memjit.node.content import Fetcher
from memjit.node.follower import MAX_LISTING_BYTES, Follower
from memjit.node.messages import Refused
from memjit.rollup.batcher import decode_data
from memjit.rollup.committee import members, sign
from memjit.rollup.header import decode_header
from memjit.rollup.proving import BatchProver
from memjit.rollup.replica import BadBatch, BatchRef, Replica
from memjit.runtime.store import Store
from test_batch_air import FAST
from test_batcher import Market, claims, template  # noqa: F401 (fixtures)


def proven(market: Market) -> list[BatchRef]:
    batcher = market.batcher()
    batcher.commit_pending(force=True)
    BatchProver(batcher, params=FAST).prove_pending()
    refs = ledger_refs(market.ledger, market.store, 0, 64)
    for ref in refs:  # the sequencer's publication puts the VKs in its store
        batch_blocks(market.ledger, market.store, ref)
    return refs


@pytest.fixture(scope="module")
def chain(template: Path, claims: dict[str, bytes], tmp_path_factory):  # noqa: F811
    home = tmp_path_factory.mktemp("seq") / "home"
    shutil.copytree(template, home)
    market = Market(home)
    market.submit(market.fib, claims["fib10"], 700_000, 40)
    proven(market)
    market.clock.now += 100
    market.submit(market.crc, claims["crc16"], 500_000, 30)
    market.submit(market.fib, claims["fib11"], 0, 0)
    refs = proven(market)
    committee = [m.public_key for m in members(market.ledger)]
    yield market, refs, committee
    market.ledger.close()


def replica(tmp_path: Path, committee) -> Replica:
    return Replica(tmp_path / "follower", Store(tmp_path / "follower"), committee,
                   min_security_bits=0)


def test_an_honest_chain_is_applied_and_survives_a_restart(chain, tmp_path) -> None:
    market, refs, committee = chain
    r = replica(tmp_path, committee)
    for ref in refs:
        r.apply(r.check(ref, market.store.get))
    last = market.batcher().last().header
    assert (r.height, r.head.hash, r.head.state_root_after) == (2, last.hash,
                                                                last.state_root_after)
    assert r.refs(0) == refs and r.refs(1, 1) == refs[1:]
    root = r.state.root
    r.close()
    again = replica(tmp_path, committee)
    assert (again.height, again.state.root, again.refs(0)) == (2, root, refs)
    again.close()


def served(market: Market, data: bytes):
    """A fetch serving the sequencer's store with a tampered block added; its CID."""
    return market.store.get, market.store.put(data)


def test_tampered_batches_are_refused(chain, tmp_path) -> None:
    market, refs, committee = chain
    r = replica(tmp_path, committee)
    ref = refs[0]
    header = decode_header(market.store.get(ref.header))
    data = decode_data(market.store.get(ref.data))
    bundle = bytearray(market.store.get(ref.bundle))
    bundle[len(bundle) // 2] ^= 1
    intruder = Identity.from_seed("intruder", b"\x0e" * 32)
    forged = dataclasses.replace(header, committee=(intruder.public_key,))
    forged = forged.signed(sign([intruder], forged.hash))
    scored = dataclasses.replace(data.facts[0], score=data.facts[0].score + 1)
    committee = [load_or_create(market.home, "node")]
    moved = dataclasses.replace(header, state_root_before=b"\x02" * 32)
    moved = moved.signed(sign(committee, moved.hash))  # the committee itself signs a lie
    cases = {
        "header": (dataclasses.replace(header, signature=bytes(reversed(header.signature))),
                   "signature does not verify"),
        "prev": (dataclasses.replace(header, prev_hash=b"\x01" * 32), "previous hash"),
        "committee": (forged, "genesis committee"),
        "root": (moved, "state root before is not the replica's"),
    }
    for name, (bad, reason) in cases.items():
        fetch, cid = served(market, bad.encode())
        with pytest.raises(BadBatch, match=reason):
            r.check(dataclasses.replace(ref, header=cid, hash=bad.hash), fetch)
    fetch, cid = served(market, dataclasses.replace(data, facts=(scored,)).encode())
    with pytest.raises(BadBatch, match="does not match the batch data"):
        r.check(dataclasses.replace(ref, data=cid), fetch)
    fetch, cid = served(market, bytes(bundle))
    with pytest.raises(BadBatch, match="proof does not verify"):
        r.check(dataclasses.replace(ref, bundle=cid), fetch)
    fetch, cid = served(market, market.store.get(refs[1].bundle))
    with pytest.raises(BadBatch, match="another header"):
        r.check(dataclasses.replace(ref, bundle=cid), fetch)
    with pytest.raises(BadBatch, match="not the next batch"):
        r.check(refs[1], market.store.get)
    with pytest.raises(BadBatch, match="hash its reference names"):
        r.check(dataclasses.replace(ref, hash=refs[1].hash), market.store.get)
    fetch, cid = served(market, b"garbage")
    with pytest.raises(BadBatch, match="malformed batch header"):
        r.check(dataclasses.replace(ref, header=cid), fetch)
    assert r.height == 0
    r.apply(r.check(ref, market.store.get))  # the honest batch still applies
    assert r.height == 1
    r.close()


def test_a_proven_batch_with_a_claim_that_does_not_verify_is_refused(
        template: Path, claims: dict[str, bytes], tmp_path: Path) -> None:  # noqa: F811
    home = tmp_path / "seq"
    shutil.copytree(template, home)
    market = Market(home)
    claim = bytearray(claims["fib12"])
    claim[-40] ^= 1  # inside the STARK: the digests follow the bytes, the proof breaks
    market.submit(market.fib, bytes(claim), 600_000, 10)
    refs = proven(market)  # the committee signs and the batch proof holds: facts are facts
    r = replica(tmp_path, [m.public_key for m in members(market.ledger)])
    with pytest.raises(BadBatch, match="does not verify"):
        r.check(refs[0], market.store.get)
    assert r.height == 0
    r.close()
    market.ledger.close()


def test_genesis_is_signed_pinned_and_refused_when_another(tmp_path: Path) -> None:
    seq = Identity.from_seed("seq", b"\x05" * 32)
    other = Identity.from_seed("other", b"\x06" * 32)
    g = genesis.Genesis("main", seq.public_key, (seq.public_key,)).signed(seq)
    assert genesis.Genesis.from_json(g.to_json()).check() == g
    forged = [dataclasses.replace(g, committee=(other.public_key,)),
              dataclasses.replace(g, sequencer=other.public_key),
              dataclasses.replace(g, network="other"),
              genesis.Genesis("main", seq.public_key, (seq.public_key,)).signed(other)]
    for bad in forged:
        with pytest.raises(Refused):
            genesis.Genesis.from_json(bad.to_json()).check()
    assert genesis.pin(tmp_path, g) == g and genesis.load(tmp_path) == g
    assert genesis.pin(tmp_path, g) == g
    with pytest.raises(Refused, match="not the one pinned"):
        genesis.pin(tmp_path, genesis.Genesis("main", other.public_key,
                                              (other.public_key,)).signed(other))


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=70),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(
                        ["number", "hash", "header", "data", "bundle", "network", "sequencer",
                         "committee", "signature"]), inner, max_size=9), max_leaves=12))
def test_refs_and_genesis_decoders_refuse_garbage(value) -> None:
    for decode in (BatchRef.from_json, genesis.Genesis.from_json):
        try:
            decode(value)
        except BadInput:
            pass


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


def test_the_follower_refuses_bad_peers_and_applies_the_honest_chain(chain, tmp_path):
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
