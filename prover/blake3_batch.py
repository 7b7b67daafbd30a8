"""Batched BLAKE3 (default 32-byte digest, unkeyed) in numba: many equal-length inputs at once.

Bit-for-bit the `blake3` package's `blake3(x).digest()`: 1024-byte chunks of 64-byte blocks,
chunk chaining values merged into the standard left-balanced parent tree, empty input included.

Speed comes from hashing a tile of `_L` (64) inputs in lockstep: a tile is a flat uint32 scratch
array whose rows (chaining value, message words, CV stack) hold one word per lane at compile-time
constant offsets, so LLVM vectorizes the whole compression across lanes (8 lanes per ymm
register) with no aliasing checks. Tiles are spread over the cores with prange.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import get_num_threads, njit, prange

from circuits.parallel import one_thread_if_small

if sys.byteorder != "little":  # words are read by viewing bytes as uint32
    raise ImportError("prover.blake3_batch assumes a little-endian host")

_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_IV0, _IV1, _IV2, _IV3, _IV4, _IV5, _IV6, _IV7 = (np.uint32(x) for x in _IV)

_CHUNK_START = 1
_CHUNK_END = 2
_PARENT = 4
_ROOT = 8
_CHUNK_LEN = 1024
_BLOCK_LEN = 64

_L = 64  # lanes: inputs hashed in lockstep per tile
# Tile rows (each _L words): 0-7 chaining value (in/out), 8-23 message, 24+ CV stack.
_CV = 0
_MSG = 8 * _L
_STACK = 24 * _L
_SMALL = 1 << 11  # batches of fewer compressions run on one thread
_GRIND_PARALLEL = 1 << 20  # grinding expected to take fewer hashes runs on one thread (~ms)


@njit(cache=True)
def _rotr(x, n):
    return np.uint32((x >> np.uint32(n)) | (x << np.uint32(32 - n)))


@njit(cache=True)
def _g(a, b, c, d, mx, my):
    a = np.uint32(a + b + mx)
    d = _rotr(d ^ a, 16)
    c = np.uint32(c + d)
    b = _rotr(b ^ c, 12)
    a = np.uint32(a + b + my)
    d = _rotr(d ^ a, 8)
    c = np.uint32(c + d)
    b = _rotr(b ^ c, 7)
    return a, b, c, d


@njit(inline="always")
def _round(v, m):
    v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15 = v
    m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15 = m
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, m0, m1)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, m2, m3)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, m4, m5)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, m6, m7)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, m8, m9)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, m10, m11)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, m12, m13)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, m14, m15)
    return (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15)


@njit(inline="always")
def _permute(m):
    return (m[2], m[6], m[3], m[10], m[7], m[0], m[4], m[13], m[1], m[11], m[12], m[5], m[9], m[14], m[15], m[8])


@njit(cache=True)
def _compress_tile(t, counter, block_len, flags):
    """For every lane: cv <- first half of compress(cv, message, counter, block_len, flags)."""
    t0 = np.uint32(counter & 0xFFFFFFFF)
    t1 = np.uint32(counter >> 32)
    for l in range(_L):
        v = (t[_CV + l], t[_CV + _L + l], t[_CV + 2 * _L + l], t[_CV + 3 * _L + l],
             t[_CV + 4 * _L + l], t[_CV + 5 * _L + l], t[_CV + 6 * _L + l], t[_CV + 7 * _L + l],
             _IV0, _IV1, _IV2, _IV3, t0, t1, block_len, flags)  # fmt: skip
        m = (t[_MSG + l], t[_MSG + _L + l], t[_MSG + 2 * _L + l], t[_MSG + 3 * _L + l],
             t[_MSG + 4 * _L + l], t[_MSG + 5 * _L + l], t[_MSG + 6 * _L + l], t[_MSG + 7 * _L + l],
             t[_MSG + 8 * _L + l], t[_MSG + 9 * _L + l], t[_MSG + 10 * _L + l], t[_MSG + 11 * _L + l],
             t[_MSG + 12 * _L + l], t[_MSG + 13 * _L + l], t[_MSG + 14 * _L + l], t[_MSG + 15 * _L + l])  # fmt: skip
        v = _round(v, m)
        m = _permute(m)
        v = _round(v, m)
        m = _permute(m)
        v = _round(v, m)
        m = _permute(m)
        v = _round(v, m)
        m = _permute(m)
        v = _round(v, m)
        m = _permute(m)
        v = _round(v, m)
        m = _permute(m)
        v = _round(v, m)
        t[_CV + l] = v[0] ^ v[8]
        t[_CV + _L + l] = v[1] ^ v[9]
        t[_CV + 2 * _L + l] = v[2] ^ v[10]
        t[_CV + 3 * _L + l] = v[3] ^ v[11]
        t[_CV + 4 * _L + l] = v[4] ^ v[12]
        t[_CV + 5 * _L + l] = v[5] ^ v[13]
        t[_CV + 6 * _L + l] = v[6] ^ v[14]
        t[_CV + 7 * _L + l] = v[7] ^ v[15]


@njit(cache=True)
def _set_iv(t):
    for l in range(_L):
        t[_CV + l] = _IV0
        t[_CV + _L + l] = _IV1
        t[_CV + 2 * _L + l] = _IV2
        t[_CV + 3 * _L + l] = _IV3
        t[_CV + 4 * _L + l] = _IV4
        t[_CV + 5 * _L + l] = _IV5
        t[_CV + 6 * _L + l] = _IV6
        t[_CV + 7 * _L + l] = _IV7


@njit(cache=True)
def _parent(t, slot, flags):
    """cv <- parent(stack[slot], cv): the message is the left CV then the right (current) CV."""
    s = _STACK + slot * 8 * _L
    for i in range(8 * _L):
        t[_MSG + i] = t[s + i]
        t[_MSG + 8 * _L + i] = t[_CV + i]
    _set_iv(t)
    _compress_tile(t, 0, np.uint32(_BLOCK_LEN), np.uint32(flags | _PARENT))


@njit(cache=True)
def _store_cv(t, out, base, cnt):
    for l in range(cnt):
        for k in range(8):
            out[base + l, k] = t[_CV + k * _L + l]


@njit(cache=True)
def _hash_tile(words, nbytes, out, base, t):
    """Hash rows base..base+_L of `words` (each `nbytes` bytes, zero-padded to whole words;
    uint32, or uint64 field elements whose low 32 bits are the word)."""
    cnt = min(_L, words.shape[0] - base)
    nchunks = max(1, (nbytes + _CHUNK_LEN - 1) // _CHUNK_LEN)
    depth = 0
    for c in range(nchunks):
        clen = min(_CHUNK_LEN, nbytes - c * _CHUNK_LEN)
        nblocks = max(1, (clen + _BLOCK_LEN - 1) // _BLOCK_LEN)
        _set_iv(t)
        for b in range(nblocks):
            blen = min(_BLOCK_LEN, clen - b * _BLOCK_LEN)
            w0 = (c * _CHUNK_LEN + b * _BLOCK_LEN) // 4
            nw = (blen + 3) // 4
            for l in range(cnt):
                for k in range(nw):
                    t[_MSG + k * _L + l] = words[base + l, w0 + k]
            for i in range(_MSG + nw * _L, _MSG + 16 * _L):
                t[i] = 0
            flags = 0
            if b == 0:
                flags |= _CHUNK_START
            if b == nblocks - 1:
                flags |= _CHUNK_END
                if nchunks == 1:
                    flags |= _ROOT
            _compress_tile(t, c, np.uint32(blen), np.uint32(flags))
        if c < nchunks - 1:
            total = c + 1
            while total & 1 == 0:
                depth -= 1
                _parent(t, depth, 0)
                total >>= 1
            s = _STACK + depth * 8 * _L
            for i in range(8 * _L):
                t[s + i] = t[_CV + i]
            depth += 1
    while depth > 0:
        depth -= 1
        _parent(t, depth, _ROOT if depth == 0 else 0)
    _store_cv(t, out, base, cnt)


@njit(cache=True, parallel=True)
def _hash_rows_kernel(words, nbytes, out, ngroups):
    n = words.shape[0]
    ntiles = (n + _L - 1) // _L
    nchunks = max(1, (nbytes + _CHUNK_LEN - 1) // _CHUNK_LEN)
    depth = 1  # the CV stack never holds more than bit_length(nchunks) entries
    while (1 << depth) <= nchunks:
        depth += 1
    ngroups = max(1, min(ntiles, ngroups))
    for g in prange(ngroups):
        t = np.empty(_STACK + depth * 8 * _L, np.uint32)
        for tile in range(g * ntiles // ngroups, (g + 1) * ntiles // ngroups):
            _hash_tile(words, nbytes, out, tile * _L, t)


@njit(cache=True)
def _pairs_tile(words, out, base, t):
    cnt = min(_L, words.shape[0] - base)
    for l in range(cnt):
        for k in range(16):
            t[_MSG + k * _L + l] = words[base + l, k]
    _set_iv(t)
    _compress_tile(t, 0, np.uint32(_BLOCK_LEN), np.uint32(_CHUNK_START | _CHUNK_END | _ROOT))
    _store_cv(t, out, base, cnt)


@njit(cache=True, parallel=True)
def _hash_pairs_kernel(words, out, ngroups):
    n = words.shape[0]
    ntiles = (n + _L - 1) // _L
    ngroups = max(1, min(ntiles, ngroups))
    for g in prange(ngroups):
        t = np.empty(_STACK, np.uint32)
        for tile in range(g * ntiles // ngroups, (g + 1) * ntiles // ngroups):
            _pairs_tile(words, out, tile * _L, t)


@njit(cache=True, parallel=True)
def _grind_kernel(seed, start, mask, ntasks, tiles_per_task):
    """Smallest nonce in [start, start + ntasks * tiles_per_task * _L) whose digest's first
    8 bytes (little-endian) are 0 under `mask`, or -1. seed: 8 words; input = seed || nonce."""
    found = np.full(ntasks, -1, np.int64)
    for task in prange(ntasks):
        t = np.empty(_STACK, np.uint32)
        for k in range(8):
            for l in range(_L):
                t[_MSG + k * _L + l] = seed[k]
        for i in range(_MSG + 10 * _L, _MSG + 16 * _L):
            t[i] = 0
        for tile in range(tiles_per_task):
            first = start + (task * tiles_per_task + tile) * _L
            for l in range(_L):
                nonce = first + l
                t[_MSG + 8 * _L + l] = np.uint32(nonce & 0xFFFFFFFF)
                t[_MSG + 9 * _L + l] = np.uint32(nonce >> 32)
            _set_iv(t)
            _compress_tile(t, 0, np.uint32(40), np.uint32(_CHUNK_START | _CHUNK_END | _ROOT))
            for l in range(_L):
                word = np.uint64(t[_CV + l]) | (np.uint64(t[_CV + _L + l]) << np.uint64(32))
                if word & mask == 0:
                    found[task] = first + l
                    break
            if found[task] >= 0:
                break
    for task in range(ntasks):
        if found[task] >= 0:
            return found[task]
    return -1


def _words(data: np.ndarray) -> np.ndarray:
    """(n, L) uint8 as (n, ceil(L/4)) little-endian uint32 words, zero-padded (a view if L%4==0)."""
    n, length = data.shape
    nw = (length + 3) // 4
    if nw == 0:
        return np.zeros((n, 0), np.uint32)
    if length % 4:
        padded = np.zeros((n, 4 * nw), np.uint8)
        padded[:, :length] = data
        data = padded
    return data.view(np.uint32)


def _as_rows(data: np.ndarray) -> np.ndarray:
    data = np.ascontiguousarray(data)
    if data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(f"expected a uint8 (n, L) array, got {data.dtype} {data.shape}")
    return data


def hash_rows(data: np.ndarray) -> np.ndarray:
    """BLAKE3 digest of every row: uint8 (n, L) -> uint8 (n, 32), row i = blake3(data[i])."""
    data = _as_rows(data)
    n, length = data.shape
    out = np.empty((n, 8), np.uint32)
    with one_thread_if_small(n * max(1, (length + _BLOCK_LEN - 1) // _BLOCK_LEN), _SMALL):
        _hash_rows_kernel(_words(data), length, out, 4 * get_num_threads())
    return out.view(np.uint8)


def hash_field_rows(matrix: np.ndarray) -> np.ndarray:
    """BLAKE3 digest of every row of a uint32 or uint64 field matrix (n, w), each value taken
    as 4 little-endian bytes (exact for values < 2^32): row i hashes 4w bytes. Reads any
    strides, e.g. columns.T, without copying."""
    matrix = np.asarray(matrix)
    if matrix.dtype not in (np.uint32, np.uint64) or matrix.ndim != 2:
        raise ValueError(f"expected a uint32/uint64 (n, w) matrix, got {matrix.dtype} {matrix.shape}")
    n, w = matrix.shape
    out = np.empty((n, 8), np.uint32)
    with one_thread_if_small(n * max(1, (4 * w + _BLOCK_LEN - 1) // _BLOCK_LEN), _SMALL):
        _hash_rows_kernel(matrix, 4 * w, out, 4 * get_num_threads())
    return out.view(np.uint8)


def hash_pairs(nodes: np.ndarray) -> np.ndarray:
    """One Merkle level: uint8 (2m, 32) -> (m, 32), out[i] = blake3(nodes[2i] || nodes[2i+1])."""
    nodes = _as_rows(nodes)
    if nodes.shape[1] != 32 or nodes.shape[0] % 2:
        raise ValueError(f"expected an even number of 32-byte nodes, got {nodes.shape}")
    m = nodes.shape[0] // 2
    out = np.empty((m, 8), np.uint32)
    with one_thread_if_small(m, _SMALL):
        _hash_pairs_kernel(nodes.reshape(m, 64).view(np.uint32), out, 4 * get_num_threads())
    return out.view(np.uint8)


def grind(seed: bytes, bits: int) -> int:
    """Smallest nonce >= 0 with blake3(seed || nonce as 8 LE bytes)[:8], read little-endian,
    divisible by 2^bits (proof-of-work for Fiat-Shamir grinding). seed is 32 bytes."""
    if len(seed) != 32:
        raise ValueError("grinding seed must be 32 bytes")
    if not 0 <= bits <= 64:
        raise ValueError("grinding bits must be in [0, 64]")
    words = np.frombuffer(bytes(seed), dtype="<u4").astype(np.uint32)
    mask = np.uint64((1 << bits) - 1)
    with one_thread_if_small(1 << bits, _GRIND_PARALLEL):
        ntasks = 4 * get_num_threads()
        start, tiles = 0, 4
        while True:
            nonce = _grind_kernel(words, start, mask, ntasks, tiles)
            if nonce >= 0:
                return int(nonce)
            start += ntasks * tiles * _L
            tiles = min(2 * tiles, 1024)
