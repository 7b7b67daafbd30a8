"""A LogUp bus whose multiplicities and tuple fields are linear in the trace columns, compiled
for the prover into sparse matrices and evaluated by one fused kernel.

The constraint of a group of terms ``(m_i, d_i)`` over a running-sum column ``h`` is
``(h' - h) prod d_i - sum_i m_i prod_{j != i} d_j``; written as field expressions (as the
verifier evaluates it at one point) it costs the prover dozens of temporary extension
vectors per group. When every multiplicity and every field is a linear form of the current
row, the denominators ``alpha - sum_j beta^j field_j`` are linear forms too: compiled once
per challenge into (column, extension weight) entries, the whole bus is one pass over the
points, with no temporaries. :class:`Linear` finds the forms by running the AIR's own term
code on symbolic columns, so the two evaluations cannot drift apart (a test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from circuits.field import P
from circuits.kernels import emul

_P = np.uint64(P)
SUB = 1024  # points per task of the fused kernel


class NonLinear(TypeError):
    """A term of the bus is not a linear form of the row's columns."""


class Linear:
    """``const + sum coef * column`` with integer coefficients: a symbolic column value."""

    __slots__ = ("const", "coefs")

    def __init__(self, const: int = 0, coefs: dict[int, int] | None = None) -> None:
        self.const, self.coefs = const, coefs or {}

    @staticmethod
    def column(i: int) -> "Linear":
        return Linear(0, {i: 1})

    @staticmethod
    def of(v) -> "Linear":
        if isinstance(v, Linear):
            return v
        if isinstance(v, int):
            return Linear(v)
        raise NonLinear(f"{type(v).__name__} is not a linear form")

    def __add__(self, o) -> "Linear":
        o = Linear.of(o)
        coefs = dict(self.coefs)
        for k, v in o.coefs.items():
            coefs[k] = coefs.get(k, 0) + v
        return Linear(self.const + o.const, coefs)

    __radd__ = __add__

    def __neg__(self) -> "Linear":
        return Linear(-self.const, {k: -v for k, v in self.coefs.items()})

    def __sub__(self, o) -> "Linear":
        return self + (-Linear.of(o))

    def __rsub__(self, o) -> "Linear":
        return Linear.of(o) - self

    def __mul__(self, o) -> "Linear":
        if isinstance(o, Linear):
            if o.coefs and self.coefs:
                raise NonLinear("product of two columns")
            k, form = (o.const, self) if not o.coefs else (self.const, o)
        elif isinstance(o, int):
            k, form = o, self
        else:
            raise NonLinear(f"product with {type(o).__name__}")
        return Linear(form.const * k, {c: v * k for c, v in form.coefs.items()})

    __rmul__ = __mul__


@dataclass(frozen=True)
class BusPlan:
    """The terms of a bus as sparse linear forms over the main columns (coefficients mod p).

    ``fields[t]`` lists term t's tuple fields as (field index j, const, cols, coefs);
    ``mult_*`` give term t's multiplicity; ``groups`` are the term ranges of each aux column."""

    fields: tuple[tuple[tuple[int, int, np.ndarray, np.ndarray], ...], ...]
    mult_const: np.ndarray
    mult_ptr: np.ndarray
    mult_cols: np.ndarray
    mult_coefs: np.ndarray
    groups: np.ndarray  # (G + 1,) term offsets

    @staticmethod
    def compile(terms: list[tuple[Linear, list[Linear]]], group_size: int) -> "BusPlan":
        """``terms`` as (multiplicity, fields) of Linear, grouped ``group_size`` per column."""
        fields, m_const, m_ptr, m_cols, m_coefs = [], [], [0], [], []
        for m, fs in terms:
            m_const.append(m.const % P)
            for col, k in sorted(m.coefs.items()):
                if k % P:
                    m_cols.append(col)
                    m_coefs.append(k % P)
            m_ptr.append(len(m_cols))
            fields.append(tuple(
                (j, f.const % P, np.array([c for c, k in sorted(f.coefs.items()) if k % P], np.int64),
                 np.array([k % P for _, k in sorted(f.coefs.items()) if k % P], np.uint64))
                for j, f in enumerate(fs)))
        groups = np.array(list(range(0, len(terms), group_size)) + [len(terms)], np.int64)
        return BusPlan(tuple(fields), np.array(m_const, np.uint64), np.array(m_ptr, np.int64),
                       np.array(m_cols, np.int64), np.array(m_coefs, np.uint64), groups)

    def weights(self, alpha: np.ndarray, powers: np.ndarray) -> tuple[np.ndarray, ...]:
        """Denominators ``alpha - sum_j beta^j field_j`` as (const (T, 4), ptr, cols, weights
        (E, 4)) for extension ``alpha`` and ``powers`` = [1, beta, beta^2, ...] (k, 4)."""
        consts = np.empty((len(self.fields), 4), np.uint64)
        ptr, cols, weights = [0], [], []
        for t, fs in enumerate(self.fields):
            acc: dict[int, np.ndarray] = {}
            const = alpha.astype(np.uint64) % _P
            for j, c, fc, fk in fs:
                if c:
                    const = (const + _P - powers[j] * np.uint64(c) % _P) % _P
                for col, k in zip(fc.tolist(), fk.tolist()):
                    w = (_P - powers[j] * np.uint64(k) % _P) % _P
                    acc[col] = (acc[col] + w) % _P if col in acc else w
            consts[t] = const
            for col in sorted(acc):
                cols.append(col)
                weights.append(acc[col])
            ptr.append(len(cols))
        return (consts, np.array(ptr, np.int64), np.array(cols, np.int64),
                np.array(weights, np.uint64).reshape(-1, 4))

    def evaluate(self, main: np.ndarray, h: np.ndarray, h_next: np.ndarray,
                 weights: tuple[np.ndarray, ...]) -> np.ndarray:
        """Every group's constraint at every point: main (W, m) columns, h / h_next (G, m, 4)
        running sums at the point and the next row, ``weights`` from :meth:`weights`;
        returns (G, m, 4)."""
        out = np.empty((len(self.groups) - 1, main.shape[1], 4), np.uint64)
        _evaluate(main, h, h_next, *weights, *self._mult(), self.groups, out)
        return out

    def fraction(self, main: np.ndarray, group: int,
                 weights: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        """One group's sum of m_t / d_t at every point as a fraction (numerator, denominator),
        each (m, 4): the auxiliary trace inverts the denominators in one batch per group."""
        num, den = np.empty((main.shape[1], 4), np.uint64), np.empty((main.shape[1], 4), np.uint64)
        _fraction(main, *weights, *self._mult(), self.groups[group], self.groups[group + 1],
                  num, den)
        return num, den

    def _mult(self) -> tuple[np.ndarray, ...]:
        return self.mult_const, self.mult_ptr, self.mult_cols, self.mult_coefs


@numba.njit(cache=True, inline="always")
def _group_sum(main, lo, size, dconst, dptr, dcols, dw, mconst, mptr, mcols, mcoef, t0, t1, sq):
    """s / q = sum over terms t0..t1-1 of mu_t / d_t at points lo..lo+size-1, into
    sq = (s, q), (2, 4, size).

    Column-major over the sub-block: each entry streams ``size`` consecutive values of its
    column (the columns are rows of one array, 2^k bytes apart: reading many of them at one
    point would thrash the caches' sets)."""
    s, q = sq[0], sq[1]
    acc = np.empty((4, size), np.uint64)
    mu = np.empty(size, np.uint64)
    for t in range(t0, t1):
        acc[:] = 0
        n = 0
        for e in range(dptr[t], dptr[t + 1]):
            col, w0, w1, w2, w3 = dcols[e], dw[e, 0], dw[e, 1], dw[e, 2], dw[e, 3]
            for j in range(size):
                v = main[col, lo + j]
                acc[0, j] += v * w0
                acc[1, j] += v * w1
                acc[2, j] += v * w2
                acc[3, j] += v * w3
            n += 1
            if n == 4:  # a reduced value plus four products of reduced values < 2^64
                for j in range(size):
                    for k in range(4):
                        acc[k, j] %= _P
                n = 0
        mu[:size] = mconst[t]
        n = 0
        for e in range(mptr[t], mptr[t + 1]):
            col, k = mcols[e], mcoef[e]
            for j in range(size):
                mu[j] += main[col, lo + j] * k
            n += 1
            if n == 3:
                for j in range(size):
                    mu[j] %= _P
                n = 0
        c0, c1, c2, c3 = dconst[t, 0], dconst[t, 1], dconst[t, 2], dconst[t, 3]
        for j in range(size):
            d0 = (acc[0, j] % _P + c0) % _P
            d1 = (acc[1, j] % _P + c1) % _P
            d2 = (acc[2, j] % _P + c2) % _P
            d3 = (acc[3, j] % _P + c3) % _P
            u = mu[j] % _P
            if t == t0:
                s[0, j], s[1, j], s[2, j], s[3, j] = u, 0, 0, 0
                q[0, j], q[1, j], q[2, j], q[3, j] = d0, d1, d2, d3
                continue
            # s/q + u/d = (s d + u q) / (q d)
            s0, s1, s2, s3 = emul(s[0, j], s[1, j], s[2, j], s[3, j], d0, d1, d2, d3)
            s[0, j] = (s0 + u * q[0, j]) % _P
            s[1, j] = (s1 + u * q[1, j]) % _P
            s[2, j] = (s2 + u * q[2, j]) % _P
            s[3, j] = (s3 + u * q[3, j]) % _P
            q[0, j], q[1, j], q[2, j], q[3, j] = emul(q[0, j], q[1, j], q[2, j], q[3, j],
                                                       d0, d1, d2, d3)


@numba.njit(cache=True, parallel=True)
def _evaluate(main, h, hn, dconst, dptr, dcols, dw, mconst, mptr, mcols, mcoef, groups, out):
    m = main.shape[1]
    for blk in numba.prange((m + SUB - 1) // SUB):
        lo = blk * SUB
        size = min(m, lo + SUB) - lo
        sq = np.empty((2, 4, size), np.uint64)  # the fraction s / q
        for g in range(groups.shape[0] - 1):
            _group_sum(main, lo, size, dconst, dptr, dcols, dw, mconst, mptr, mcols, mcoef,
                       groups[g], groups[g + 1], sq)
            s, q = sq[0], sq[1]
            for j in range(size):  # (h' - h) q - s
                i = lo + j
                r0, r1, r2, r3 = emul((hn[g, i, 0] + _P - h[g, i, 0]) % _P,
                                       (hn[g, i, 1] + _P - h[g, i, 1]) % _P,
                                       (hn[g, i, 2] + _P - h[g, i, 2]) % _P,
                                       (hn[g, i, 3] + _P - h[g, i, 3]) % _P,
                                       q[0, j], q[1, j], q[2, j], q[3, j])
                out[g, i, 0] = (r0 + _P - s[0, j]) % _P
                out[g, i, 1] = (r1 + _P - s[1, j]) % _P
                out[g, i, 2] = (r2 + _P - s[2, j]) % _P
                out[g, i, 3] = (r3 + _P - s[3, j]) % _P


@numba.njit(cache=True, parallel=True)
def _fraction(main, dconst, dptr, dcols, dw, mconst, mptr, mcols, mcoef, t0, t1, num, den):
    m = main.shape[1]
    for blk in numba.prange((m + SUB - 1) // SUB):
        lo = blk * SUB
        size = min(m, lo + SUB) - lo
        sq = np.empty((2, 4, size), np.uint64)  # the fraction s / q
        _group_sum(main, lo, size, dconst, dptr, dcols, dw, mconst, mptr, mcols, mcoef, t0, t1, sq)
        s, q = sq[0], sq[1]
        for j in range(size):
            for k in range(4):
                num[lo + j, k] = s[k, j]
                den[lo + j, k] = q[k, j]
