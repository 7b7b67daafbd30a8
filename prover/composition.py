"""The composition polynomial: constraints over the LDE, divided and randomly combined."""

from __future__ import annotations

import numba
import numpy as np

from circuits.air import Air, Domain, as_columns
from circuits.field import P, Fp4
from circuits.kernels import emul
from circuits.ntt import coset_intt
from prover.domain import LdeDomain
from verifier.stark import SHIFT


_P = np.uint64(P)


class ConstraintViolation(ValueError):
    """The witness does not satisfy the AIR (raised by the prover's own consistency check);
    ``row`` is the first trace row where it fails, if known."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


def check_trace(air: Air, main: np.ndarray, aux: np.ndarray | None, challenges: list) -> None:
    """Evaluate every constraint on the trace rows; raise on the first violation."""
    n = air.trace_length
    aux = aux if aux is not None else np.zeros((0, n, 4), dtype=np.uint64)
    values = air.evaluate(as_columns(main, False), as_columns(np.roll(main, -1, axis=1), False),
                          as_columns(aux, True), as_columns(np.roll(aux, -1, axis=1), True),
                          [Fp4(c) for c in challenges])
    rows = {Domain.TRANSITION: slice(0, n - 1), Domain.FIRST: slice(0, 1),
            Domain.LAST: slice(n - 1, n), Domain.EVERY: slice(0, n)}
    for i, (dom, val) in enumerate(values):
        v = np.broadcast_to(val.v, (n, 4) if isinstance(val, Fp4) else (n,))[rows[dom]]
        bad = np.flatnonzero(v.reshape(len(v), -1).any(axis=1))
        if len(bad):
            row = int(bad[0] + rows[dom].start)
            where = air.constraint_sources()[i]
            raise ConstraintViolation(f"{air.name}: constraint {i} ({dom.name.lower()}, {where}) "
                                      f"fails at row {row}", row)


SUB = 1024  # points per task of the accumulation kernel


@numba.njit(cache=True, parallel=True)
def _accumulate(total, base, base_alphas, ext, ext_alphas, inv_div):
    """total[i] += (sum_k alpha_k base_k[i] + sum_k alpha'_k ext_k[i]) * inv_div[i], in place.

    Constraint rows are streamed contiguously over sub-blocks of points (wide AIRs have
    hundreds), and the base sums are reduced every third term (stays below 2^64)."""
    m = total.shape[0]
    for blk in numba.prange((m + SUB - 1) // SUB):
        lo = blk * SUB
        hi = min(m, lo + SUB)
        acc = np.zeros((hi - lo, 4), dtype=np.uint64)
        for k in range(base.shape[0]):
            w0, w1, w2, w3 = base_alphas[k, 0], base_alphas[k, 1], base_alphas[k, 2], base_alphas[k, 3]
            for j in range(hi - lo):
                v = base[k, lo + j]
                acc[j, 0] += v * w0
                acc[j, 1] += v * w1
                acc[j, 2] += v * w2
                acc[j, 3] += v * w3
            if k % 3 == 2:
                for j in range(hi - lo):
                    for c in range(4):
                        acc[j, c] %= _P
        for j in range(hi - lo):
            i = lo + j
            a0, a1, a2, a3 = acc[j, 0] % _P, acc[j, 1] % _P, acc[j, 2] % _P, acc[j, 3] % _P
            for k in range(ext.shape[0]):
                t0, t1, t2, t3 = emul(ext[k, i, 0], ext[k, i, 1], ext[k, i, 2], ext[k, i, 3],
                                       ext_alphas[k, 0], ext_alphas[k, 1], ext_alphas[k, 2],
                                       ext_alphas[k, 3])
                a0, a1, a2, a3 = (a0 + t0) % _P, (a1 + t1) % _P, (a2 + t2) % _P, (a3 + t3) % _P
            d = inv_div[i]
            total[i, 0] = (total[i, 0] + a0 * d % _P) % _P
            total[i, 1] = (total[i, 1] + a1 * d % _P) % _P
            total[i, 2] = (total[i, 2] + a2 * d % _P) % _P
            total[i, 3] = (total[i, 3] + a3 * d % _P) % _P


EVAL_BLOCK = 1 << 13  # points per block of constraint evaluation (temporaries stay in cache)


@numba.njit(cache=True, parallel=True)
def _gather(main_lde, aux_lde, first, step, main, aux):
    """Every step-th LDE point from ``first`` (wrapping around the coset): main (width, k)
    and aux (ext width, k, 4) as uint64, the layouts the constraint code reads."""
    size = main_lde.shape[1]
    for r in numba.prange(main.shape[0] + aux.shape[0]):
        for j in range(main.shape[1]):
            i = first + j * step
            if i >= size:
                i -= size
            if r < main.shape[0]:
                main[r, j] = main_lde[r, i]
            else:
                a = r - main.shape[0]
                for c in range(4):
                    aux[a, j, c] = aux_lde[4 * a + c, i]


def composition_evals(air: Air, domain: LdeDomain, main_lde: np.ndarray, aux_lde: np.ndarray,
                      step: int, challenges: list, alphas: np.ndarray) -> np.ndarray:
    """C(x) = sum_i alpha_i c_i(x) / Z_i(x) at every point of `domain`, (size, 4).

    main_lde (width, M) and aux_lde (4 * aux_width, M, coordinates of each extension column
    consecutive) are the trace on the full LDE coset, of which `domain` is every step-th point.
    The next row of x is g x, `domain.blowup` positions further on `domain`. Constraints are
    pointwise, so they are evaluated block by block: wide AIRs make hundreds of temporaries per
    pass, and block-sized ones stay in cache (and no strided copy of the LDE is made).
    """
    b, m = domain.blowup, domain.size
    inv_div = {dom: domain.inv_divisor(dom) for dom in Domain}
    ext_challenges = [Fp4(c) for c in challenges]
    total = np.zeros((m, 4), dtype=np.uint64)

    width, ext_width = len(main_lde), len(aux_lde) // 4

    def block(lo: int, hi: int) -> tuple:  # main and aux columns at points lo..hi-1 of domain
        main = np.empty((width, hi - lo), np.uint64)
        aux = np.empty((ext_width, hi - lo, 4), np.uint64)
        _gather(main_lde, aux_lde, (lo % m) * step, step, main, aux)
        return as_columns(main, False), as_columns(aux, True)

    for lo in range(0, m, EVAL_BLOCK):
        hi = min(m, lo + EVAL_BLOCK)
        (main_cur, aux_cur), (main_nxt, aux_nxt) = block(lo, hi), block(lo + b, hi + b)
        values = air.evaluate(main_cur, main_nxt, aux_cur, aux_nxt, ext_challenges)
        for dom in Domain:
            base = [i for i, (d, v) in enumerate(values) if d is dom and not isinstance(v, Fp4)]
            ext = [i for i, (d, v) in enumerate(values) if d is dom and isinstance(v, Fp4)]
            if not base and not ext:
                continue
            base_cols = np.stack([np.broadcast_to(values[i][1].v, (hi - lo,)) for i in base]) \
                if base else np.zeros((0, hi - lo), dtype=np.uint64)
            ext_cols = np.stack([np.broadcast_to(values[i][1].v, (hi - lo, 4)) for i in ext]) \
                if ext else np.zeros((0, hi - lo, 4), dtype=np.uint64)
            _accumulate(total[lo:hi], base_cols, alphas[base].reshape(-1, 4), ext_cols,
                        alphas[ext].reshape(-1, 4), inv_div[dom][lo:hi])
    return total


def composition_segments(air: Air, evals: np.ndarray, segments: int, check: bool) -> np.ndarray:
    """Split C, given on a coset of size >= segments * n, into `segments` polynomials of
    degree < n: coefficients (segments, 4, n)."""
    n = air.trace_length
    coeffs = coset_intt(np.ascontiguousarray(evals.T), SHIFT)  # (4, size)
    if check and coeffs[:, segments * n:].any():
        raise ConstraintViolation(f"{air.name}: composition polynomial exceeds its degree bound")
    return coeffs[:, :segments * n].reshape(4, segments, n).transpose(1, 0, 2)
