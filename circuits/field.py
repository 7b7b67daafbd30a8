"""BabyBear and its quartic extension, vectorized over numpy arrays.

Base-field elements are ``uint64`` arrays with values in ``[0, P)``; extension elements
(F_p[x]/(x^4 - 11)) are ``uint64`` arrays with a trailing axis of 4 (coefficients of
1, x, x^2, x^3). The element-wise kernels are numba ufuncs: numpy's own ``%`` on uint64 is a
hardware division and ~5x slower on whole columns.

``Fp`` and ``Fp4`` wrap such arrays with operator overloading so that AIR constraints are written
once, as ordinary expressions, and evaluated either on whole LDE columns (prover) or at a single
out-of-domain point (verifier).
"""

from __future__ import annotations

from typing import Union

import numba
import numpy as np

P = 2013265921  # 2^31 - 2^27 + 1
TWO_ADICITY = 27
GENERATOR = 31  # generates the multiplicative group of F_p
W = 11  # x^4 = W in the extension
EXT_DEGREE = 4
EXT_BITS = 4 * 31  # log2 of the extension field size, rounded down

_P = np.uint64(P)
_W = np.uint64(W)
U64 = np.uint64


# --- base field kernels -------------------------------------------------------------------------

@numba.vectorize(["uint64(uint64, uint64)"], cache=True, nopython=True)
def add(a, b):
    """(a + b) mod P."""
    s = a + b
    return s - _P if s >= _P else s


@numba.vectorize(["uint64(uint64, uint64)"], cache=True, nopython=True)
def sub(a, b):
    """(a - b) mod P."""
    return a - b if a >= b else a + _P - b


@numba.vectorize(["uint64(uint64, uint64)"], cache=True, nopython=True)
def mul(a, b):
    """(a * b) mod P (the product of two reduced elements fits in 62 bits)."""
    return (a * b) % _P


@numba.njit(cache=True, inline="always")
def _pow_scalar(a, e):
    result = U64(1)
    base = a % _P
    while e > 0:
        if e & 1:
            result = (result * base) % _P
        base = (base * base) % _P
        e >>= 1
    return result


@numba.vectorize(["uint64(uint64)"], cache=True, nopython=True)
def inv(a):
    """a^(P-2): the inverse of a non-zero element, 0 for 0."""
    return _pow_scalar(a, P - 2)


# Call the compiled NumPy ufuncs directly: numba's dispatching wrapper costs ~1 us per call,
# which adds up over the thousands of small-array operations of an AIR evaluation.
add, sub, mul, inv = add.ufunc, sub.ufunc, mul.ufunc, inv.ufunc


def neg(a: np.ndarray) -> np.ndarray:
    """-a mod P."""
    return sub(U64(0), a)


def pow_(a: np.ndarray, e: int) -> np.ndarray:
    """a^e element-wise for a non-negative integer exponent."""
    a = np.asarray(a, dtype=np.uint64)
    result = np.ones_like(a)
    base = a
    while e > 0:
        if e & 1:
            result = mul(result, base)
        base = mul(base, base)
        e >>= 1
    return result


CHUNK = 1 << 14  # batch inversions run in independent chunks, one exponentiation each


def _serial_and_parallel(kernel):
    """Compile a chunked kernel twice: small inputs skip the thread pool's start-up cost."""
    return (numba.njit(cache=True)(kernel), numba.njit(cache=True, parallel=True)(kernel))


PARALLEL_MIN = 1 << 15  # below this many elements the serial kernel is faster


def _batch_inv(a):
    n = a.shape[0]
    out = np.empty(n, dtype=np.uint64)
    for chunk in numba.prange((n + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        acc = U64(1)
        for i in range(lo, hi):
            out[i] = acc
            acc = (acc * a[i]) % _P
        acc = _pow_scalar(acc, P - 2)
        for i in range(hi - 1, lo - 1, -1):
            out[i] = (out[i] * acc) % _P
            acc = (acc * a[i]) % _P
    return out


_batch_inv_kernels = _serial_and_parallel(_batch_inv)


def batch_inv(a: np.ndarray) -> np.ndarray:
    """Inverses of a 1-D array of non-zero elements (Montgomery's trick, chunked in parallel)."""
    return _batch_inv_kernels[len(a) >= PARALLEL_MIN](a)


def root_of_unity(n: int) -> int:
    """The primitive n-th root of unity GENERATOR^((P-1)/n), n a power of two <= 2^27."""
    if n <= 0 or n & (n - 1) or n > 1 << TWO_ADICITY:
        raise ValueError(f"no root of unity of order {n}")
    return pow(GENERATOR, (P - 1) // n, P)


@numba.njit(cache=True)
def powers(x: np.uint64, n: int) -> np.ndarray:
    """[1, x, x^2, ..., x^(n-1)] in the base field."""
    out = np.empty(n, dtype=np.uint64)
    acc = U64(1)
    for i in range(n):
        out[i] = acc
        acc = (acc * x) % _P
    return out


# --- extension field kernels --------------------------------------------------------------------

@numba.njit(cache=True, inline="always")
def _emul(a0, a1, a2, a3, b0, b1, b2, b3):
    # Each sum of at most four reduced products stays below 2^64.
    c0 = (a0 * b0 + _W * ((a1 * b3 + a2 * b2 + a3 * b1) % _P)) % _P
    c1 = (a0 * b1 + a1 * b0 + _W * ((a2 * b3 + a3 * b2) % _P)) % _P
    c2 = (a0 * b2 + a1 * b1 + a2 * b0 + _W * ((a3 * b3) % _P)) % _P
    c3 = (a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0) % _P
    return c0, c1, c2, c3


@numba.guvectorize(["void(uint64[:], uint64[:], uint64[:])"], "(k),(k)->(k)", cache=True,
                   nopython=True)
def ext_mul(a, b, out):
    """Product in F_p[x]/(x^4 - 11), broadcasting over leading axes."""
    c0, c1, c2, c3 = _emul(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3])
    out[0] = c0
    out[1] = c1
    out[2] = c2
    out[3] = c3


ext_mul = ext_mul.ufunc  # the compiled generalized ufunc itself (see add, sub, mul above)


@numba.njit(cache=True, inline="always")
def _m(a, b):
    return (a * b) % _P


@numba.njit(cache=True, inline="always")
def _s(a, b):
    return a - b if a >= b else a + _P - b


@numba.njit(cache=True, inline="always")
def _a(a, b):
    s = a + b
    return s - _P if s >= _P else s


@numba.njit(cache=True, inline="always")
def _einv(a0, a1, a2, a3):
    # Tower F_p[u]/(u^2 - W) with u = x^2: a = A + B x, a^-1 = (A - B x) / (A^2 - u B^2).
    n0 = _s(_a(_m(a0, a0), _m(_W, _m(a2, a2))), _m(_W, _a(_m(a1, a3), _m(a1, a3))))
    n1 = _s(_a(_m(a0, a2), _m(a0, a2)), _a(_m(a1, a1), _m(_W, _m(a3, a3))))
    d = _s(_m(n0, n0), _m(_W, _m(n1, n1)))
    dinv = _pow_scalar(d, P - 2)
    m0 = _m(n0, dinv)
    m1 = _s(U64(0), _m(n1, dinv))
    c0 = _a(_m(a0, m0), _m(_W, _m(a2, m1)))
    c2 = _a(_m(a0, m1), _m(a2, m0))
    c1 = _s(U64(0), _a(_m(a1, m0), _m(_W, _m(a3, m1))))
    c3 = _s(U64(0), _a(_m(a1, m1), _m(a3, m0)))
    return c0, c1, c2, c3


@numba.guvectorize(["void(uint64[:], uint64[:])"], "(k)->(k)", cache=True, nopython=True)
def ext_inv(a, out):
    """Inverse in the extension (0 maps to 0), broadcasting over leading axes."""
    c0, c1, c2, c3 = _einv(a[0], a[1], a[2], a[3])
    out[0] = c0
    out[1] = c1
    out[2] = c2
    out[3] = c3


ext_inv = ext_inv.ufunc


def _ext_batch_inv(a):
    n = a.shape[0]
    out = np.empty((n, 4), dtype=np.uint64)
    for chunk in numba.prange((n + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        c0, c1, c2, c3 = U64(1), U64(0), U64(0), U64(0)
        for i in range(lo, hi):
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = c0, c1, c2, c3
            c0, c1, c2, c3 = _emul(c0, c1, c2, c3, a[i, 0], a[i, 1], a[i, 2], a[i, 3])
        c0, c1, c2, c3 = _einv(c0, c1, c2, c3)
        for i in range(hi - 1, lo - 1, -1):
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = _emul(
                out[i, 0], out[i, 1], out[i, 2], out[i, 3], c0, c1, c2, c3)
            c0, c1, c2, c3 = _emul(c0, c1, c2, c3, a[i, 0], a[i, 1], a[i, 2], a[i, 3])
    return out


_ext_batch_inv_kernels = _serial_and_parallel(_ext_batch_inv)


def ext_batch_inv(a: np.ndarray) -> np.ndarray:
    """Inverses of an (n, 4) array of non-zero extension elements (chunked Montgomery trick)."""
    return _ext_batch_inv_kernels[len(a) >= PARALLEL_MIN](a)


@numba.njit(cache=True)
def ext_powers(x: np.ndarray, n: int) -> np.ndarray:
    """[1, x, ..., x^(n-1)] for one extension element x of shape (4,)."""
    out = np.empty((n, 4), dtype=np.uint64)
    c0, c1, c2, c3 = U64(1), U64(0), U64(0), U64(0)
    for i in range(n):
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = c0, c1, c2, c3
        c0, c1, c2, c3 = _emul(c0, c1, c2, c3, x[0], x[1], x[2], x[3])
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
    """out[m] = sum_k c[k, m] * coeffs[k]: base rows (k, m) combined with extension weights (k, 4).

    Used for random linear combinations of constraint and trace columns (composition and DEEP
    polynomials) and for evaluating base-field polynomials at extension points (c = coefficients
    transposed, coeffs = powers of the point).
    """
    return _lincomb_kernels[c.shape[1] >= PARALLEL_MIN](c, coeffs)  # threads split the points


def ext_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of extension elements (coordinate-wise)."""
    return add(a, b)


def ext_sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Difference of extension elements (coordinate-wise)."""
    return sub(a, b)


def ext_scale(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Extension elements a (..., 4) times base elements s (...)."""
    return mul(a, np.asarray(s, dtype=np.uint64)[..., None])


def ext_from_base(a: np.ndarray) -> np.ndarray:
    """Embed base elements (...) as extension elements (..., 4)."""
    a = np.asarray(a, dtype=np.uint64)
    out = np.zeros(a.shape + (4,), dtype=np.uint64)
    out[..., 0] = a
    return out


def ext_pow(a: np.ndarray, e: int) -> np.ndarray:
    """a^e for extension elements and a non-negative integer exponent."""
    a = np.asarray(a, dtype=np.uint64)
    result = ext_from_base(np.ones(a.shape[:-1], dtype=np.uint64))
    base = a
    while e > 0:
        if e & 1:
            result = ext_mul(result, base)
        base = ext_mul(base, base)
        e >>= 1
    return result


def ext_eval_poly(coeffs: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate a polynomial with extension coefficients (n, 4) at points x (..., 4) by Horner."""
    acc = np.zeros(np.broadcast_shapes(x.shape), dtype=np.uint64)
    for c in coeffs[::-1]:
        acc = add(ext_mul(acc, x), c)
    return acc


# --- expression wrappers for AIR constraints ----------------------------------------------------

Scalar = Union[int, "Fp", "Fp4"]


def _const(v: int) -> np.uint64:
    return np.uint64(v % P)


class Fp:
    """A vector (or scalar) of base-field elements with field operators."""

    __slots__ = ("v",)

    def __init__(self, v) -> None:
        self.v = np.asarray(v, dtype=np.uint64)

    def __add__(self, o: Scalar):
        if isinstance(o, Fp4):
            return o + self
        return Fp(add(self.v, o.v if isinstance(o, Fp) else _const(o)))

    __radd__ = __add__

    def __sub__(self, o: Scalar):
        if isinstance(o, Fp4):
            return Fp4(sub(ext_from_base(self.v), o.v))
        return Fp(sub(self.v, o.v if isinstance(o, Fp) else _const(o)))

    def __rsub__(self, o: int):
        return Fp(sub(_const(o), self.v))

    def __mul__(self, o: Scalar):
        if isinstance(o, Fp4):
            return o * self
        return Fp(mul(self.v, o.v if isinstance(o, Fp) else _const(o)))

    __rmul__ = __mul__

    def __neg__(self):
        return Fp(neg(self.v))

    def __pow__(self, e: int):
        return Fp(pow_(self.v, e))

    def inv(self) -> "Fp":
        return Fp(inv(self.v))

    def ext(self) -> "Fp4":
        return Fp4(ext_from_base(self.v))


class Fp4:
    """A vector (or scalar) of extension-field elements (trailing axis 4) with field operators."""

    __slots__ = ("v",)

    def __init__(self, v) -> None:
        self.v = np.asarray(v, dtype=np.uint64)

    @staticmethod
    def _coerce(o: Scalar) -> np.ndarray:
        if isinstance(o, Fp4):
            return o.v
        if isinstance(o, Fp):
            return ext_from_base(o.v)
        return ext_from_base(_const(o))

    def __add__(self, o: Scalar):
        return Fp4(add(self.v, self._coerce(o)))

    __radd__ = __add__

    def __sub__(self, o: Scalar):
        return Fp4(sub(self.v, self._coerce(o)))

    def __rsub__(self, o: Scalar):
        return Fp4(sub(self._coerce(o), self.v))

    def __mul__(self, o: Scalar):
        if isinstance(o, Fp4):
            return Fp4(ext_mul(self.v, o.v))
        if isinstance(o, Fp):
            return Fp4(ext_scale(self.v, o.v))
        return Fp4(mul(self.v, _const(o)))

    __rmul__ = __mul__

    def __neg__(self):
        return Fp4(sub(U64(0), self.v))

    def __pow__(self, e: int):
        return Fp4(ext_pow(self.v, e))

    def inv(self) -> "Fp4":
        return Fp4(ext_inv(self.v))
