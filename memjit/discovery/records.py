"""Signed node records: who runs a node, where its HTTP API is, and which libp2p peer it is.

A node record binds four things: a libp2p peer (its Ed25519 public key, from which the peer ID
follows), the node's HTTP endpoint, its role and the owner's BLS public key, for one network.
It is signed twice over the same body, so neither party can be impersonated:

- by the owner's BLS key (milagro, the POP ciphersuite py-ecc's identity module also uses):
  the owner vouches for this peer and endpoint;
- by the peer's Ed25519 key: the peer accepts this owner, so a record naming someone else's
  peer ID cannot be made.

`seq` orders the records of one key (the newest wins, an older one is a replay); `expires`
(Unix seconds) bounds how long a copy can be replayed, and may not lie more than MAX_TTL in
the future. A network record is the sequencer's own node record, stored under the network's
well-known key: a node that knows only bootstrap addresses learns its sequencer from it.

Encoding (big-endian, every field bounded, nothing after the last):
  magic "MJNR" | version u8 | role u8 | seq u64 | expires u64 | network u8-length + ASCII |
  peer key 32 | owner key 48 | endpoint u16-length + ASCII | owner sig 96 | peer sig 64
"""

from __future__ import annotations

import base64
import dataclasses
import re
import struct
import time
from typing import Callable

import blake3
import milagro_bls_binding as bls
from multiformats import multibase

from memjit.errors import BadInput, Rejected
from memjit.market.identity import SECRET_KEY_BYTES, Identity

MAGIC = b"MJNR"
VERSION = 1
ROLES = ("sequencer", "operator", "gateway", "follower")
MAX_TTL = 24 * 3600
"""Longest validity a record may claim (seconds): bounds how long a stolen copy replays."""
MAX_RECORD_BYTES = 1024
MAX_ENDPOINT_BYTES = 256
PEER_KEY_BYTES = 32  # Ed25519 public key
OWNER_KEY_BYTES = 48  # compressed BLS12-381 G1 point
OWNER_SIG_BYTES = 96
PEER_SIG_BYTES = 64
_NETWORK = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_ENDPOINT = re.compile(r"https?://[\x21-\x7e]{1,%d}" % (MAX_ENDPOINT_BYTES - 8))
_HEAD = struct.Struct(">4sBBQQ")
_DOMAIN = b"memjit/discovery/node-record/v1\x00"
# A libp2p peer ID of an Ed25519 key: identity multihash (0x00, length 36) of the protobuf
# PublicKey {Type: Ed25519 (1), Data: 32 bytes}.
_PEER_ID_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])

NODE_NAMESPACE = "mjnode"  # /mjnode/<h(peer key)>: a node's record, by peer
OWNER_NAMESPACE = "mjowner"  # /mjowner/<h(owner key)>: the newest record of an owner's nodes
NETWORK_NAMESPACE = "mjnet"  # /mjnet/<h(network)>: the sequencer's record, the network's entry


class InvalidRecord(Rejected):
    """A record that is malformed, unsigned, tampered with, expired or under the wrong key."""


@dataclasses.dataclass(frozen=True)
class NodeRecord:
    """One node's signed announcement (see the module docstring for what binds what)."""

    network: str
    role: str
    peer_key: bytes  # the libp2p host's Ed25519 public key (32 bytes)
    owner: bytes  # the owner's BLS public key (48 bytes)
    endpoint: str  # the node's HTTP API, e.g. http://127.0.0.1:8400
    seq: int
    expires: int  # Unix seconds
    owner_sig: bytes = b""
    peer_sig: bytes = b""

    @property
    def peer_id(self) -> str:
        """The libp2p peer ID (base58) of `peer_key`."""
        return peer_id_of(self.peer_key)

    def body(self) -> bytes:
        """The signed part of the encoding: every field but the two signatures."""
        _check_fields(self)
        network, endpoint = self.network.encode(), self.endpoint.encode()
        return b"".join((
            _HEAD.pack(MAGIC, VERSION, ROLES.index(self.role), self.seq, self.expires),
            bytes([len(network)]), network, self.peer_key, self.owner,
            struct.pack(">H", len(endpoint)), endpoint,
        ))

    def encode(self) -> bytes:
        """The record's bytes, as stored in the DHT."""
        if len(self.owner_sig) != OWNER_SIG_BYTES or len(self.peer_sig) != PEER_SIG_BYTES:
            raise InvalidRecord("node record is not signed")
        return self.body() + self.owner_sig + self.peer_sig

    @classmethod
    def decode(cls, data: bytes) -> "NodeRecord":
        """Parse a record's bytes (strict: bounds, exact length); signatures are not checked."""
        data = bytes(data)
        if len(data) > MAX_RECORD_BYTES:
            raise InvalidRecord(f"node record of {len(data)} bytes exceeds {MAX_RECORD_BYTES}")
        try:
            magic, version, role, seq, expires = _HEAD.unpack_from(data, 0)
            at = _HEAD.size
            network, at = _take(data, at + 1, data[at])
            peer_key, at = _take(data, at, PEER_KEY_BYTES)
            owner, at = _take(data, at, OWNER_KEY_BYTES)
            (n_endpoint,) = struct.unpack_from(">H", data, at)
            endpoint, at = _take(data, at + 2, n_endpoint)
            owner_sig, at = _take(data, at, OWNER_SIG_BYTES)
            peer_sig, at = _take(data, at, PEER_SIG_BYTES)
        except (struct.error, IndexError):
            raise InvalidRecord("truncated node record") from None
        if magic != MAGIC or version != VERSION:
            raise InvalidRecord("not a node record of version %d" % VERSION)
        if at != len(data):
            raise InvalidRecord("trailing bytes after the node record")
        if role >= len(ROLES):
            raise InvalidRecord(f"unknown role {role}")
        try:
            record = cls(network.decode("ascii"), ROLES[role], peer_key, owner,
                         endpoint.decode("ascii"), seq, expires, owner_sig, peer_sig)
        except UnicodeDecodeError:
            raise InvalidRecord("node record text is not ASCII") from None
        _check_fields(record)
        return record

    def verify(self, now: float | None = None) -> None:
        """Refuse (InvalidRecord) a record that is badly signed, expired, or valid too long."""
        self.check_time(now)
        self.check_signatures()

    def check_time(self, now: float | None = None) -> None:
        """Refuse a record that has expired at `now`, or claims more than MAX_TTL from it."""
        now = time.time() if now is None else now
        if self.expires <= now:
            raise InvalidRecord(f"node record of {self.peer_id} expired")
        if self.expires > now + MAX_TTL:
            raise InvalidRecord(f"node record of {self.peer_id} claims more than {MAX_TTL} s")

    def check_signatures(self) -> None:
        """Refuse a record that the owner's and the peer's keys did not both sign."""
        message = _DOMAIN + self.body()
        if not bls.Verify(self.owner, message, self.owner_sig):
            raise InvalidRecord(f"bad owner signature on the node record of {self.peer_id}")
        if not _peer_verify(self.peer_key, message, self.peer_sig):
            raise InvalidRecord(f"bad peer signature on the node record of {self.peer_id}")


def sign_node_record(owner: Identity, peer_sign: Callable[[bytes], bytes], peer_key: bytes, *,
                     network: str, role: str, endpoint: str, ttl: int = 3600,
                     seq: int | None = None, now: float | None = None) -> NodeRecord:
    """A node record signed by `owner` and by the peer (`peer_sign(message) -> 64 bytes`).

    `seq` defaults to the current time in microseconds, so a later record supersedes an
    earlier one without the node having to remember a counter.
    """
    now = time.time() if now is None else now
    if not 0 < ttl <= MAX_TTL:
        raise BadInput(f"record ttl must be 1..{MAX_TTL} seconds, got {ttl}")
    record = NodeRecord(network, role, bytes(peer_key), owner.public_key, endpoint,
                        int(now * 1e6) if seq is None else seq, int(now) + ttl)
    message = _DOMAIN + record.body()
    secret = owner.secret_key.to_bytes(SECRET_KEY_BYTES, "big")
    return dataclasses.replace(record, owner_sig=bls.Sign(secret, message),
                               peer_sig=bytes(peer_sign(message)))


def check_network_name(network: str) -> str:
    """`network` if it is a valid network name (1-32 of a-z, 0-9, '-'), else BadInput."""
    if not _NETWORK.fullmatch(network):
        raise BadInput(f"bad network name {network!r}: use 1-32 of a-z, 0-9 and '-'")
    return network


def peer_id_of(peer_key: bytes) -> str:
    """The base58 libp2p peer ID of an Ed25519 public key."""
    return multibase.encode(_PEER_ID_PREFIX + bytes(peer_key), "base58btc")[1:]


def peer_key_of(peer_id: str) -> bytes:
    """The Ed25519 public key inside a peer ID (BadInput if it is not an Ed25519 peer ID)."""
    try:
        raw = multibase.decode("z" + peer_id)
    except Exception:  # multiformats raises assorted ValueError/KeyError subclasses
        raise BadInput(f"malformed peer ID {peer_id!r}") from None
    if len(raw) != len(_PEER_ID_PREFIX) + PEER_KEY_BYTES or not raw.startswith(_PEER_ID_PREFIX):
        raise BadInput(f"peer ID {peer_id!r} is not an Ed25519 peer ID")
    return raw[len(_PEER_ID_PREFIX):]


def node_key(peer_key: bytes) -> str:
    """The DHT key of a peer's node record."""
    return _key(NODE_NAMESPACE, b"peer", peer_key)


def owner_key(owner: bytes) -> str:
    """The DHT key of the newest node record of an owner."""
    return _key(OWNER_NAMESPACE, b"owner", owner)


def network_key(network: str) -> str:
    """The well-known DHT key under which a network's sequencer publishes its record."""
    return _key(NETWORK_NAMESPACE, b"network", network.encode())


def _key(namespace: str, tag: bytes, data: bytes) -> str:
    # py-libp2p peers refuse a lookup key over 50 bytes that is not a multihash: 20 bytes of
    # blake3 in base32 (32 characters) keep every key under 42 bytes.
    digest = blake3.blake3(tag + b"\x00" + bytes(data)).digest(20)
    return f"/{namespace}/{base64.b32encode(digest).decode().lower()}"


def _take(data: bytes, at: int, n: int) -> tuple[bytes, int]:
    if at + n > len(data):
        raise IndexError
    return data[at:at + n], at + n


def _check_fields(record: NodeRecord) -> None:
    """Refuse out-of-range fields (so encode never builds what decode refuses)."""
    if not _NETWORK.fullmatch(record.network):
        raise InvalidRecord(f"bad network name {record.network!r}")
    if record.role not in ROLES:
        raise InvalidRecord(f"unknown role {record.role!r}")
    if len(record.peer_key) != PEER_KEY_BYTES or len(record.owner) != OWNER_KEY_BYTES:
        raise InvalidRecord("bad key length in node record")
    if not _ENDPOINT.fullmatch(record.endpoint):
        raise InvalidRecord(f"bad endpoint {record.endpoint[:64]!r}: expected an http(s) URL")
    if not (0 <= record.seq < 2**64 and 0 <= record.expires < 2**64):
        raise InvalidRecord("seq or expiry out of range")


def _peer_verify(peer_key: bytes, message: bytes, signature: bytes) -> bool:
    from libp2p.crypto.ed25519 import Ed25519PublicKey  # only the validator pays for libp2p

    try:
        return bool(Ed25519PublicKey.from_bytes(peer_key).verify(message, signature))
    except Exception:  # a malformed point or signature: libnacl/cryptography raise their own
        return False
