"""Poseidon2 over BabyBear, width 16: the hash of the rollup's state tree, defined once.

Exactly Plonky3's `default_babybear_poseidon2_16` (so a digest here is a digest there):

- S-box x^7 (x^3 and x^5 are not permutations of BabyBear: p - 1 = 15 * 2^27);
- an external linear layer first, then 4 full rounds, 13 partial rounds, 4 full rounds;
- full round: add 16 round constants, x^7 on every element, external layer;
- partial round: add one constant to x_0, x_0^7, internal layer;
- external layer: M4 = [[2,3,1,1],[1,2,3,1],[1,1,2,3],[3,1,1,2]] on each block of four, then
  each x_i plus the sum of the x_j with j = i (mod 4) (the matrix circ(2 M4, M4, M4, M4));
- internal layer: x_i' = sum(x) + V_i x_i with V = [-2, 1, 2, 1/2, 3, 4, -1/2, -3, -4, 1/2^8,
  1/4, 1/8, 1/2^27, -1/2^8, -1/16, -1/2^27];
- round constants: Plonky3's BABYBEAR_POSEIDON2_RC_16_* (the Grain LFSR of the Poseidon paper,
  field 1, S-box flag 0, n = 31, t = 16, R_F = 8, R_P = 13).

Two-to-one compression is Plonky3's TruncatedPermutation<2, 8, 16>: the first 8 elements of
perm(left || right), digests of 8 elements (~124 bits of collision resistance).

This module is the readable reference, numpy only (the verifier and the batch AIR use it; it never
imports numba); `prover.poseidon2` is the compiled, batched implementation the trees and the
prover run, tested to agree with this one.
"""

from __future__ import annotations

import numpy as np

from circuits.field import P

WIDTH = 16
DIGEST = 8  # elements of a digest (TruncatedPermutation<2, 8, 16>)
HALF_FULL_ROUNDS = 4
PARTIAL_ROUNDS = 13
SBOX_DEGREE = 7

M4 = ((2, 3, 1, 1), (1, 2, 3, 1), (1, 1, 2, 3), (3, 1, 1, 2))

_INV2 = pow(2, P - 2, P)
INTERNAL_DIAG: tuple[int, ...] = tuple(v % P for v in (
    -2, 1, 2, _INV2, 3, 4, -_INV2, -3, -4, pow(_INV2, 8, P), pow(_INV2, 2, P), pow(_INV2, 3, P),
    pow(_INV2, 27, P), -pow(_INV2, 8, P), -pow(_INV2, 4, P), -pow(_INV2, 27, P)))
"""V16, the internal layer's diagonal minus one (x_i' = sum(x) + V_i x_i)."""

RC_EXTERNAL_INITIAL = np.array([
    0x69cbb6af, 0x46ad93f9, 0x60a00f4e, 0x6b1297cd, 0x23189afe, 0x732e7bef, 0x72c246de, 0x2c941900,
    0x0557eede, 0x1580496f, 0x3a3ea77b, 0x54f3f271, 0x0f49b029, 0x47872fe1, 0x221e2e36, 0x1ab7202e,
    0x487779a6, 0x3851c9d8, 0x38dc17c0, 0x209f8849, 0x268dcee8, 0x350c48da, 0x5b9ad32e, 0x0523272b,
    0x3f89055b, 0x01e894b2, 0x13ddedde, 0x1b2ef334, 0x7507d8b4, 0x6ceeb94e, 0x52eb6ba2, 0x50642905,
    0x05453f3f, 0x06349efc, 0x6922787c, 0x04bfff9c, 0x768c714a, 0x3e9ff21a, 0x15737c9c, 0x2229c807,
    0x0d47f88c, 0x097e0ecc, 0x27eadba0, 0x2d7d29e4, 0x3502aaa0, 0x0f475fd7, 0x29fbda49, 0x018afffd,
    0x0315b618, 0x6d4497d1, 0x1b171d9e, 0x52861abd, 0x2e5d0501, 0x3ec8646c, 0x6e5f250a, 0x148ae8e6,
    0x17f5fa4a, 0x3e66d284, 0x0051aa3b, 0x483f7913, 0x2cfe5f15, 0x023427ca, 0x2cc78315, 0x1e36ea47,
], dtype=np.uint64).reshape(HALF_FULL_ROUNDS, WIDTH)
RC_EXTERNAL_FINAL = np.array([
    0x7290a80d, 0x6f7e5329, 0x598ec8a8, 0x76a859a0, 0x6559e868, 0x657b83af, 0x13271d3f, 0x1f876063,
    0x0aeeae37, 0x706e9ca6, 0x46400cee, 0x72a05c26, 0x2c589c9e, 0x20bd37a7, 0x6a2d3d10, 0x20523767,
    0x5b8fe9c4, 0x2aa501d6, 0x1e01ac3e, 0x1448bc54, 0x5ce5ad1c, 0x4918a14d, 0x2c46a83f, 0x4fcf6876,
    0x61d8d5c8, 0x6ddf4ff9, 0x11fda4d3, 0x02933a8f, 0x170eaf81, 0x5a9c314f, 0x49a12590, 0x35ec52a1,
    0x58eb1611, 0x5e481e65, 0x367125c9, 0x0eba33ba, 0x1fc28ded, 0x066399ad, 0x0cbec0ea, 0x75fd1af0,
    0x50f5bf4e, 0x643d5f41, 0x6f4fe718, 0x5b3cbbde, 0x1e3afb3e, 0x296fb027, 0x45e1547b, 0x4a8db2ab,
    0x59986d19, 0x30bcdfa3, 0x1db63932, 0x1d7c2824, 0x53b33681, 0x0673b747, 0x038a98a3, 0x2c5bce60,
    0x351979cd, 0x5008fb73, 0x547bca78, 0x711af481, 0x3f93bf64, 0x644d987b, 0x3c8bcd87, 0x608758b8,
], dtype=np.uint64).reshape(HALF_FULL_ROUNDS, WIDTH)
RC_INTERNAL = np.array([
    0x5a8053c0, 0x693be639, 0x3858867d, 0x19334f6b, 0x128f0fd8, 0x4e2b1ccb, 0x61210ce0, 0x3c318939,
    0x0b5b2f22, 0x2edb11d5, 0x213effdf, 0x0cac4606, 0x241af16d,
], dtype=np.uint64)

_P = np.uint64(P)
_DIAG = np.array(INTERNAL_DIAG, dtype=np.uint64)
_RC_INITIAL = RC_EXTERNAL_INITIAL[:, :, None]
_RC_FINAL = RC_EXTERNAL_FINAL[:, :, None]


def reduce(x: np.ndarray) -> np.ndarray:
    """x mod p for uint64 arrays, as x - (x // p) p: numpy divides an array by a scalar with
    libdivide (a multiply and a shift), ~2.5 times faster than % on this machine."""
    return x - x // _P * _P


def external_layer(x: np.ndarray) -> np.ndarray:
    """circ(2 M4, M4, M4, M4) on states held lane-first, (16, ...): M4 per block of four, then
    the sums of the elements with the same index mod 4. Inputs below 2^31, so nothing is
    reduced before the end (every sum < 2^37).

    M4 row by row is s + (a + 2b, b + 2c, c + 2d, 2a + d) with s = a + b + c + d (the matrix
    above): a few whole-array adds on the strided lanes."""
    a, b, c, d = x[0::4], x[1::4], x[2::4], x[3::4]
    s = a + b + c + d
    y = np.empty_like(x)
    y[0::4], y[1::4] = s + a + 2 * b, s + b + 2 * c
    y[2::4], y[3::4] = s + c + 2 * d, s + 2 * a + d
    blocks = y.reshape(4, 4, *x.shape[1:])
    return reduce(blocks + blocks.sum(axis=0)).reshape(x.shape)


def internal_layer(x: np.ndarray) -> np.ndarray:
    """x_i' = sum(x) + V_i x_i on states held lane-first, (16, ...)."""
    return reduce(x.sum(axis=0) + x * _DIAG.reshape((WIDTH,) + (1,) * (x.ndim - 1)))


def sbox(x: np.ndarray) -> np.ndarray:
    """x^7 element-wise, for x < 2^32 (a reduced element plus a round constant)."""
    x3 = reduce(reduce(x * x) * x)
    return reduce(reduce(x3 * x3) * x)


def permute(state: np.ndarray) -> np.ndarray:
    """The Poseidon2 permutation of states (..., 16) of reduced uint64 elements.

    Computed lane-first (16, n): each lane of every state is one contiguous array, so a
    partial round touches one array and a layer's sums run over whole arrays (the verifier
    hashes every header's worker ids with this)."""
    state = np.asarray(state, dtype=np.uint64)
    x = external_layer(reduce(np.ascontiguousarray(state.reshape(-1, WIDTH).T)))
    for rc in _RC_INITIAL:
        x = external_layer(sbox(x + rc))
    for rc in RC_INTERNAL:
        x[0] = sbox(x[0] + rc)
        x = internal_layer(x)
    for rc in _RC_FINAL:
        x = external_layer(sbox(x + rc))
    return np.ascontiguousarray(x.T).reshape(state.shape)


def compress(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two-to-one compression of digests (..., 8): perm(left || right)[:8]."""
    return permute(np.concatenate([left, right], axis=-1))[..., :DIGEST]
