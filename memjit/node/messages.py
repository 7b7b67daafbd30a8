"""Signed envelopes: every state-changing message of the network (a registration, a request, a
job, a claim, a delivery, an unbond, a validator stake change) is one.

An envelope names its kind, its signer's BLS public key, a fresh nonce and an expiry (Unix
seconds), and carries a JSON body; the signer signs the domain-separated canonical JSON of all
of them (keys sorted, no spaces, ASCII, integers only: no float has two encodings), so that no
field can be changed, no message can pass for another kind, and no signature outlives its
expiry. Binary fields travel in hex. Opening an envelope checks, in order: its shape and size
(each kind has a bound), its kind, its expiry (not past, not further ahead than MAX_TTL_S, so
that the replay cache need only remember a nonce until then) and its signature; the replay
check is the receiver's (memjit.node.replay).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memjit.errors import BadInput, Rejected
from memjit.market.identity import Identity, verify

DOMAIN = b"memjit/node/envelope/v1\x00"
NONCE_BYTES = 16
PUBLIC_KEY_BYTES = 48
SIGNATURE_BYTES = 96
MAX_TTL_S = 600
"""The furthest ahead an expiry may be (and so how long a replay cache keeps a nonce)."""
CLOCK_SKEW_S = 5
MAX_BYTES = {  # the largest encoded envelope of each kind
    "registration": 8 * 1024,
    "unbond": 4 * 1024,
    "stake": 4 * 1024,
    "request": 64 * 1024,
    "job": 64 * 1024,
    "claim": 8 * 1024,  # the claim's bytes travel beside it (memjit.node.wire)
    "delivery": 256 * 1024,  # the request and up to 16 claim messages
}
KINDS = tuple(MAX_BYTES)
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class Refused(Rejected):
    """A message refused: forged, unsigned, expired, replayed or about something else."""


class Oversized(BadInput):
    """A message larger than its kind's bound."""


@dataclass(frozen=True)
class Envelope:
    """A signed message (see the module doc)."""

    kind: str
    signer: bytes
    nonce: bytes
    expires: int
    body: dict
    signature: bytes

    def signed_bytes(self) -> bytes:
        """What the signer signs: the domain, then the canonical JSON of every field."""
        return signed_bytes(self.kind, self.signer, self.nonce, self.expires, self.body)

    def to_json(self) -> dict:
        """The envelope as a JSON object (binary fields in hex)."""
        return {"kind": self.kind, "signer": self.signer.hex(), "nonce": self.nonce.hex(),
                "expires": self.expires, "body": self.body, "signature": self.signature.hex()}

    def encode(self) -> bytes:
        """The canonical JSON bytes of the envelope."""
        return canonical(self.to_json())


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, ASCII only; BadInput on a float or other type."""
    _check_plain(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _check_plain(obj: Any, depth: int = 0) -> None:
    """Only JSON objects with string keys, lists, strings, integers, booleans and null."""
    if depth > 16:
        raise BadInput("message nested too deep")
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise BadInput("message keys must be strings")
            _check_plain(value, depth + 1)
    elif isinstance(obj, list):
        for value in obj:
            _check_plain(value, depth + 1)
    elif not (obj is None or isinstance(obj, (str, bool, int))):
        raise BadInput(f"message holds a {type(obj).__name__}: only integers, strings, "
                       "booleans, null, lists and objects")


def signed_bytes(kind: str, signer: bytes, nonce: bytes, expires: int, body: dict) -> bytes:
    """The bytes an envelope's signature covers."""
    return DOMAIN + canonical({"kind": kind, "signer": signer.hex(), "nonce": nonce.hex(),
                               "expires": expires, "body": body})


def seal(identity: Identity, kind: str, body: dict, ttl_s: int = 120,
         now: Callable[[], float] = time.time) -> Envelope:
    """A fresh envelope of `kind` carrying `body`, signed by `identity`, valid `ttl_s`."""
    if kind not in KINDS:
        raise BadInput(f"unknown message kind {kind!r}")
    nonce = secrets.token_bytes(NONCE_BYTES)
    expires = int(now()) + min(int(ttl_s), MAX_TTL_S)
    signature = identity.sign(signed_bytes(kind, identity.public_key, nonce, expires, body))
    envelope = Envelope(kind, identity.public_key, nonce, expires, body, signature)
    if len(envelope.encode()) > MAX_BYTES[kind]:
        raise Oversized(f"{kind} message of {len(envelope.encode())} bytes: at most "
                        f"{MAX_BYTES[kind]}")
    return envelope


def hex_field(obj: dict, key: str, size: int | None = None, what: str = "") -> bytes:
    """A hex-encoded binary field of a message (BadInput if missing or malformed)."""
    value = obj.get(key)
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise BadInput(f"{what or 'message'}: field {key!r} must be lowercase hex")
    data = bytes.fromhex(value)
    if size is not None and len(data) != size:
        raise BadInput(f"{what or 'message'}: field {key!r} must be {size} bytes, "
                       f"not {len(data)}")
    return data


def decode(obj: Any, kind: str) -> Envelope:
    """The envelope of `kind` in a JSON object, its shape and size checked (not its signature,
    expiry or freshness: see `open_envelope`)."""
    if kind not in KINDS:
        raise BadInput(f"unknown message kind {kind!r}")
    if not isinstance(obj, dict):
        raise BadInput(f"{kind} message must be a JSON object")
    size = len(canonical(obj))
    if size > MAX_BYTES[kind]:
        raise Oversized(f"{kind} message of {size} bytes: at most {MAX_BYTES[kind]}")
    if set(obj) != {"kind", "signer", "nonce", "expires", "body", "signature"}:
        raise Refused(f"{kind} message must have exactly kind, signer, nonce, expires, body "
                      "and signature (an unsigned message is refused)")
    if obj["kind"] != kind:
        raise Refused(f"expected a {kind} message, got {obj['kind']!r}")
    expires, body = obj["expires"], obj["body"]
    if not isinstance(expires, int) or isinstance(expires, bool) or not isinstance(body, dict):
        raise BadInput(f"{kind} message: expires must be an integer and body an object")
    return Envelope(kind, hex_field(obj, "signer", PUBLIC_KEY_BYTES, kind),
                    hex_field(obj, "nonce", NONCE_BYTES, kind), expires, body,
                    hex_field(obj, "signature", SIGNATURE_BYTES, kind))


def open_envelope(obj: Any, kind: str, now: Callable[[], float] = time.time) -> Envelope:
    """The envelope of `kind` in `obj`, checked: shape and size, expiry, signature. Refused
    (or Oversized, BadInput) naming what is wrong."""
    envelope = decode(obj, kind)
    t = now()
    if envelope.expires < t:
        raise Refused(f"{kind} message expired {int(t - envelope.expires)} s ago")
    if envelope.expires > t + MAX_TTL_S + CLOCK_SKEW_S:
        raise Refused(f"{kind} message expires too far ahead (at most {MAX_TTL_S} s)")
    if not verify(envelope.signer, envelope.signed_bytes(), envelope.signature):
        raise Refused(f"{kind} message: bad signature")
    return envelope
