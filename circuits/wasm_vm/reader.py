"""Bounded reads for the VM's decoders (VK, statement, segment statement): every read past
the end raises the decoder's own format error, so a decoder never raises anything else."""

from __future__ import annotations

import struct


class ByteReader:
    """Reads `data` from its start; a read past the end raises `error(truncated)`."""

    def __init__(self, data: bytes, error: type[Exception], truncated: str) -> None:
        self.data, self.pos = data, 0
        self.error, self.truncated = error, truncated

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.error(self.truncated)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def count(self, fmt: str, limit: int, what: str) -> int:
        """A count field, refused above `limit`."""
        (n,) = self.unpack(fmt)
        if n > limit:
            raise self.error(f"too many {what}: {n} > {limit}")
        return n
