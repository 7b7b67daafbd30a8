"""Content store: CID format, round trips, corruption refused, model blobs with both hashes."""

from __future__ import annotations

import blake3
import pytest
import zstandard
from multiformats import CID

from memjit.errors import BadInput, MemjitError
from memjit.runtime.store import CID_PREFIX, CorruptBlock, MissingBlock, ModelRef, Store, cid_of, digest_of_cid


def test_cid_is_v1_raw_blake3_base32() -> None:
    data = b"memjit worker bytes"
    cid = cid_of(data)
    assert cid.startswith(CID_PREFIX) and cid.startswith("bafkr4i")
    parsed = CID.decode(cid)
    assert parsed.version == 1
    assert parsed.codec.code == 0x55
    assert parsed.hashfun.code == 0x1E
    assert bytes(parsed.raw_digest) == blake3.blake3(data).digest()
    assert digest_of_cid(cid) == blake3.blake3(data).digest()


def test_cid_known_value() -> None:
    # blake3("hello") = ea8f163d...; the multihash prefix 0x1e 0x20 and raw codec 0x55 fix the rest.
    assert cid_of(b"hello") == "bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4"


def test_put_get_has_round_trip(tmp_path) -> None:
    store = Store(tmp_path)
    cid = store.put(b"\x00asm\x01\x00\x00\x00")
    assert cid == cid_of(b"\x00asm\x01\x00\x00\x00")
    assert store.has(cid)
    assert store.get(cid) == b"\x00asm\x01\x00\x00\x00"
    assert (tmp_path / "blocks" / cid).is_file()
    assert store.put(b"\x00asm\x01\x00\x00\x00") == cid  # idempotent
    empty = store.put(b"")
    assert store.get(empty) == b""
    assert not list((tmp_path / "blocks").glob(".tmp-*"))  # no temp files left behind


def test_corrupted_block_refused(tmp_path) -> None:
    store = Store(tmp_path)
    cid = store.put(b"some block")
    (tmp_path / "blocks" / cid).write_bytes(b"some blocK")
    with pytest.raises(CorruptBlock) as exc:
        store.get(cid)
    assert isinstance(exc.value, MemjitError) and exc.value.exit_code == 2
    assert store.put(b"some block") == cid  # putting the true bytes again repairs it
    assert store.get(cid) == b"some block"


def test_missing_and_malformed_cids(tmp_path) -> None:
    store = Store(tmp_path)
    with pytest.raises(MissingBlock):
        store.get(cid_of(b"never stored"))
    assert not store.has(cid_of(b"never stored"))
    for bad in ["", "bafkr4i", "../../etc/passwd", "Qm" + "1" * 44, cid_of(b"x").upper()]:
        with pytest.raises(BadInput):
            store.get(bad)
    sha_cid = str(CID("base32", 1, "raw", ("sha2-256", bytes(32))))  # right shape, wrong hash
    with pytest.raises(BadInput, match="blake3"):
        store.get(sha_cid)


def test_model_blob_round_trip_and_both_hashes(tmp_path) -> None:
    store = Store(tmp_path)
    raw = bytes(range(256)) * 64
    ref = store.put_model(raw)
    assert ref.raw_blake3 == blake3.blake3(raw).hexdigest()
    assert ref.raw_size == len(raw) and ref.compressed_size < len(raw)
    compressed = store.get(ref.cid)
    assert len(compressed) == ref.compressed_size
    assert zstandard.ZstdDecompressor().decompress(compressed) == raw
    assert store.get_model(ref) == raw


def test_model_blob_checks_raw_hash(tmp_path) -> None:
    store = Store(tmp_path)
    ref = store.put_model(b"weights" * 100)
    # A consistent block (its CID matches) whose raw content is not what the ref promises.
    other = store.put_model(b"WEIGHTS" * 100)
    forged = ModelRef(other.cid, ref.raw_blake3, ref.raw_size, other.compressed_size)
    with pytest.raises(CorruptBlock, match="raw hash"):
        store.get_model(forged)
    # A corrupted compressed block is refused by its CID before decompression.
    (tmp_path / "blocks" / ref.cid).write_bytes(b"\x28\xb5\x2f\xfd garbage")
    with pytest.raises(CorruptBlock):
        store.get_model(ref)


def test_remembered_cids_still_refuse_what_they_refused() -> None:
    """CID parses are cached (memjit.runtime.store.CACHED_CIDS): a refusal is not, and a
    non-string is refused, not a TypeError of the cache."""
    cid = cid_of(b"cached")
    assert digest_of_cid(cid) == digest_of_cid(cid) == blake3.blake3(b"cached").digest()
    for bad in ("bafkr4ixyz", cid[:-2], ["not", "a", "cid"], None):
        for _ in range(2):
            with pytest.raises(BadInput):
                digest_of_cid(bad)
