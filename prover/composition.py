"""The composition polynomial: constraints over the LDE, divided and randomly combined."""

from __future__ import annotations

import numba
import numpy as np

from circuits.air import Air, Domain, as_columns
from circuits.field import P, Fp4, _emul
from circuits.ntt import coset_intt
from prover.domain import LdeDomain
from verifier.stark import SHIFT


_P = np.uint64(P)


class ConstraintViolation(ValueError):
    """The witness does not satisfy the AIR (raised by the prover's own consistency check)."""


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
            row = bad[0] + rows[dom].start
            raise ConstraintViolation(f"{air.name}: constraint {i} ({dom.name.lower()}) fails at row {row}")


@numba.njit(cache=True, parallel=True)
def _accumulate(total, base, base_alphas, ext, ext_alphas, inv_div):
    """total[i] += (sum_k alpha_k base_k[i] + sum_k alpha'_k ext_k[i]) * inv_div[i], in place."""
    m = total.shape[0]
    for i in numba.prange(m):
        a0, a1, a2, a3 = np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0)
        for k in range(base.shape[0]):
            v = base[k, i]
            a0 = (a0 + v * base_alphas[k, 0]) % _P
            a1 = (a1 + v * base_alphas[k, 1]) % _P
            a2 = (a2 + v * base_alphas[k, 2]) % _P
            a3 = (a3 + v * base_alphas[k, 3]) % _P
        for k in range(ext.shape[0]):
            t0, t1, t2, t3 = _emul(ext[k, i, 0], ext[k, i, 1], ext[k, i, 2], ext[k, i, 3],
                                   ext_alphas[k, 0], ext_alphas[k, 1], ext_alphas[k, 2],
                                   ext_alphas[k, 3])
            a0, a1, a2, a3 = (a0 + t0) % _P, (a1 + t1) % _P, (a2 + t2) % _P, (a3 + t3) % _P
        d = inv_div[i]
        total[i, 0] = (total[i, 0] + a0 * d % _P) % _P
        total[i, 1] = (total[i, 1] + a1 * d % _P) % _P
        total[i, 2] = (total[i, 2] + a2 * d % _P) % _P
        total[i, 3] = (total[i, 3] + a3 * d % _P) % _P


def composition_evals(air: Air, domain: LdeDomain, main_lde: np.ndarray, aux_lde: np.ndarray,
                      challenges: list, alphas: np.ndarray) -> np.ndarray:
    """C(x) = sum_i alpha_i c_i(x) / Z_i(x) at every point of `domain`, (size, 4).

    main_lde is (width, size); aux_lde is (aux_width, size, 4): the trace extended to that coset.
    The next row of x is g x, which on the coset in natural order is `blowup` positions further.
    """
    b, m = domain.blowup, domain.size
    values = air.evaluate(as_columns(main_lde, False), as_columns(np.roll(main_lde, -b, axis=1), False),
                          as_columns(aux_lde, True), as_columns(np.roll(aux_lde, -b, axis=1), True),
                          [Fp4(c) for c in challenges])
    total = np.zeros((m, 4), dtype=np.uint64)
    for dom in Domain:
        base = [i for i, (d, v) in enumerate(values) if d is dom and not isinstance(v, Fp4)]
        ext = [i for i, (d, v) in enumerate(values) if d is dom and isinstance(v, Fp4)]
        if not base and not ext:
            continue
        base_cols = np.stack([np.broadcast_to(values[i][1].v, (m,)) for i in base]) if base \
            else np.zeros((0, m), dtype=np.uint64)
        ext_cols = np.stack([np.broadcast_to(values[i][1].v, (m, 4)) for i in ext]) if ext \
            else np.zeros((0, m, 4), dtype=np.uint64)
        _accumulate(total, base_cols, alphas[base].reshape(-1, 4), ext_cols,
                    alphas[ext].reshape(-1, 4), domain.inv_divisor(dom))
    return total


def composition_segments(air: Air, evals: np.ndarray, segments: int, check: bool) -> np.ndarray:
    """Split C, given on a coset of size >= segments * n, into `segments` polynomials of
    degree < n: coefficients (segments, 4, n)."""
    n = air.trace_length
    coeffs = coset_intt(np.ascontiguousarray(evals.T), SHIFT)  # (4, size)
    if check and coeffs[:, segments * n:].any():
        raise ConstraintViolation(f"{air.name}: composition polynomial exceeds its degree bound")
    return coeffs[:, :segments * n].reshape(4, segments, n).transpose(1, 0, 2)
