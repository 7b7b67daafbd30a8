"""Numba kernels for the field operations of :mod:`circuits.field`: the prover's hot paths.

Every kernel compiles the scalar formulas that circuits.field defines (registered as jitable
below, so compiled code calls the very same functions); what is added here is only iteration:
element-wise ufuncs, Montgomery's batch inversion in independent chunks, running products and
blocked linear combinations. Importing this module installs :data:`KERNELS` as circuits.field's
backend, so ``Fp``/``Fp4`` expressions and every ``circuits.field`` operation run compiled in the
prover's process; the verifier never imports it (no numba, no llvmlite).

``emul`` and ``einv`` are the formulas as inlined numba functions, for other kernels (prover,
LogUp bus) to call on coefficients held in registers.

numba's on-disk cache keys a compiled function on its own source file only: after changing a
formula in circuits/field.py, delete the cached kernels (``find . -name '*.nb[ic]' -delete``)
so that the functions here, and the prover's, recompile with it.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import register_jitable

from circuits import field
from circuits.field import (FORMULAS, P, U64, Backend, add_mod, ext_inv_coeffs, ext_mul_coeffs,
                            inv_mod, mul_mod, sub_mod)

for _formula in FORMULAS:
    register_jitable(inline="always")(_formula)

_P = U64(P)
_U64_BINARY = ["uint64(uint64, uint64)"]

# Call the compiled NumPy ufuncs directly: numba's dispatching wrapper costs ~1 us per call,
# which adds up over the thousands of small-array operations of an AIR evaluation.
add = numba.vectorize(_U64_BINARY, cache=True, nopython=True)(add_mod).ufunc
sub = numba.vectorize(_U64_BINARY, cache=True, nopython=True)(sub_mod).ufunc
mul = numba.vectorize(_U64_BINARY, cache=True, nopython=True)(mul_mod).ufunc
inv = numba.vectorize(["uint64(uint64)"], cache=True, nopython=True)(inv_mod).ufunc

emul = numba.njit(cache=True, inline="always")(ext_mul_coeffs)
einv = numba.njit(cache=True, inline="always")(ext_inv_coeffs)


@numba.guvectorize(["void(uint64[:], uint64[:], uint64[:])"], "(k),(k)->(k)", cache=True,
                   nopython=True)
def _ext_mul(a, b, out):
    out[0], out[1], out[2], out[3] = emul(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3])


@numba.guvectorize(["void(uint64[:], uint64[:])"], "(k)->(k)", cache=True, nopython=True)
def _ext_inv(a, out):
    out[0], out[1], out[2], out[3] = einv(a[0], a[1], a[2], a[3])


ext_mul = _ext_mul.ufunc
ext_inv = _ext_inv.ufunc

CHUNK = 1 << 14  # batch inversions run in independent chunks, one exponentiation each
PARALLEL_MIN = 1 << 15  # below this many elements the serial kernel is faster


def _serial_and_parallel(kernel):
    """Compile a chunked kernel twice: small inputs skip the thread pool's start-up cost."""
    return (numba.njit(cache=True)(kernel), numba.njit(cache=True, parallel=True)(kernel))


def _batch_inv(a):
    n = a.shape[0]
    out = np.empty(n, dtype=np.uint64)
    for chunk in numba.prange((n + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        acc = U64(1)
        for i in range(lo, hi):
            out[i] = acc
            acc = mul_mod(acc, a[i])
        acc = inv_mod(acc)
        for i in range(hi - 1, lo - 1, -1):
            out[i] = mul_mod(out[i], acc)
            acc = mul_mod(acc, a[i])
    return out


_batch_inv_kernels = _serial_and_parallel(_batch_inv)


def batch_inv(a: np.ndarray) -> np.ndarray:
    """Inverses of a 1-D array of non-zero elements (Montgomery's trick, chunked in parallel;
    a zero spoils its whole chunk)."""
    return _batch_inv_kernels[len(a) >= PARALLEL_MIN](a)


def _ext_batch_inv(a):
    n = a.shape[0]
    out = np.empty((n, 4), dtype=np.uint64)
    for chunk in numba.prange((n + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        c0, c1, c2, c3 = U64(1), U64(0), U64(0), U64(0)
        for i in range(lo, hi):
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = c0, c1, c2, c3
            c0, c1, c2, c3 = emul(c0, c1, c2, c3, a[i, 0], a[i, 1], a[i, 2], a[i, 3])
        c0, c1, c2, c3 = einv(c0, c1, c2, c3)
        for i in range(hi - 1, lo - 1, -1):
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = emul(
                out[i, 0], out[i, 1], out[i, 2], out[i, 3], c0, c1, c2, c3)
            c0, c1, c2, c3 = emul(c0, c1, c2, c3, a[i, 0], a[i, 1], a[i, 2], a[i, 3])
    return out


_ext_batch_inv_kernels = _serial_and_parallel(_ext_batch_inv)


def ext_batch_inv(a: np.ndarray) -> np.ndarray:
    """Inverses of an (n, 4) array of non-zero extension elements (chunked Montgomery trick)."""
    return _ext_batch_inv_kernels[len(a) >= PARALLEL_MIN](a)


@numba.njit(cache=True)
def powers(x: np.uint64, n: int) -> np.ndarray:
    """[1, x, x^2, ..., x^(n-1)] in the base field."""
    out = np.empty(n, dtype=np.uint64)
    acc = U64(1)
    for i in range(n):
        out[i] = acc
        acc = mul_mod(acc, x)
    return out


@numba.njit(cache=True)
def ext_powers(x: np.ndarray, n: int) -> np.ndarray:
    """[1, x, ..., x^(n-1)] for one extension element x of shape (4,)."""
    out = np.empty((n, 4), dtype=np.uint64)
    c0, c1, c2, c3 = U64(1), U64(0), U64(0), U64(0)
    for i in range(n):
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = c0, c1, c2, c3
        c0, c1, c2, c3 = emul(c0, c1, c2, c3, x[0], x[1], x[2], x[3])
    return out


def _lincomb(c, coeffs):
    k, m = c.shape
    out = np.empty((m, 4), dtype=np.uint64)
    for blk in numba.prange((m + CHUNK - 1) // CHUNK):
        for i in range(blk * CHUNK, min(m, (blk + 1) * CHUNK)):
            # Accumulate in registers, reducing every third term: a reduced value plus three
            # products of reduced values stays below 2^64.
            a0, a1, a2, a3 = U64(0), U64(0), U64(0), U64(0)
            for j in range(k):
                v = c[j, i]
                a0 += v * coeffs[j, 0]
                a1 += v * coeffs[j, 1]
                a2 += v * coeffs[j, 2]
                a3 += v * coeffs[j, 3]
                if j % 3 == 2:
                    a0, a1, a2, a3 = a0 % _P, a1 % _P, a2 % _P, a3 % _P
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = a0 % _P, a1 % _P, a2 % _P, a3 % _P
    return out


_lincomb_kernels = _serial_and_parallel(_lincomb)


def lincomb(c: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """out[m] = sum_k c[k, m] * coeffs[k] (see circuits.field.lincomb); threads split the points."""
    c = np.ascontiguousarray(c, dtype=np.uint64)
    return _lincomb_kernels[c.shape[1] >= PARALLEL_MIN](c, np.ascontiguousarray(coeffs, np.uint64))


KERNELS = Backend(add=add, sub=sub, mul=mul, inv=inv, batch_inv=batch_inv,
                  powers=lambda x, n: powers(U64(x), n), ext_mul=ext_mul, ext_inv=ext_inv,
                  ext_batch_inv=ext_batch_inv, ext_powers=ext_powers, lincomb=lincomb)
"""The compiled backend of circuits.field."""

field.use_backend(KERNELS)
