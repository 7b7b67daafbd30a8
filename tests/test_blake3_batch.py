"""Batched BLAKE3 kernels against the reference `blake3` package."""

import numpy as np
import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from prover.blake3_batch import grind, hash_field_rows, hash_pairs, hash_rows

LENGTHS = [0, 1, 3, 4, 5, 8, 31, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025, 2047, 2048, 2049,
           3000, 3072, 3073, 4096, 4097, 5000, 7168, 8193]


def reference_rows(data):
    return np.array([list(blake3(row.tobytes()).digest()) for row in data], np.uint8).reshape(-1, 32)


@pytest.mark.parametrize("length", LENGTHS)
def test_hash_rows_matches_reference(length):
    rng = np.random.default_rng(length)
    for n in (1, 63, 65, 130):  # full and partial tiles of 64 lanes
        data = rng.integers(0, 256, (n, length), dtype=np.uint8)
        out = hash_rows(data)
        assert out.dtype == np.uint8 and out.shape == (n, 32)
        assert (out == reference_rows(data)).all()


def test_hash_rows_edge_shapes():
    assert hash_rows(np.zeros((0, 10), np.uint8)).shape == (0, 32)
    empty = hash_rows(np.zeros((3, 0), np.uint8))
    assert all(row.tobytes() == blake3(b"").digest() for row in empty)
    data = np.random.default_rng(1).integers(0, 256, (40, 30), dtype=np.uint8)
    assert (hash_rows(data[:, 3:20]) == reference_rows(data[:, 3:20])).all()  # strided view
    with pytest.raises(ValueError):
        hash_rows(np.zeros((4, 4), np.uint32))
    with pytest.raises(ValueError):
        hash_rows(np.zeros(4, np.uint8))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 70), length=st.integers(0, 5000), seed=st.integers(0, 2**32 - 1))
def test_hash_rows_random_lengths(n, length, seed):
    data = np.random.default_rng(seed).integers(0, 256, (n, length), dtype=np.uint8)
    assert (hash_rows(data) == reference_rows(data)).all()


@pytest.mark.parametrize("w", [0, 1, 2, 15, 16, 17, 300])
def test_hash_field_rows_is_hash_of_u32_le_bytes(w):
    m = np.random.default_rng(w).integers(0, 2013265921, (70, w), dtype=np.uint64)
    expected = reference_rows(m.astype("<u4").view(np.uint8).reshape(70, 4 * w))
    assert (hash_field_rows(m) == expected).all()
    cols = np.ascontiguousarray(m.T)
    assert (hash_field_rows(cols.T) == expected).all()  # column-major view, read in place
    assert (hash_field_rows(np.asfortranarray(m)[:, ::-1][:, ::-1]) == expected).all()
    with pytest.raises(ValueError):
        hash_field_rows(m.astype(np.int64))


@pytest.mark.parametrize("m", [1, 2, 63, 64, 65, 1000])
def test_hash_pairs_matches_reference(m):
    nodes = np.random.default_rng(m).integers(0, 256, (2 * m, 32), dtype=np.uint8)
    out = hash_pairs(nodes)
    assert out.shape == (m, 32)
    for i in range(m):
        assert out[i].tobytes() == blake3(nodes[2 * i].tobytes() + nodes[2 * i + 1].tobytes()).digest()
    assert (out == hash_rows(nodes.reshape(m, 64))).all()


def test_hash_pairs_rejects_bad_shapes():
    for shape in [(3, 32), (4, 31)]:
        with pytest.raises(ValueError):
            hash_pairs(np.zeros(shape, np.uint8))
    assert hash_pairs(np.zeros((0, 32), np.uint8)).shape == (0, 32)


def pow_value(seed: bytes, nonce: int) -> int:
    return int.from_bytes(blake3(seed + nonce.to_bytes(8, "little")).digest()[:8], "little")


@pytest.mark.parametrize("bits", [0, 1, 2, 5, 8, 11])
def test_grind_finds_the_smallest_nonce(bits):
    for s in range(3):
        seed = blake3(bytes([s, bits])).digest()
        nonce = grind(seed, bits)
        assert pow_value(seed, nonce) % 2**bits == 0
        assert all(pow_value(seed, k) % 2**bits for k in range(nonce))


def test_grind_16_bits_and_rejections():
    seed = blake3(b"grind").digest()
    nonce = grind(seed, 16)
    assert pow_value(seed, nonce) % 2**16 == 0
    assert grind(seed, 16) == nonce
    with pytest.raises(ValueError):
        grind(b"short", 4)
    with pytest.raises(ValueError):
        grind(seed, 65)
