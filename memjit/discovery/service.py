"""`Discovery`: the node's synchronous handle on the DHT (node, network and provider records).

Each method runs one bounded DHT operation in the host's trio thread and blocks the calling
thread until it is done (see host.py); from asyncio, call it through `asyncio.to_thread`.
Lookups that find nothing in time return None or []; every record returned has passed the
namespace validator at the moment it is returned (signatures, expiry, key, network).
"""

from __future__ import annotations

from types import TracebackType
from typing import Awaitable, Callable, Collection, Sequence, TypeVar

import trio
from libp2p.kad_dht import KadDHT
from libp2p.peer.id import ID
from multiformats import multihash

from memjit.discovery.host import DhtHost, leaf_error
from memjit.discovery.records import (
    NETWORK_NAMESPACE,
    NODE_NAMESPACE,
    OWNER_NAMESPACE,
    InvalidRecord,
    NodeRecord,
    check_network_name,
    network_key,
    node_key,
    owner_key,
    peer_id_of,
    peer_key_of,
    sign_node_record,
)
from memjit.discovery.validator import validators
from memjit.errors import BadInput
from memjit.market.identity import Identity
from memjit.runtime.store import digest_of_cid

T = TypeVar("T")

LOOKUP_TIMEOUT = 15.0
"""Most seconds one DHT operation may take (a remote lookup on loopback takes under one)."""
PEER_QUERY_TIMEOUT = 5.0
"""Most seconds one peer's answer is waited for within a lookup."""
MAX_PROVIDERS = 20


class Discovery:
    """One node's membership in a memjit network's DHT."""

    def __init__(self, peer_seed: bytes, *, network: str,
                 sequencers: Collection[bytes] | None = None, listen_host: str = "127.0.0.1",
                 port: int = 0, timeout: float = LOOKUP_TIMEOUT) -> None:
        """`peer_seed`: 32 bytes fixing the libp2p identity (keep it to keep the peer ID);
        `sequencers`: owner keys allowed to publish the network record (None: any)."""
        self.network = check_network_name(network)
        self.timeout = timeout
        self._validators = validators(network, sequencers)
        self._host = DhtHost(peer_seed, self._validators, listen_host=listen_host, port=port)

    @property
    def peer_key(self) -> bytes:
        """This host's Ed25519 public key."""
        return self._host.peer_key

    @property
    def peer_id(self) -> str:
        """This host's libp2p peer ID (base58)."""
        return peer_id_of(self.peer_key)

    @property
    def addrs(self) -> list[str]:
        """This host's multiaddrs (…/p2p/<peer ID>): what others bootstrap from."""
        return list(self._host.addrs)

    def start(self, bootstrap: Sequence[str] = ()) -> list[str]:
        """Listen and join the network through `bootstrap`; return this host's multiaddrs."""
        return self._host.start(bootstrap)

    def close(self) -> None:
        """Leave the network: stop the host and its thread (idempotent)."""
        self._host.stop()

    def __enter__(self) -> "Discovery":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def sign_record(self, owner: Identity, *, role: str, endpoint: str,
                    ttl: int = 3600) -> NodeRecord:
        """A node record for this host, signed by `owner` and by this host's key."""
        return sign_node_record(owner, self._host.sign, self.peer_key, network=self.network,
                                role=role, endpoint=endpoint, ttl=ttl)

    def publish_node(self, record: NodeRecord) -> None:
        """Store `record` under its peer's key and its owner's key (InvalidRecord if the
        validator refuses it, or if a newer record of the same key is already stored)."""
        value = record.encode()
        self._put({node_key(record.peer_key): value, owner_key(record.owner): value})

    def find_node(self, peer_id: str) -> NodeRecord | None:
        """The node record of the peer `peer_id`, or None."""
        return self._get(NODE_NAMESPACE, node_key(peer_key_of(peer_id)))

    def find_owner(self, owner: bytes) -> NodeRecord | None:
        """The newest node record of the owner with BLS public key `owner`, or None."""
        return self._get(OWNER_NAMESPACE, owner_key(owner))

    def publish_network(self, record: NodeRecord) -> None:
        """Publish the sequencer's own record as the network's entry point."""
        self._put({network_key(record.network): record.encode()})

    def sequencer(self) -> NodeRecord | None:
        """The network's sequencer, as its network record names it, or None."""
        return self._get(NETWORK_NAMESPACE, network_key(self.network))

    def pin_sequencers(self, sequencers: Collection[bytes]) -> None:
        """From now on accept only these owner keys as the network's sequencer (the keys of
        the genesis a node learnt when it joined)."""
        self._validators[NETWORK_NAMESPACE].sequencers = frozenset(map(bytes, sequencers))

    def peers(self) -> list[str]:
        """The peer IDs in this host's routing table."""
        async def table(dht: KadDHT) -> list[str]:
            return sorted(str(peer) for peer in dht.routing_table.get_peer_ids())

        try:
            return self._call(table)
        except TimeoutError:
            return []

    def provide(self, cid: str) -> bool:
        """Announce that this node serves the block `cid` (a worker module, claim, batch)."""
        key = _content_key(cid)
        return bool(self._call(lambda dht: dht.provider_store.provide(key)))

    def find_providers(self, cid: str, count: int = MAX_PROVIDERS) -> list[NodeRecord]:
        """The node records of up to `count` providers of `cid` (providers that have no valid
        node record are left out). Fetch the block from one and re-hash it."""
        key = _content_key(cid)
        count = max(1, min(count, MAX_PROVIDERS))

        async def lookup(dht: KadDHT) -> list[NodeRecord]:
            infos = list(dht.provider_store.get_providers(key))
            for providers, _closer in await _ask_closest(
                    dht, key, lambda peer: dht.provider_store._get_providers_from_peer_with_closers(
                        peer, key)):
                infos.extend(providers)
            peers = list(dict.fromkeys(str(info.peer_id) for info in infos))[:count]
            found: dict[str, NodeRecord] = {}

            async def one(peer: str) -> None:
                try:
                    key_of_peer = node_key(peer_key_of(peer))
                except BadInput:  # not an Ed25519 peer: it cannot have a node record
                    return
                record = await self._lookup(dht, NODE_NAMESPACE, key_of_peer)
                if record is not None:
                    found[peer] = record

            async with trio.open_nursery() as nursery:
                for peer in peers:
                    nursery.start_soon(one, peer)
            return [found[p] for p in peers if p in found]

        try:
            return self._call(lookup)
        except TimeoutError:
            return []

    def _put(self, values: dict[str, bytes]) -> None:
        """Validate every (key, value) here first, so nothing is stored unless all pass;
        then put them concurrently."""
        for key, value in values.items():
            self._validators[key.split("/")[1]].check(key, value)

        async def put_one(dht: KadDHT, key: str, value: bytes) -> None:
            try:
                await dht.put_value(key, value)
            except InvalidRecord:
                raise
            except ValueError as exc:  # libp2p: "Refusing to replace newer value ..."
                raise InvalidRecord(f"record refused: {exc}") from None

        async def put(dht: KadDHT) -> None:
            async with trio.open_nursery() as nursery:
                for key, value in values.items():
                    nursery.start_soon(put_one, dht, key, value)

        try:
            self._call(put)
        except BaseExceptionGroup as group:  # trio's nursery wraps what its tasks raise
            raise leaf_error(group) from None

    def _get(self, namespace: str, key: str) -> NodeRecord | None:
        try:
            return self._call(lambda dht: self._lookup(dht, namespace, key))
        except TimeoutError:
            return None

    async def _lookup(self, dht: KadDHT, namespace: str, key: str) -> NodeRecord | None:
        """The best valid record of `key` among this node's copy and those of the k peers
        closest to the key. py-libp2p's get_value returns a local copy without asking
        anyone, which may be stale (an older seq than a record put since at other peers)."""
        key_bytes = key.encode()
        values = [v for v in await _ask_closest(
            dht, key_bytes, lambda peer: dht.value_store._get_from_peer(peer, key_bytes)) if v]
        local = dht.value_store.get(key_bytes)
        if local is not None:
            values.append(local.value)
        validator = self._validators[namespace]
        valid = []
        for value in values:
            try:
                valid.append(validator.check(key, value))
            except InvalidRecord:
                continue
        if not valid:
            return None
        return valid[validator.select(key, [record.encode() for record in valid])]

    def _call(self, fn: Callable[[KadDHT], Awaitable[T]]) -> T:
        return self._host.call(fn, self.timeout)


async def _ask_closest(dht: KadDHT, key: bytes,
                       ask: Callable[[ID], Awaitable[T]]) -> list[T]:
    """`ask(peer)` of each of the k peers closest to `key` (an iterative FIND_NODE finds
    them), all at once, each bounded; peers that fail or time out are left out."""
    peers = [peer for peer in await dht.peer_routing.find_closest_peers_network(key)
             if peer != dht.local_peer_id]
    answers: list[T] = []

    async def one(peer: ID) -> None:
        with trio.move_on_after(PEER_QUERY_TIMEOUT):
            try:
                answers.append(await ask(peer))
            except Exception:  # a peer's failure (reset stream, bad reply) is not ours
                pass

    async with trio.open_nursery() as nursery:
        for peer in peers:
            nursery.start_soon(one, peer)
    return answers


def _content_key(cid: str) -> bytes:
    """The DHT key of a block: its CID's multihash (py-libp2p peers refuse longer keys)."""
    return multihash.wrap(digest_of_cid(cid), "blake3")
