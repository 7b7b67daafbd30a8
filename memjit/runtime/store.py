"""Content-addressed block store: workers, models and other blobs addressed by their CID.

A CID here is always CIDv1, raw codec (0x55), blake3-256 multihash (0x1e), in base32: a
string starting with `bafkr4i`. Blocks live under `<home>/blocks/<cid>`; writes are atomic
(temp file, fsync, rename) and every read re-hashes, so a corrupted block is refused rather
than served. Model weights are stored zstd-compressed; their ModelRef keeps both the CID of
the compressed bytes and the blake3 of the raw weights, and loading checks both.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import blake3
import zstandard
from multiformats import CID, multihash

from memjit.errors import BadInput

CID_PREFIX = "bafkr4i"  # base32 CIDv1 + raw codec + blake3-256 multihash
ZSTD_LEVEL = 9
CACHED_CIDS = 4096
"""CIDs whose parse and format are remembered (multiformats takes ~1 ms a CID, and every
store lookup parses one: a request's task table, VKs and modules); both are pure functions,
a refused CID is not remembered."""


class MissingBlock(BadInput):
    """No block with this CID in the store."""


class CorruptBlock(BadInput):
    """A stored block no longer matches its CID (or a model blob its raw-weights hash)."""


def cid_of(data: bytes) -> str:
    """The CID of `data`: CIDv1, raw codec, blake3-256 multihash, base32."""
    return cid_of_digest(blake3.blake3(data).digest())


def cid_of_digest(digest: bytes) -> str:
    """The CID of the block whose blake3-256 digest is `digest` (e.g. a VK named by a fact)."""
    return _cid_of_digest(bytes(digest))


@lru_cache(maxsize=CACHED_CIDS)
def _cid_of_digest(digest: bytes) -> str:
    return str(CID("base32", 1, "raw", multihash.wrap(digest, "blake3")))


def digest_of_cid(cid: str) -> bytes:
    """The 32-byte blake3 digest inside `cid`, refusing anything but a memjit CID."""
    if not isinstance(cid, str):
        raise BadInput(f"malformed CID {cid!r}")
    return _digest_of_cid(cid)


@lru_cache(maxsize=CACHED_CIDS)
def _digest_of_cid(cid: str) -> bytes:
    try:
        parsed = CID.decode(cid)
    except Exception:  # multiformats raises assorted ValueError/KeyError subclasses
        raise BadInput(f"malformed CID {cid!r}") from None
    if parsed.version != 1 or parsed.codec.name != "raw" or parsed.hashfun.name != "blake3":
        raise BadInput(f"unsupported CID {cid!r}: expected CIDv1, raw codec, blake3-256")
    digest = bytes(parsed.raw_digest)
    if len(digest) != 32 or str(parsed) != cid:
        raise BadInput(f"unsupported CID {cid!r}: expected a 32-byte blake3 digest in base32")
    return digest


@dataclass(frozen=True)
class ModelRef:
    """A stored model blob: CID of the compressed bytes plus the hash and size of the raw ones."""

    cid: str  # CID of the zstd-compressed blob as stored
    raw_blake3: str  # blake3-256 hex digest of the raw (uncompressed) weights
    raw_size: int
    compressed_size: int


class Store:
    """A content-addressed store rooted at `home` (blocks under `home/blocks/`)."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.blocks = self.home / "blocks"

    def _path(self, cid: str) -> Path:
        digest_of_cid(cid)  # validates: a CID string never escapes the blocks directory
        return self.blocks / cid

    def put(self, data: bytes) -> str:
        """Store `data` (atomically) and return its CID."""
        data = bytes(data)
        cid = cid_of(data)
        path = self._path(cid)
        self.blocks.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.blocks, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return cid

    def get(self, cid: str) -> bytes:
        """The block with this CID, re-hashed: raises CorruptBlock if it no longer matches."""
        digest = digest_of_cid(cid)
        try:
            data = self._path(cid).read_bytes()
        except FileNotFoundError:
            raise MissingBlock(f"no block {cid} in {self.blocks}") from None
        except OSError as exc:
            raise BadInput(f"cannot read block {cid}: {exc.strerror or exc}") from None
        if blake3.blake3(data).digest() != digest:
            raise CorruptBlock(f"block {cid} is corrupted: its content no longer matches its CID")
        return data

    def has(self, cid: str) -> bool:
        """Whether a block with this CID is stored (without re-hashing it)."""
        return self._path(cid).is_file()

    def put_model(self, raw: bytes) -> ModelRef:
        """Store model weights zstd-compressed; return the reference that loads and checks them."""
        raw = bytes(raw)
        compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)
        cid = self.put(compressed)
        return ModelRef(cid, blake3.blake3(raw).hexdigest(), len(raw), len(compressed))

    def get_model(self, ref: ModelRef) -> bytes:
        """The raw weights of `ref`, checking the compressed block's CID and the raw hash."""
        compressed = self.get(ref.cid)
        try:
            raw = zstandard.ZstdDecompressor().decompress(compressed, max_output_size=ref.raw_size)
        except zstandard.ZstdError as exc:
            raise CorruptBlock(f"model {ref.cid} does not decompress: {exc}") from None
        if len(raw) != ref.raw_size or blake3.blake3(raw).hexdigest() != ref.raw_blake3:
            raise CorruptBlock(f"model {ref.cid} does not match its raw hash {ref.raw_blake3}")
        return raw
