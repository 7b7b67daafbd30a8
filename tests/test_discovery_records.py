"""Node records and their validator, offline: encoding, signatures, keys, and every way a
forged, tampered, expired, oversized, misfiled or replayed record is refused."""

from __future__ import annotations

import dataclasses
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from memjit.discovery.records import (
    MAX_RECORD_BYTES,
    MAX_TTL,
    NETWORK_NAMESPACE,
    NODE_NAMESPACE,
    OWNER_NAMESPACE,
    InvalidRecord,
    NodeRecord,
    network_key,
    node_key,
    owner_key,
    peer_id_of,
    peer_key_of,
    sign_node_record,
)
from memjit.discovery.validator import NodeRecordValidator, validators
from memjit.errors import BadInput
from memjit.market.identity import Identity

OWNER = Identity.from_seed("alice", b"a" * 32)
OTHER = Identity.from_seed("mallory", b"m" * 32)
PEER = create_new_key_pair(b"\x01" * 32)
PEER_KEY = PEER.public_key.to_bytes()
MALLORY_PEER = create_new_key_pair(b"\x02" * 32)


def record(owner: Identity = OWNER, peer=PEER, **fields) -> NodeRecord:
    fields = {"network": "testnet", "role": "operator", "endpoint": "http://127.0.0.1:8400",
              **fields}
    return sign_node_record(owner, peer.private_key.sign, peer.public_key.to_bytes(), **fields)


VALID = record()
VALIDATORS = validators("testnet")


def refused(namespace: str, key: str, value: bytes, match: str | None = None) -> None:
    with pytest.raises(InvalidRecord, match=match):
        VALIDATORS[namespace].validate(key, value)


def test_round_trip_and_both_signatures_verify():
    data = VALID.encode()
    assert len(data) < MAX_RECORD_BYTES
    decoded = NodeRecord.decode(data)
    assert decoded == VALID
    decoded.verify()
    assert decoded.peer_id == str(ID.from_pubkey(PEER.public_key))
    assert decoded.owner == OWNER.public_key


def test_peer_ids_match_libp2p_and_foreign_ones_are_refused():
    libp2p_id = ID.from_pubkey(PEER.public_key).to_base58()
    assert peer_id_of(PEER_KEY) == libp2p_id
    assert peer_key_of(libp2p_id) == PEER_KEY
    for bad in ("", "not-base58-0OIl", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"):
        with pytest.raises(BadInput):
            peer_key_of(bad)  # malformed, or a sha2-256 (RSA) peer ID without a key inside


def test_keys_are_short_namespaced_and_distinct():
    keys = [node_key(PEER_KEY), owner_key(OWNER.public_key), network_key("testnet")]
    assert [k.split("/")[1] for k in keys] == [NODE_NAMESPACE, OWNER_NAMESPACE, NETWORK_NAMESPACE]
    assert all(len(k.encode()) <= 50 for k in keys)  # py-libp2p peers refuse longer raw keys
    assert network_key("testnet") != network_key("othernet")


def test_a_valid_record_passes_under_its_node_and_owner_keys():
    VALIDATORS[NODE_NAMESPACE].validate(node_key(PEER_KEY), VALID.encode())
    VALIDATORS[OWNER_NAMESPACE].validate(owner_key(OWNER.public_key), VALID.encode())


def test_unsigned_records_cannot_be_encoded_nor_decoded():
    unsigned = dataclasses.replace(VALID, owner_sig=b"", peer_sig=b"")
    with pytest.raises(InvalidRecord, match="not signed"):
        unsigned.encode()
    zeroed = unsigned.body() + bytes(96 + 64)
    refused(NODE_NAMESPACE, node_key(PEER_KEY), zeroed, "signature")


def test_every_tampered_byte_is_refused():
    data = VALID.encode()
    key = node_key(PEER_KEY)
    for i in range(len(data)):
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        refused(NODE_NAMESPACE, key, bytes(tampered))


def test_forgeries_are_refused():
    # Mallory signs a record naming Alice's peer with her own owner key: the peer did not sign.
    forged = record(OTHER)
    forged = dataclasses.replace(forged, peer_sig=MALLORY_PEER.private_key.sign(b"anything"))
    refused(NODE_NAMESPACE, node_key(PEER_KEY), forged.encode(), "peer signature")
    # Mallory claims Alice as the owner of her peer: Alice's BLS signature is missing.
    claimed = dataclasses.replace(record(OTHER, MALLORY_PEER), owner=OWNER.public_key)
    refused(OWNER_NAMESPACE, owner_key(OWNER.public_key), claimed.encode(), "owner signature")
    # Signatures moved from another record.
    other = record(endpoint="http://127.0.0.1:9999")
    swapped = dataclasses.replace(VALID, owner_sig=other.owner_sig, peer_sig=other.peer_sig)
    refused(NODE_NAMESPACE, node_key(PEER_KEY), swapped.encode(), "signature")


def test_expired_and_overlong_records_are_refused():
    expired = record(now=time.time() - 2 * 3600, ttl=3600)
    refused(NODE_NAMESPACE, node_key(PEER_KEY), expired.encode(), "expired")
    overlong = record(now=time.time() + 600, ttl=MAX_TTL)
    refused(NODE_NAMESPACE, node_key(PEER_KEY), overlong.encode(), "more than")
    with pytest.raises(BadInput):
        record(ttl=MAX_TTL + 1)
    # The validator's clock decides: the valid record is refused once its time has passed.
    later = NodeRecordValidator(NODE_NAMESPACE, clock=lambda: VALID.expires)
    with pytest.raises(InvalidRecord, match="expired"):
        later.validate(node_key(PEER_KEY), VALID.encode())


def test_oversized_records_are_refused():
    big = VALID.encode() + bytes(MAX_RECORD_BYTES)
    refused(NODE_NAMESPACE, node_key(PEER_KEY), big, "exceeds")
    with pytest.raises(InvalidRecord, match="endpoint"):
        record(endpoint="http://" + "a" * 300)
    refused(NODE_NAMESPACE, node_key(PEER_KEY), VALID.encode() + b"\x00", "trailing")


def test_misfiled_records_are_refused():
    value = VALID.encode()
    refused(NODE_NAMESPACE, node_key(MALLORY_PEER.public_key.to_bytes()), value, "wrong key")
    refused(OWNER_NAMESPACE, owner_key(OTHER.public_key), value, "wrong key")
    other_network = record(network="othernet").encode()
    refused(NODE_NAMESPACE, node_key(PEER_KEY), other_network, "network")
    # The network key takes only a sequencer's record, and only of this network.
    refused(NETWORK_NAMESPACE, network_key("testnet"), value, "cannot publish")
    sequencer = record(role="sequencer").encode()
    VALIDATORS[NETWORK_NAMESPACE].validate(network_key("testnet"), sequencer)
    refused(NETWORK_NAMESPACE, network_key("othernet"), sequencer, "wrong key")


def test_pinned_sequencers_refuse_any_other_owner():
    pinned = NodeRecordValidator(NETWORK_NAMESPACE, network="testnet",
                                 sequencers=[OWNER.public_key])
    pinned.validate(network_key("testnet"), record(role="sequencer").encode())
    impostor = record(OTHER, MALLORY_PEER, role="sequencer").encode()
    with pytest.raises(InvalidRecord, match="not a sequencer"):
        pinned.validate(network_key("testnet"), impostor)


def test_select_prefers_the_newest_valid_record_so_replays_lose():
    now = time.time()
    old = record(now=now - 60, seq=1).encode()
    new = record(now=now, seq=2).encode()
    expired = record(now=now - 7200, seq=99).encode()
    forged = bytearray(record(seq=100).encode())
    forged[-1] ^= 1
    validator = VALIDATORS[NODE_NAMESPACE]
    key = node_key(PEER_KEY)
    assert validator.select(key, [old, new]) == 1
    assert validator.select(key, [new, old]) == 0
    assert validator.select(key, [expired, bytes(forged), new, old]) == 2
    # Equal seq: a deterministic choice, the same whatever the order.
    a, b = record(seq=5).encode(), record(seq=5, endpoint="http://127.0.0.1:1").encode()
    assert [a, b][validator.select(key, [a, b])] == [b, a][validator.select(key, [b, a])]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2 * MAX_RECORD_BYTES))
def test_decoder_fuzz_random_bytes(data: bytes):
    try:
        decoded = NodeRecord.decode(data)
    except InvalidRecord:
        return
    assert decoded.encode() == data  # anything accepted re-encodes to the same bytes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 400), st.binary(min_size=1, max_size=8), st.booleans())
def test_decoder_fuzz_mutated_records(at: int, patch: bytes, truncate: bool):
    data = VALID.encode()
    at %= len(data)
    mutated = data[:at] if truncate else data[:at] + patch + data[at + len(patch):]
    try:
        decoded = NodeRecord.decode(mutated)
    except InvalidRecord:
        return
    assert decoded.encode() == mutated
    if mutated != data:
        with pytest.raises(InvalidRecord):
            decoded.check_signatures()
