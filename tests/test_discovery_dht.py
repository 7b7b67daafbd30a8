"""Discovery over a real DHT: five libp2p hosts on loopback, bootstrapped from one.

Records put on one host are found from another; provider lookups return node records; peers
refuse bad records sent to them (PUT_VALUE) and drop bad records served to them (GET_VALUE);
a stopped node rejoins under the same peer ID. Every host is closed in the fixture's teardown;
every DHT call is bounded by the facade's timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from memjit.discovery import Discovery, InvalidRecord, NodeRecord
from memjit.discovery.host import NetworkUnavailable
from memjit.discovery.records import MAX_RECORD_BYTES, node_key, sign_node_record
from memjit.errors import BadInput
from memjit.market.identity import Identity
from memjit.runtime.store import cid_of

NETWORK = "testnet"
HOSTS = 5


def seed(i: int) -> bytes:
    return bytes([i + 1]) * 32


def owner(name: str) -> Identity:
    return Identity.from_seed(name, name.encode().ljust(32, b"."))


@pytest.fixture(scope="module")
def net():
    nodes: list[Discovery] = []
    try:
        for i in range(HOSTS):
            node = Discovery(seed(i), network=NETWORK)
            nodes.append(node)
            node.start(nodes[0].addrs if i else ())
        yield nodes
    finally:
        for node in nodes:
            node.close()


def call(node: Discovery, fn):
    """Run `fn(dht)` (a coroutine function) in `node`'s trio thread: the tests' back door."""
    return node._host.call(fn, node.timeout)


def test_hosts_listen_on_loopback_and_know_each_other(net):
    for node in net:
        assert node.addrs and all(a.startswith("/ip4/127.0.0.1/tcp/") for a in node.addrs)
        assert all(a.endswith(f"/p2p/{node.peer_id}") for a in node.addrs)

        async def table_size(dht):
            return dht.get_routing_table_size()

        assert call(node, table_size) >= 1
    assert len({node.peer_id for node in net}) == HOSTS


def test_a_record_published_on_one_host_is_found_from_the_others(net):
    alice = owner("alice")
    record = net[1].sign_record(alice, role="operator", endpoint="http://127.0.0.1:8401")
    net[1].publish_node(record)
    assert net[4].find_node(net[1].peer_id) == record
    assert net[3].find_owner(alice.public_key) == record
    assert net[2].find_owner(owner("nobody").public_key) is None


def test_the_network_record_names_the_sequencer(net):
    record = net[0].sign_record(owner("seq"), role="sequencer", endpoint="http://127.0.0.1:8400")
    net[0].publish_network(record)
    for node in net[1:]:
        assert node.sequencer() == record
    gateway = net[2].sign_record(owner("gw"), role="gateway", endpoint="http://127.0.0.1:8402")
    with pytest.raises(InvalidRecord, match="cannot publish"):
        net[2].publish_network(gateway)


def test_providers_are_found_across_hosts_as_node_records(net):
    cid = cid_of(b"a worker module")
    records = {}
    for i in (2, 3):
        records[i] = net[i].sign_record(owner(f"op{i}"), role="operator",
                                        endpoint=f"http://127.0.0.1:{8410 + i}")
        net[i].publish_node(records[i])
        assert net[i].provide(cid)
    found = net[0].find_providers(cid)
    assert sorted(r.peer_id for r in found) == sorted(records[i].peer_id for i in (2, 3))
    assert all(r in records.values() for r in found)
    # A provider without a node record is left out; an unknown CID has no providers.
    lone = cid_of(b"a block served by a node without a record")
    assert net[4].provide(lone)
    assert net[1].find_providers(lone) == []
    assert net[1].find_providers(cid_of(b"nobody has this")) == []
    with pytest.raises(BadInput):
        net[1].find_providers("not-a-cid")


def test_the_facade_serves_asyncio_code_through_threads(net):
    """The node's case: an asyncio loop (uvicorn's) calls the facade via asyncio.to_thread,
    several calls at once, while the trio loops run in their own threads."""
    record = net[2].sign_record(owner("frank"), role="gateway", endpoint="http://127.0.0.1:8420")

    async def node_code():
        await asyncio.to_thread(net[2].publish_node, record)
        return await asyncio.gather(*(asyncio.to_thread(net[i].find_node, net[2].peer_id)
                                      for i in (0, 1, 3, 4)))

    assert asyncio.run(node_code()) == [record] * 4


def test_local_publish_refuses_expired_and_replayed_records(net):
    node = net[4]
    bob = owner("bob")
    expired = sign_node_record(bob, node._host.sign, node.peer_key, network=NETWORK,
                               role="operator", endpoint="http://127.0.0.1:1",
                               now=time.time() - 7200)
    with pytest.raises(InvalidRecord, match="expired"):
        node.publish_node(expired)
    older = node.sign_record(bob, role="operator", endpoint="http://127.0.0.1:2")
    newer = node.sign_record(bob, role="operator", endpoint="http://127.0.0.1:3")
    assert newer.seq > older.seq
    node.publish_node(newer)
    with pytest.raises(InvalidRecord):
        node.publish_node(older)
    assert net[0].find_node(node.peer_id) == newer


def test_remote_peers_refuse_bad_records(net):
    """Raw PUT_VALUEs that skip the sender's own validator: the receiver refuses each."""
    attacker, victim = net[3], net[1]
    carol = owner("carol")
    peer = create_new_key_pair(seed(40))
    peer_key = peer.public_key.to_bytes()
    key = node_key(peer_key)

    def signed(**fields) -> NodeRecord:
        fields = {"network": NETWORK, "role": "operator", "endpoint": "http://127.0.0.1:7",
                  **fields}
        return sign_node_record(carol, peer.private_key.sign, peer_key, **fields)

    current = signed(seq=10)
    tampered = bytearray(signed(seq=11).encode())
    tampered[-70] ^= 1  # inside the owner signature
    unsigned = signed(seq=12).body() + bytes(96 + 64)
    forged = dataclasses.replace(signed(seq=13), peer_sig=attacker._host.sign(b"x")).encode()
    bad = {
        "unsigned": unsigned,
        "tampered": bytes(tampered),
        "forged": forged,
        "expired": signed(seq=14, now=time.time() - 7200).encode(),
        "oversized": current.encode() + bytes(MAX_RECORD_BYTES),
        "other network": signed(seq=15, network="othernet").encode(),
        "replayed": signed(seq=9).encode(),
    }
    victim_id = ID.from_base58(victim.peer_id)

    async def stored(dht):
        found = dht.value_store.get(key.encode())
        return None if found is None else found.value

    def store_sync(value: bytes) -> bool:
        async def run(dht):
            return await dht.value_store._store_at_peer(victim_id, key.encode(), value)
        return call(attacker, run)

    assert store_sync(current.encode()) is True  # the channel works for a valid record
    assert call(victim, stored) == current.encode()
    for name, value in bad.items():
        assert store_sync(value) is False, name
        assert call(victim, stored) == current.encode(), name


def test_lookups_drop_bad_records_served_by_a_peer(net):
    """A peer that serves a forged record (bypassing its own validator) is not believed."""
    attacker = net[2]
    peer = create_new_key_pair(seed(41))
    peer_key = peer.public_key.to_bytes()
    genuine = sign_node_record(owner("dave"), peer.private_key.sign, peer_key, network=NETWORK,
                               role="operator", endpoint="http://127.0.0.1:9")
    forged = dataclasses.replace(genuine, endpoint="http://evil.example:9").encode()
    key = node_key(peer_key).encode()

    async def inject(dht):
        dht.value_store.put(key, forged)

    call(attacker, inject)
    peer_id = str(ID.from_pubkey(peer.public_key))
    for node in (net[0], net[4]):
        assert node.find_node(peer_id) is None


def test_bootstrap_errors_are_one_line_typed_errors():
    with pytest.raises(BadInput, match="bad network name"):
        Discovery(seed(50), network="Not A Name")
    with pytest.raises(BadInput, match="bad bootstrap address"):
        Discovery(seed(50), network=NETWORK).start(["/ip4/127.0.0.1/tcp/1"])
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stranger = str(ID.from_pubkey(create_new_key_pair(seed(51)).public_key))
    node = Discovery(seed(52), network=NETWORK)
    try:
        with pytest.raises(NetworkUnavailable, match="no bootstrap peer answered"):
            node.start([f"/ip4/127.0.0.1/tcp/{port}/p2p/{stranger}"])
    finally:
        node.close()
    with pytest.raises(NetworkUnavailable, match="not running"):
        node.find_node(stranger)


def test_a_stopped_node_rejoins_with_the_same_peer_id(net):
    erin = owner("erin")
    before = net[3].sign_record(erin, role="operator", endpoint="http://127.0.0.1:8500")
    net[3].publish_node(before)
    peer_id = net[3].peer_id
    net[3].close()
    net[3] = restarted = Discovery(seed(3), network=NETWORK)  # the fixture closes it
    addrs = restarted.start(net[0].addrs)
    assert restarted.peer_id == peer_id and addrs
    after = restarted.sign_record(erin, role="operator", endpoint="http://127.0.0.1:8501")
    restarted.publish_node(after)
    assert net[1].find_node(peer_id) == after
    assert net[4].find_owner(erin.public_key) == after
    # The restarted node starts with an empty store: its lookups go to the network.
    assert restarted.find_node(net[1].peer_id) is not None


def test_a_host_pinned_to_its_genesis_sequencer_refuses_a_rogue_one(net):
    seq, rogue = owner("genesis-seq"), owner("rogue")
    genuine = net[0].sign_record(seq, role="sequencer", endpoint="http://127.0.0.1:8410")
    net[0].publish_network(genuine)
    net[4].pin_sequencers([seq.public_key])  # as a node does once it pinned its genesis
    impostor = net[3].sign_record(rogue, role="sequencer", endpoint="http://127.0.0.1:8499")
    net[3].publish_network(impostor)  # newer: unpinned hosts take it
    assert net[2].sequencer() == impostor
    assert net[4].sequencer() == genuine
    with pytest.raises(InvalidRecord):
        net[4].publish_network(impostor)
    assert net[4].peers() and all(p in {n.peer_id for n in net[:4]} for p in net[4].peers())
