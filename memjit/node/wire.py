"""Binary frames: a signed message (memjit.node.messages) with its attachments, the bytes it
names by digest (claims), sent as one `application/octet-stream` body between operator,
gateway and sequencer instead of hex inside JSON.

A claim message names its claim by BLAKE3 digest and size (`claim_blake3`, `claim_size`), so
the operator's signature covers the claim's bytes without carrying them; a delivery carries
the claim messages, and so binds every claim through them. The frame:

```
"MJW1" | u32 n | n bytes: the message's JSON | u16 k | k × (u32 m | m bytes: an attachment)
```

(big-endian). Unpacking bounds every length (the message by its kind's bound, each attachment
by MAX_ATTACHMENT_BYTES, at most MAX_ATTACHMENTS) and indexes the attachments by their BLAKE3
digest, so a message can only be matched with the bytes its signer named.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import blake3

from memjit.errors import BadInput
from memjit.node.messages import MAX_BYTES, Oversized, canonical

MAGIC = b"MJW1"
MEDIA_TYPE = "application/octet-stream"
MAX_ATTACHMENTS = 16
MAX_ATTACHMENT_BYTES = 4 * 1024 * 1024
"""The largest claim a frame carries."""


@dataclass(frozen=True)
class Frame:
    """An unpacked frame: the message (a JSON object, not yet opened) and the attachments by
    hex BLAKE3 digest."""

    message: object
    attachments: Mapping[str, bytes]


def digest(data: bytes) -> str:
    """The hex BLAKE3 digest that names an attachment."""
    return blake3.blake3(data).hexdigest()


def pack(message: dict, attachments: Sequence[bytes] = ()) -> bytes:
    """The frame of `message` (a JSON object) and its attachments."""
    if len(attachments) > MAX_ATTACHMENTS:
        raise Oversized(f"{len(attachments)} attachments: at most {MAX_ATTACHMENTS}")
    head = canonical(message)
    parts = [MAGIC, struct.pack(">I", len(head)), head, struct.pack(">H", len(attachments))]
    for blob in attachments:
        if len(blob) > MAX_ATTACHMENT_BYTES:
            raise Oversized(f"attachment of {len(blob)} bytes: at most {MAX_ATTACHMENT_BYTES}")
        parts += [struct.pack(">I", len(blob)), bytes(blob)]
    return b"".join(parts)


def unpack(data: bytes, kind: str) -> Frame:
    """The message and attachments of a frame carrying a `kind` message (BadInput if malformed,
    Oversized past a bound)."""
    view = memoryview(data)
    if len(data) > MAX_BYTES["delivery"] + MAX_ATTACHMENTS * (MAX_ATTACHMENT_BYTES + 4):
        raise Oversized(f"frame of {len(data)} bytes")
    if bytes(view[:4]) != MAGIC:
        raise BadInput(f"{kind} frame: bad magic (expected {MAGIC.decode()})")
    at = 4
    size, at = _length(view, at, 4, MAX_BYTES[kind], kind)
    try:
        message = json.loads(bytes(view[at:at + size]))
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"{kind} frame: its message is not JSON") from None
    at += size
    count, at = _length(view, at, 2, MAX_ATTACHMENTS, kind)
    attachments = {}
    for _ in range(count):
        size, at = _length(view, at, 4, MAX_ATTACHMENT_BYTES, kind)
        blob = bytes(view[at:at + size])
        attachments[digest(blob)] = blob
        at += size
    if at != len(data):
        raise BadInput(f"{kind} frame: {len(data) - at} bytes past its end")
    return Frame(message, attachments)


def _length(view: memoryview, at: int, width: int, bound: int, kind: str) -> tuple[int, int]:
    """A big-endian length field at `at` (checked against `bound` and what follows it)."""
    if at + width > len(view):
        raise BadInput(f"{kind} frame truncated")
    value = int.from_bytes(view[at:at + width], "big")
    if value > bound:
        raise Oversized(f"{kind} frame: a part of {value} bytes, at most {bound}")
    if at + width + (value if width == 4 else 0) > len(view):
        raise BadInput(f"{kind} frame truncated")
    return value, at + width
