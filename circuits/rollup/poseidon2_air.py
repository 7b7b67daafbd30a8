"""Poseidon2 as AIR columns: one permutation per row, degree 3 (Plonky3's poseidon2-air layout).

A permutation takes 298 columns: its 16 inputs; for each of the 8 full rounds the cubes x^3 of
the 16 S-box inputs and the 16 outputs of the round (after the external layer); for each of the
13 partial rounds the cube of x_0 and x_0^7. Committing x^3 keeps every constraint at degree 3
(x^7 = (x^3)^2 x); the states between partial rounds are linear in committed columns, so they
are expressions, not columns. The permutation's output is the last full round's 16 columns.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from circuits.air import Value
from circuits.field import P, Fp4Scalar, ext_mul
from circuits.poseidon2 import (HALF_FULL_ROUNDS, INTERNAL_DIAG, M4, PARTIAL_ROUNDS,
                                RC_EXTERNAL_FINAL, RC_EXTERNAL_INITIAL, RC_INTERNAL, WIDTH,
                                external_layer, internal_layer, reduce)

FULL_ROUNDS = 2 * HALF_FULL_ROUNDS
COLUMNS = WIDTH + FULL_ROUNDS * 2 * WIDTH + PARTIAL_ROUNDS * 2  # 298
OUTPUT = COLUMNS - WIDTH  # offset of the output (the last full round's state)
_FULL_RC = [[int(c) for c in rc] for rc in (*RC_EXTERNAL_INITIAL, *RC_EXTERNAL_FINAL)]
_PARTIAL_RC = [int(c) for c in RC_INTERNAL]
_P = np.uint64(P)


def _external(x: list[Value]) -> list[Value]:
    """The external layer on 16 values of any kind (columns, expressions, degrees)."""
    y = []
    for b in range(4):
        a0, a1, a2, a3 = x[4 * b:4 * b + 4]
        t01, t23 = a0 + a1, a2 + a3
        t0123 = t01 + t23
        y += [t0123 + t01 + a1, t0123 + a1 + 2 * a2, t0123 + t23 + a3, t0123 + a3 + 2 * a0]
    sums = [y[i] + y[4 + i] + y[8 + i] + y[12 + i] for i in range(4)]
    return [y[i] + sums[i % 4] for i in range(WIDTH)]


def _internal(x: list[Value]) -> list[Value]:
    total = x[0]
    for v in x[1:]:
        total = total + v
    return [total + d * v for d, v in zip(INTERNAL_DIAG, x)]


def lane_constraints(lanes: Sequence[Sequence[Value]]) -> list[Value]:
    """The constraints of several permutations (298 columns each), lane after lane; at the
    verifier's point all lanes at once (one array call per layer for every lane)."""
    if isinstance(lanes[0][0], Fp4Scalar):
        return _constraints_at_point(lanes)
    return [expr for cols in lanes for expr in constraints(cols)]


def constraints(cols: Sequence[Value]) -> list[Value]:
    """The permutation's constraints on its 298 columns (each must vanish on every row)."""
    if isinstance(cols[0], Fp4Scalar):
        return _constraints_at_point([cols])
    out: list[Value] = []
    state = _external(list(cols[:WIDTH]))
    pos = WIDTH
    for r in range(FULL_ROUNDS):
        if r == HALF_FULL_ROUNDS:
            for rc in _PARTIAL_RC:
                t = state[0] + rc
                x3, x7 = cols[pos], cols[pos + 1]
                out += [x3 - t * t * t, x7 - x3 * x3 * t]
                state = _internal([x7, *state[1:]])
                pos += 2
        x3 = cols[pos:pos + WIDTH]
        post = cols[pos + WIDTH:pos + 2 * WIDTH]
        t = [s + c for s, c in zip(state, _FULL_RC[r])]
        out += [c3 - ti * ti * ti for c3, ti in zip(x3, t)]
        mixed = _external([c3 * c3 * ti for c3, ti in zip(x3, t)])
        out += [p - m for p, m in zip(post, mixed)]
        state = list(post)
        pos += 2 * WIDTH
    return out


def columns(states: np.ndarray) -> np.ndarray:
    """The 298 columns (n, 298) of the permutations of states (n, 16), numpy (the witness)."""
    x = reduce(np.ascontiguousarray(np.asarray(states, dtype=np.uint64).T))  # lane-first
    parts = [x]
    state = external_layer(x)
    for r in range(FULL_ROUNDS):
        if r == HALF_FULL_ROUNDS:
            for rc in _PARTIAL_RC:
                t = state[0] + np.uint64(rc)
                x3 = reduce(reduce(t * t) * t)
                x7 = reduce(reduce(x3 * x3) * t)
                parts += [x3[None], x7[None]]
                state = state.copy()
                state[0] = x7
                state = internal_layer(state)
        t = state + np.array(_FULL_RC[r], dtype=np.uint64)[:, None]
        x3 = reduce(reduce(t * t) * t)
        state = external_layer(reduce(reduce(x3 * x3) * t))
        parts += [x3, state]
    return np.ascontiguousarray(np.concatenate(parts).T)


_M16 = np.array([[(2 if i // 4 == j // 4 else 1) * M4[i % 4][j % 4] for j in range(WIDTH)]
                 for i in range(WIDTH)], dtype=np.uint64)
_DIAG = np.array(INTERNAL_DIAG, dtype=np.uint64)[:, None]


def _constraints_at_point(lanes: Sequence[Sequence[Fp4Scalar]]) -> list[Fp4Scalar]:
    """The same constraints at one extension point (the verifier's evaluation at z), lane after
    lane: the states as an (L, 16, 4) array, each round a few numpy calls for every lane at
    once instead of hundreds of scalar ones."""
    x = np.array([[c.c for c in cols] for cols in lanes], dtype=np.uint64)  # (L, 298, 4)
    blocks: list[np.ndarray] = []  # (L, k, 4) each: the constraints in order, every lane

    def cube(t):
        return ext_mul(ext_mul(t, t), t)

    state = _M16 @ x[:, :WIDTH] % _P
    pos = WIDTH
    for r in range(FULL_ROUNDS):
        if r == HALF_FULL_ROUNDS:
            state = state.copy()  # (post is a view of x)
            for i, rc in enumerate(_PARTIAL_RC):
                t = state[:, 0].copy()
                t[:, 0] = (t[:, 0] + np.uint64(rc)) % _P
                x3, x7 = x[:, pos + 2 * i], x[:, pos + 2 * i + 1]
                blocks.append(np.stack([(x3 + _P - cube(t)) % _P,
                                        (x7 + _P - ext_mul(ext_mul(x3, x3), t)) % _P], axis=1))
                state[:, 0] = x7
                state = (state.sum(axis=1, keepdims=True) % _P + _DIAG * state) % _P
            pos += 2 * len(_PARTIAL_RC)
        t = state.copy()
        t[:, :, 0] = (t[:, :, 0] + np.array(_FULL_RC[r], dtype=np.uint64)) % _P
        x3, post = x[:, pos:pos + WIDTH], x[:, pos + WIDTH:pos + 2 * WIDTH]
        blocks += [(x3 + _P - cube(t)) % _P,
                   (post + _P - _M16 @ ext_mul(ext_mul(x3, x3), t) % _P) % _P]
        state = post
        pos += 2 * WIDTH
    return Fp4Scalar.of_rows(np.concatenate(blocks, axis=1).reshape(-1, 4))
