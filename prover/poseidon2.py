"""Poseidon2 (BabyBear, width 16) compiled with numba: many permutations at once.

The same permutation as `circuits.poseidon2` (the reference, numpy; the tests check that both
agree), for the state tree and the batch prover's witness. States are processed in tiles of
`_L` lanes in lockstep: a tile is a (16, _L) scratch array, so every round is a loop over lanes at
a compile-time constant stride that LLVM vectorizes; tiles are spread over the cores with prange.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from circuits.field import P
from circuits.parallel import one_thread_if_small
from circuits.poseidon2 import (DIGEST, INTERNAL_DIAG, RC_EXTERNAL_FINAL, RC_EXTERNAL_INITIAL,
                                RC_INTERNAL, WIDTH)

_L = 64
_P = np.uint64(P)
_M32 = np.uint64(0xFFFFFFFF)
_PINV = np.uint64((-pow(P, -1, 1 << 32)) % (1 << 32))  # -p^-1 mod 2^32 (Montgomery, R = 2^32)
_R2 = np.uint64((1 << 64) % P)  # R^2 mod p: multiplying by it enters Montgomery form


def _mont(values) -> np.ndarray:
    """Constants in Montgomery form (x R mod p)."""
    return np.array([int(v) * (1 << 32) % P for v in np.ravel(values)], dtype=np.uint64)


_RC_INIT = _mont(RC_EXTERNAL_INITIAL)
_RC_FINAL = _mont(RC_EXTERNAL_FINAL)
_RC_INT = _mont(RC_INTERNAL)
_DIAG = _mont(INTERNAL_DIAG)
_SMALL = 1 << 10  # fewer states run on one thread


# Every value below is a reduced element in Montgomery form, one uint64 per lane with the top 33
# bits zero: the masks let LLVM multiply 32 x 32 -> 64 bits in vector registers (vpmuludq), and
# the conditional subtractions vectorize, where a remainder by p would not.

@njit(inline="always")
def _add(a, b):
    s = a + b
    return s - _P * (s >= _P)


@njit(inline="always")
def _mul(a, b):
    """Montgomery product a b / 2^32 mod p."""
    t = (a & _M32) * (b & _M32)
    m = ((t & _M32) * _PINV) & _M32
    u = (t + m * _P) >> np.uint64(32)
    return u - _P * (u >= _P)


@njit(inline="always")
def _s7(x):
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    return _mul(_mul(x3, x3), x)


@njit(inline="always")
def _ext(t):
    """External layer on a flat (16 x _L) tile, in place: M4 per block, then the column sums."""
    for lane in range(_L):
        s0 = np.uint64(0)
        s1 = np.uint64(0)
        s2 = np.uint64(0)
        s3 = np.uint64(0)
        for b in range(4):
            o = 4 * b * _L + lane
            a0 = t[o]
            a1 = t[o + _L]
            a2 = t[o + 2 * _L]
            a3 = t[o + 3 * _L]
            t01 = _add(a0, a1)
            t23 = _add(a2, a3)
            t0123 = _add(t01, t23)
            t01123 = _add(t0123, a1)
            t01233 = _add(t0123, a3)
            y3 = _add(t01233, _add(a0, a0))
            y1 = _add(t01123, _add(a2, a2))
            y0 = _add(t01123, t01)
            y2 = _add(t01233, t23)
            t[o] = y0
            t[o + _L] = y1
            t[o + 2 * _L] = y2
            t[o + 3 * _L] = y3
            s0 = _add(s0, y0)
            s1 = _add(s1, y1)
            s2 = _add(s2, y2)
            s3 = _add(s3, y3)
        for b in range(4):
            o = 4 * b * _L + lane
            t[o] = _add(t[o], s0)
            t[o + _L] = _add(t[o + _L], s1)
            t[o + 2 * _L] = _add(t[o + 2 * _L], s2)
            t[o + 3 * _L] = _add(t[o + 3 * _L], s3)


@njit(inline="always")
def _full(t, rc, r):
    for i in range(WIDTH):
        c = rc[r * WIDTH + i]
        for lane in range(_L):
            t[i * _L + lane] = _s7(_add(t[i * _L + lane], c))
    _ext(t)


@njit(inline="always")
def _permute_tile(t, s, rc_init, rc_int, rc_final, diag):
    _ext(t)
    for r in range(4):
        _full(t, rc_init, r)
    for r in range(13):
        c = rc_int[r]
        for lane in range(_L):
            t[lane] = _s7(_add(t[lane], c))
        for lane in range(_L):
            s[lane] = t[lane]
        for i in range(1, WIDTH):
            for lane in range(_L):
                s[lane] = _add(s[lane], t[i * _L + lane])
        for i in range(WIDTH):
            d = diag[i]
            for lane in range(_L):
                t[i * _L + lane] = _add(s[lane], _mul(t[i * _L + lane], d))
    for r in range(4):
        _full(t, rc_final, r)


@njit(parallel=True, cache=True)
def _permute_many(states, out, keep, rc_init, rc_int, rc_final, diag):  # pragma: no cover
    n = states.shape[0]
    tiles = (n + _L - 1) // _L
    r2 = _R2
    one = np.uint64(1)
    for k in prange(tiles):
        t = np.zeros(WIDTH * _L, dtype=np.uint64)
        s = np.zeros(_L, dtype=np.uint64)
        lo = k * _L
        m = min(_L, n - lo)
        for lane in range(m):
            for i in range(WIDTH):
                t[i * _L + lane] = _mul(states[lo + lane, i], r2)
        _permute_tile(t, s, rc_init, rc_int, rc_final, diag)
        for lane in range(m):
            for i in range(keep):
                out[lo + lane, i] = _mul(t[i * _L + lane], one)


def permute(states: np.ndarray) -> np.ndarray:
    """The permutation of every row of `states` (n, 16), reduced uint64 elements."""
    states = np.ascontiguousarray(states, dtype=np.uint64).reshape(-1, WIDTH)
    out = np.empty_like(states)
    with one_thread_if_small(len(states), _SMALL):
        _permute_many(states, out, WIDTH, _RC_INIT, _RC_INT, _RC_FINAL, _DIAG)
    return out


def compress(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two-to-one compression of n pairs of digests (n, 8): perm(left || right)[:8]."""
    states = np.concatenate([np.asarray(left, dtype=np.uint64).reshape(-1, DIGEST),
                             np.asarray(right, dtype=np.uint64).reshape(-1, DIGEST)], axis=1)
    out = np.empty((len(states), DIGEST), dtype=np.uint64)
    with one_thread_if_small(len(states), _SMALL):
        _permute_many(states, out, DIGEST, _RC_INIT, _RC_INT, _RC_FINAL, _DIAG)
    return out


@njit(cache=True)
def _permute_one(x, rc_init, rc_int, rc_final, diag):  # pragma: no cover
    """One permutation in place on a Montgomery-form state (16,): the path kernel's step."""
    _ext_one(x)
    for r in range(4):
        for i in range(WIDTH):
            x[i] = _s7(_add(x[i], rc_init[r * WIDTH + i]))
        _ext_one(x)
    for r in range(13):
        x[0] = _s7(_add(x[0], rc_int[r]))
        s = x[0]
        for i in range(1, WIDTH):
            s = _add(s, x[i])
        for i in range(WIDTH):
            x[i] = _add(s, _mul(x[i], diag[i]))
    for r in range(4):
        for i in range(WIDTH):
            x[i] = _s7(_add(x[i], rc_final[r * WIDTH + i]))
        _ext_one(x)


@njit(inline="always")
def _ext_one(x):
    s0 = np.uint64(0)
    s1 = np.uint64(0)
    s2 = np.uint64(0)
    s3 = np.uint64(0)
    for b in range(4):
        a0, a1, a2, a3 = x[4 * b], x[4 * b + 1], x[4 * b + 2], x[4 * b + 3]
        t01 = _add(a0, a1)
        t23 = _add(a2, a3)
        t0123 = _add(t01, t23)
        t01123 = _add(t0123, a1)
        t01233 = _add(t0123, a3)
        x[4 * b + 3] = _add(t01233, _add(a0, a0))
        x[4 * b + 1] = _add(t01123, _add(a2, a2))
        x[4 * b] = _add(t01123, t01)
        x[4 * b + 2] = _add(t01233, t23)
        s0 = _add(s0, x[4 * b])
        s1 = _add(s1, x[4 * b + 1])
        s2 = _add(s2, x[4 * b + 2])
        s3 = _add(s3, x[4 * b + 3])
    for b in range(4):
        x[4 * b] = _add(x[4 * b], s0)
        x[4 * b + 1] = _add(x[4 * b + 1], s1)
        x[4 * b + 2] = _add(x[4 * b + 2], s2)
        x[4 * b + 3] = _add(x[4 * b + 3], s3)


@njit(cache=True)
def _fold_path(leaf, siblings, index, out, rc_init, rc_int, rc_final, diag):  # pragma: no cover
    x = np.zeros(WIDTH, dtype=np.uint64)
    one = np.uint64(1)
    for i in range(DIGEST):
        out[0, i] = leaf[i]
    for h in range(siblings.shape[0]):
        right = (index >> h) & 1
        for i in range(DIGEST):
            node = _mul(out[h, i], _R2)
            sib = _mul(siblings[h, i], _R2)
            x[i] = sib if right else node
            x[DIGEST + i] = node if right else sib
        _permute_one(x, rc_init, rc_int, rc_final, diag)
        for i in range(DIGEST):
            out[h + 1, i] = _mul(x[i], one)


def fold_path(leaf: np.ndarray, siblings: np.ndarray, index: int) -> np.ndarray:
    """Every node on a Merkle path (len(siblings) + 1, 8): the leaf digest, then each parent
    (bit h of `index` set: the node is the right child at height h), the root last."""
    siblings = np.ascontiguousarray(siblings, dtype=np.uint64)
    out = np.empty((len(siblings) + 1, DIGEST), dtype=np.uint64)
    _fold_path(np.ascontiguousarray(leaf, dtype=np.uint64), siblings, index, out,
               _RC_INIT, _RC_INT, _RC_FINAL, _DIAG)
    return out


_RC_FULL_PLAIN = np.array([[int(c) for c in rc] for rc in (*RC_EXTERNAL_INITIAL,
                                                           *RC_EXTERNAL_FINAL)], dtype=np.uint64)
_RC_INT_PLAIN = np.array([int(c) for c in RC_INTERNAL], dtype=np.uint64)
_DIAG_PLAIN = np.array([int(c) for c in INTERNAL_DIAG], dtype=np.uint64)
_M4 = np.array([[2, 3, 1, 1], [1, 2, 3, 1], [1, 1, 2, 3], [3, 1, 1, 2]], dtype=np.uint64)


@njit(inline="always")
def _ext_plain(x, y):  # pragma: no cover
    """The external layer of x (16) into y (16), plain residues."""
    for b in range(4):
        for i in range(4):
            acc = np.uint64(0)
            for j in range(4):
                acc += _M4[i, j] * x[4 * b + j]
            y[4 * b + i] = acc % _P
    for i in range(4):
        s = (y[i] + y[4 + i] + y[8 + i] + y[12 + i]) % _P
        for b in range(4):
            y[4 * b + i] = (y[4 * b + i] + s) % _P


@njit(parallel=True, cache=True)
def _air_columns(states, out, rc_full, rc_int, diag):  # pragma: no cover
    n = states.shape[0]
    for k in prange(n):
        x = np.empty(16, np.uint64)
        y = np.empty(16, np.uint64)
        for i in range(16):
            x[i] = states[k, i] % _P
            out[k, i] = x[i]
        _ext_plain(x, y)
        pos = 16
        for r in range(8):
            if r == 4:
                for rc in rc_int:
                    t = (y[0] + rc) % _P
                    x3 = t * t % _P * t % _P
                    x7 = x3 * x3 % _P * t % _P
                    out[k, pos], out[k, pos + 1] = x3, x7
                    pos += 2
                    y[0] = x7
                    total = np.uint64(0)
                    for i in range(16):
                        total += y[i]
                    total %= _P
                    for i in range(16):
                        y[i] = (total + diag[i] * y[i]) % _P
            for i in range(16):
                t = (y[i] + rc_full[r, i]) % _P
                x3 = t * t % _P * t % _P
                out[k, pos + i] = x3
                x[i] = x3 * x3 % _P * t % _P
            _ext_plain(x, y)
            for i in range(16):
                out[k, pos + 16 + i] = y[i]
            pos += 32


def air_columns(states: np.ndarray) -> np.ndarray:
    """circuits.rollup.poseidon2_air.columns, compiled: the 298 AIR columns (n, 298) of the
    permutations of states (n, 16) (the batch prover's witness; tests check they agree)."""
    states = np.ascontiguousarray(states, dtype=np.uint64).reshape(-1, WIDTH)
    out = np.empty((states.shape[0], 16 + 8 * 32 + 13 * 2), dtype=np.uint64)
    with one_thread_if_small(len(states), _SMALL):
        _air_columns(states, out, _RC_FULL_PLAIN, _RC_INT_PLAIN, _DIAG_PLAIN)
    return out
