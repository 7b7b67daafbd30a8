"""Out-of-domain evaluations and the DEEP quotient polynomial over the LDE."""

from __future__ import annotations

import numba
import numpy as np

from circuits.field import P
from circuits.kernels import add, einv, emul, ext_mul, ext_powers

BASIS = np.eye(4, dtype=np.uint64)  # 1, x, x^2, x^3 as extension elements
BLOCK = 1024  # points per block of the fused DEEP kernel (one inversion per block)
_P = np.uint64(P)


def recombine(coord_values: np.ndarray) -> np.ndarray:
    """Extension values of k ext columns from their 4k coordinate columns' values (4k, ..., 4)."""
    k = len(coord_values) // 4
    v = coord_values.reshape(k, 4, *coord_values.shape[1:])
    out = np.zeros((k,) + coord_values.shape[1:], dtype=np.uint64)
    for c in range(4):
        out = add(out, ext_mul(v[:, c], BASIS[c]))
    return out


@numba.njit(cache=True, parallel=True)
def _evaluate_rows(coeffs, powers):
    """out[k] = sum_j coeffs[k, j] * powers[j]: each row a polynomial, in parallel over rows."""
    out = np.empty((coeffs.shape[0], 4), dtype=np.uint64)
    for k in numba.prange(coeffs.shape[0]):
        a0, a1, a2, a3 = np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0)
        for j in range(coeffs.shape[1]):
            v = coeffs[k, j]
            a0 += v * powers[j, 0]
            a1 += v * powers[j, 1]
            a2 += v * powers[j, 2]
            a3 += v * powers[j, 3]
            if j % 4 == 3:  # a reduced value plus four products of reduced values < 2^64
                a0, a1, a2, a3 = a0 % _P, a1 % _P, a2 % _P, a3 % _P
        out[k, 0], out[k, 1], out[k, 2], out[k, 3] = a0 % _P, a1 % _P, a2 % _P, a3 % _P
    return out


def evaluate_at(coeffs: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Base-field polynomials (k, n) in coefficient form at one extension point -> (k, 4)."""
    return _evaluate_rows(coeffs, ext_powers(point, coeffs.shape[1]))


def coordinate_weights(weights: np.ndarray) -> np.ndarray:
    """Weights (k, 4) for k ext columns, spread over their 4k coordinate columns."""
    return ext_mul(BASIS[None, :, :], weights[:, None, :]).reshape(-1, 4)


def ext_sum(a: np.ndarray) -> np.ndarray:
    return a.sum(axis=0, dtype=np.uint64) % _P


@numba.njit(cache=True, inline="always")
def _accumulate(cols, weights, lo, hi, acc):
    """acc[j] += sum_k weights[k] * cols[k, lo + j]: column-major, so every column is streamed
    contiguously (wide traces have hundreds of columns)."""
    for k in range(cols.shape[0]):
        w0, w1, w2, w3 = weights[k, 0], weights[k, 1], weights[k, 2], weights[k, 3]
        for j in range(hi - lo):
            v = cols[k, lo + j]
            acc[j, 0] += v * w0
            acc[j, 1] += v * w1
            acc[j, 2] += v * w2
            acc[j, 3] += v * w3
        if k % 4 == 3 or k == cols.shape[0] - 1:  # reduced + four products of reduced < 2^64
            for j in range(hi - lo):
                for c in range(4):
                    acc[j, c] %= _P


@numba.njit(cache=True, parallel=True)
def _deep_kernel(x, main, aux, comp, wz_main, wz_aux, wz_comp, wgz_main, wgz_aux,
                 at_z, at_gz, z, gz):
    """D(x_i) = (sum_k wz[k] col_k(x_i) - at_z) / (x_i - z)
              + (sum_k wgz[k] col_k(x_i) - at_gz) / (x_i - gz), over blocks of points,
    where the z sum runs over main, aux and composition columns and the g z sum over the trace.

    Both fractions share one denominator (x - z)(x - gz), inverted per block with
    Montgomery's trick, so the whole polynomial costs one pass and no temporaries."""
    m = x.shape[0]
    out = np.empty((m, 4), dtype=np.uint64)
    nblocks = (m + BLOCK - 1) // BLOCK
    for blk in numba.prange(nblocks):
        lo = blk * BLOCK
        hi = min(m, lo + BLOCK)
        acc_z = np.zeros((hi - lo, 4), dtype=np.uint64)
        acc_gz = np.zeros((hi - lo, 4), dtype=np.uint64)
        _accumulate(main, wz_main, lo, hi, acc_z)
        _accumulate(aux, wz_aux, lo, hi, acc_z)
        _accumulate(comp, wz_comp, lo, hi, acc_z)
        _accumulate(main, wgz_main, lo, hi, acc_gz)
        _accumulate(aux, wgz_aux, lo, hi, acc_gz)
        num = acc_z  # overwritten in place by the numerators
        den = np.empty((hi - lo, 4), dtype=np.uint64)
        for j in range(hi - lo):
            # a = acc_z - at_z, b = acc_gz - at_gz, d1 = x - z, d2 = x - gz (extension).
            a0, a1 = (acc_z[j, 0] + _P - at_z[0]) % _P, (acc_z[j, 1] + _P - at_z[1]) % _P
            a2, a3 = (acc_z[j, 2] + _P - at_z[2]) % _P, (acc_z[j, 3] + _P - at_z[3]) % _P
            b0, b1 = (acc_gz[j, 0] + _P - at_gz[0]) % _P, (acc_gz[j, 1] + _P - at_gz[1]) % _P
            b2, b3 = (acc_gz[j, 2] + _P - at_gz[2]) % _P, (acc_gz[j, 3] + _P - at_gz[3]) % _P
            xi = x[lo + j]
            d10, d11 = (xi + _P - z[0]) % _P, (_P - z[1]) % _P
            d12, d13 = (_P - z[2]) % _P, (_P - z[3]) % _P
            d20, d21 = (xi + _P - gz[0]) % _P, (_P - gz[1]) % _P
            d22, d23 = (_P - gz[2]) % _P, (_P - gz[3]) % _P
            t0, t1, t2, t3 = emul(a0, a1, a2, a3, d20, d21, d22, d23)
            u0, u1, u2, u3 = emul(b0, b1, b2, b3, d10, d11, d12, d13)
            num[j, 0], num[j, 1] = (t0 + u0) % _P, (t1 + u1) % _P
            num[j, 2], num[j, 3] = (t2 + u2) % _P, (t3 + u3) % _P
            den[j, 0], den[j, 1], den[j, 2], den[j, 3] = emul(d10, d11, d12, d13,
                                                               d20, d21, d22, d23)
        # Batch-invert the block's denominators and finish.
        c0, c1, c2, c3 = np.uint64(1), np.uint64(0), np.uint64(0), np.uint64(0)
        pref = acc_gz  # reused as prefix products
        for j in range(hi - lo):
            pref[j, 0], pref[j, 1], pref[j, 2], pref[j, 3] = c0, c1, c2, c3
            c0, c1, c2, c3 = emul(c0, c1, c2, c3, den[j, 0], den[j, 1], den[j, 2], den[j, 3])
        c0, c1, c2, c3 = einv(c0, c1, c2, c3)
        for j in range(hi - lo - 1, -1, -1):
            i0, i1, i2, i3 = emul(pref[j, 0], pref[j, 1], pref[j, 2], pref[j, 3], c0, c1, c2, c3)
            c0, c1, c2, c3 = emul(c0, c1, c2, c3, den[j, 0], den[j, 1], den[j, 2], den[j, 3])
            out[lo + j, 0], out[lo + j, 1], out[lo + j, 2], out[lo + j, 3] = emul(
                num[j, 0], num[j, 1], num[j, 2], num[j, 3], i0, i1, i2, i3)
    return out


def deep_evals(x: np.ndarray, z: np.ndarray, gz: np.ndarray, coeffs: np.ndarray,
               columns: tuple[np.ndarray, np.ndarray, np.ndarray],
               ood: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """D(x) on the LDE: columns are base-coordinate LDEs (main (w, M), aux (4a, M), comp (4s, M));
    ood are (main (2, w, 4), aux (2, a, 4), comp (s, 4)); coefficients in the verifier's order."""
    main, aux, comp = columns
    w, a = len(main), len(aux) // 4
    a_main, b_main = coeffs[:w], coeffs[w:2 * w]
    a_aux, b_aux = coeffs[2 * w:2 * w + a], coeffs[2 * w + a:2 * w + 2 * a]
    c_comp = coeffs[2 * (w + a):]
    at_z = add(ext_sum(ext_mul(ood[0][0], a_main)), ext_sum(ext_mul(ood[2], c_comp)))
    at_gz = ext_sum(ext_mul(ood[0][1], b_main))
    if a:
        at_z = add(at_z, ext_sum(ext_mul(ood[1][0], a_aux)))
        at_gz = add(at_gz, ext_sum(ext_mul(ood[1][1], b_aux)))
    return _deep_kernel(x, main, aux, comp, a_main, coordinate_weights(a_aux),
                        coordinate_weights(c_comp), b_main, coordinate_weights(b_aux),
                        at_z, at_gz, z, gz)
