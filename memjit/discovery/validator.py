"""The DHT's validators for memjit's namespaces: every put, store and get runs them.

py-libp2p calls a namespace's validator on a local put, on a remote PUT_VALUE before storing
it, and on every record a GET_VALUE returns, and its `select` when two records of a key meet
(the older one is refused on store, and dropped on get). So an unsigned, tampered, expired,
oversized or misfiled record never enters an honest node's store, and a replayed record with
an older `seq` never replaces a newer one.
"""

from __future__ import annotations

import functools
import time
from typing import Callable, Collection

from libp2p.records.validator import Validator

from memjit.discovery.records import (
    NETWORK_NAMESPACE,
    NODE_NAMESPACE,
    OWNER_NAMESPACE,
    InvalidRecord,
    NodeRecord,
    network_key,
    node_key,
    owner_key,
)


@functools.lru_cache(maxsize=4096)
def signed_record(value: bytes) -> NodeRecord:
    """Decode `value` and check both signatures, once per distinct record: a lookup meets
    the same bytes from many peers, and `select` re-checks them (BLS costs milliseconds)."""
    record = NodeRecord.decode(value)
    record.check_signatures()
    return record


class NodeRecordValidator(Validator):
    """Validates node records filed under one namespace (node, owner or network)."""

    def __init__(self, namespace: str, *, network: str | None = None,
                 sequencers: Collection[bytes] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """`network`: accept only this network's records; `sequencers`: for the network
        namespace, the owner keys allowed to name themselves sequencer (None: any)."""
        if namespace not in (NODE_NAMESPACE, OWNER_NAMESPACE, NETWORK_NAMESPACE):
            raise ValueError(f"not a memjit namespace: {namespace!r}")
        self.namespace = namespace
        self.network = network
        self.sequencers = None if sequencers is None else frozenset(map(bytes, sequencers))
        self.clock = clock

    def check(self, key: str, value: bytes) -> NodeRecord:
        """The record in `value` if it is valid under `key`, else InvalidRecord."""
        record = signed_record(bytes(value))
        record.check_time(self.clock())
        if self.network is not None and record.network != self.network:
            raise InvalidRecord(f"record of network {record.network!r}, not {self.network!r}")
        if self.namespace == NODE_NAMESPACE:
            expected = node_key(record.peer_key)
        elif self.namespace == OWNER_NAMESPACE:
            expected = owner_key(record.owner)
        else:
            if record.role != "sequencer":
                raise InvalidRecord(f"a {record.role} cannot publish the network record")
            if self.sequencers is not None and record.owner not in self.sequencers:
                raise InvalidRecord("network record signed by an owner that is not a sequencer")
            expected = network_key(record.network)
        if key != expected:
            raise InvalidRecord(f"record of {record.peer_id} filed under the wrong key")
        return record

    def validate(self, key: str, value: bytes) -> None:
        """libp2p's hook: raise on an invalid record."""
        self.check(key, value)

    def select(self, key: str, values: list[bytes]) -> int:
        """libp2p's hook: the index of the best record (highest seq, then later expiry,
        then the larger encoding, so every node picks the same one); invalid ones lose."""
        best, best_rank = 0, None
        for i, value in enumerate(values):
            try:
                record = self.check(key, value)
            except InvalidRecord:
                continue
            rank = (record.seq, record.expires, bytes(value))
            if best_rank is None or rank > best_rank:
                best, best_rank = i, rank
        return best


def validators(network: str, sequencers: Collection[bytes] | None = None,
               clock: Callable[[], float] = time.time) -> dict[str, NodeRecordValidator]:
    """The validator of each memjit namespace, for one network."""
    return {ns: NodeRecordValidator(ns, network=network, sequencers=sequencers, clock=clock)
            for ns in (NODE_NAMESPACE, OWNER_NAMESPACE, NETWORK_NAMESPACE)}
