"""BabyBear and its quartic extension over numpy arrays: the one definition of the field.

Base-field elements are ``uint64`` arrays with values in ``[0, P)``; extension elements
(F_p[x]/(x^4 - 11)) are ``uint64`` arrays with a trailing axis of 4 (coefficients of
1, x, x^2, x^3).

The arithmetic of every operation is written once, as a *scalar formula* over uint64 values
(``add_mod``, ``ext_mul_coeffs``, ...): only ``+``, ``*``, ``%`` and comparisons, every
intermediate below 2^64, so the same code runs element-wise on numpy arrays, on numpy or Python
scalars, and compiled inside numba kernels. This module evaluates the formulas with numpy alone:
it is what the verifier runs, and it never imports numba. ``circuits.kernels`` compiles the same
formulas into numba ufuncs and loops and, once imported (the prover imports it), becomes the
*backend* of the operations below: same results, much faster on whole LDE columns.

``Fp`` and ``Fp4`` wrap such arrays with operator overloading so that AIR constraints are written
once, as ordinary expressions, and evaluated either on whole LDE columns (prover) or at a single
out-of-domain point (verifier).
"""

from __future__ import annotations

import math
import types
from typing import Callable, NamedTuple, Union

import numpy as np

P = 2013265921  # 2^31 - 2^27 + 1
TWO_ADICITY = 27
GENERATOR = 31  # generates the multiplicative group of F_p
W = 11  # x^4 = W in the extension
EXT_DEGREE = 4
EXT_BITS = EXT_DEGREE * math.log2(P)  # log2 |F_p^4| = 123.63..., kept fractional

U64 = np.uint64
_P = U64(P)
_W = U64(W)


# --- scalar formulas: the one definition of each operation's arithmetic -------------------------
# Operands are reduced (< P); results are reduced. circuits.kernels compiles these very functions.

def add_mod(a, b):
    """(a + b) mod P by a conditional subtraction: one comparison, cheap on numpy scalars and
    vectorized by LLVM in a compiled ufunc (a remainder by P is neither)."""
    s = a + b
    return s - _P * (s >= _P)


def sub_mod(a, b):
    """(a - b) mod P (P added first when a < b, so nothing wraps)."""
    return a + _P * (a < b) - b


def mul_mod(a, b):
    """(a * b) mod P: the product of two reduced elements fits in 62 bits."""
    return a * b % _P


def pow_mod(a, e):
    """a^e mod P for a non-negative integer exponent e (square and multiply)."""
    result = U64(1)
    while e > 0:
        if e & 1:
            result = mul_mod(result, a)
        a = mul_mod(a, a)
        e >>= 1
    return result


def inv_mod(a):
    """a^(P-2): the inverse of a non-zero element, 0 for 0."""
    return pow_mod(a, P - 2)


def ext_mul_coeffs(a0, a1, a2, a3, b0, b1, b2, b3):
    """Coefficients of (a0 + a1 x + a2 x^2 + a3 x^3)(b0 + ...) mod x^4 - W.

    Each sum of at most four reduced products stays below 2^64."""
    c0 = (a0 * b0 + _W * ((a1 * b3 + a2 * b2 + a3 * b1) % _P)) % _P
    c1 = (a0 * b1 + a1 * b0 + _W * ((a2 * b3 + a3 * b2) % _P)) % _P
    c2 = (a0 * b2 + a1 * b1 + a2 * b0 + _W * ((a3 * b3) % _P)) % _P
    c3 = (a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0) % _P
    return c0, c1, c2, c3


def ext_norm_coeffs(a0, a1, a2, a3):
    """The tower norms of a = A + B x, A = a0 + a2 u, B = a1 + a3 u over F_p[u]/(u^2 - W), u = x^2:
    (n0, n1, d) with A^2 - u B^2 = n0 + n1 u and d = n0^2 - W n1^2 in F_p (zero iff a is)."""
    n0 = (a0 * a0 + _W * (a2 * a2 % _P) + _P - _W * (U64(2) * a1 * a3 % _P) % _P) % _P
    n1 = (U64(2) * a0 * a2 % _P + _P - (a1 * a1 + _W * (a3 * a3 % _P)) % _P) % _P
    d = (n0 * n0 % _P + _P - _W * (n1 * n1 % _P) % _P) % _P
    return n0, n1, d


def ext_inv_from_norms(a0, a1, a2, a3, n0, n1, dinv):
    """a^-1 from ext_norm_coeffs and dinv = 1/d: a^-1 = (A - B x) / (A^2 - u B^2) and
    1 / (n0 + n1 u) = (n0 - n1 u) / d, i.e. (a0 - a1 x + a2 x^2 - a3 x^3)(m0 + m1 x^2)."""
    m0 = n0 * dinv % _P
    m1 = (_P - n1 * dinv % _P) % _P
    c0 = (a0 * m0 + _W * (a2 * m1 % _P)) % _P
    c1 = (_P - (a1 * m0 + _W * (a3 * m1 % _P)) % _P) % _P
    c2 = (a0 * m1 + a2 * m0) % _P
    c3 = (_P - (a1 * m1 + a3 * m0) % _P) % _P
    return c0, c1, c2, c3


def ext_inv_coeffs(a0, a1, a2, a3):
    """Coefficients of a^-1 (0 for 0)."""
    n0, n1, d = ext_norm_coeffs(a0, a1, a2, a3)
    return ext_inv_from_norms(a0, a1, a2, a3, n0, n1, inv_mod(d))


FORMULAS = (mul_mod, pow_mod, inv_mod, ext_mul_coeffs, ext_norm_coeffs, ext_inv_from_norms,
            ext_inv_coeffs)
"""The formulas compiled code may call (circuits.kernels registers them). add_mod and sub_mod
are compiled only as uint64 ufuncs: numba types their bool-times-uint64 term as int64, which
would turn a caller's uint64 arithmetic into floats."""


def _on_ints(formula: Callable) -> Callable:
    """The same formula's code run with Python-int constants (P, W and U64 = int): exact on
    Python integers, each operation a few times cheaper than on numpy scalars."""
    return types.FunctionType(formula.__code__, _INT_NAMESPACE, formula.__name__,
                              formula.__defaults__, formula.__closure__)


_INT_NAMESPACE = {**globals(), "_P": P, "_W": W, "U64": int}
_INT_NAMESPACE.update({f.__name__: _on_ints(f) for f in (add_mod, sub_mod, *FORMULAS)})
_add_int, _sub_int, _mul_int, _ext_mul_int, _ext_inv_int = (  # what Fp4Scalar runs
    _INT_NAMESPACE[f.__name__] for f in (add_mod, sub_mod, mul_mod, ext_mul_coeffs, ext_inv_coeffs))


# --- the numpy backend ---------------------------------------------------------------------------

def _u64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.uint64)


def _coords(a: np.ndarray) -> tuple:
    return tuple(a[..., k] for k in range(4))


def _ext(coeffs: tuple) -> np.ndarray:
    return np.stack(np.broadcast_arrays(*coeffs), axis=-1).astype(np.uint64, copy=False)


def _np_ext_mul(a, b) -> np.ndarray:
    a, b = _u64(a), _u64(b)
    if a.ndim == 1 and b.ndim == 1:  # one element each: numpy scalars beat four 0-d arrays
        return np.array(ext_mul_coeffs(*a.tolist(), *b.tolist()), dtype=np.uint64)
    if a.ndim == 1 or b.ndim == 1:  # many times one: one integer product with its matrix
        many, one = (a, b) if b.ndim == 1 else (b, a)
        return many @ _mul_matrix(one) % _P  # four products below 2^62 each
    return _ext(ext_mul_coeffs(*_coords(a), *_coords(b)))


def _mul_matrix(e: np.ndarray) -> np.ndarray:
    """Rows x^i * e (i < 4): a @ this = a * e for any element a (as a row of coordinates)."""
    e = e.tolist()
    return np.array([ext_mul_coeffs(*row, *e) for row in np.eye(4, dtype=np.uint64).tolist()],
                    dtype=np.uint64)


def _np_ext_inv(a) -> np.ndarray:
    a = _u64(a)
    return _ext(ext_inv_coeffs(*_coords(a)))


def _np_batch_inv(a) -> np.ndarray:
    """Montgomery's trick as a product tree: one inversion, O(log n) vectorized passes."""
    levels = [_u64(a)]
    while len(levels[-1]) > 1:
        x = levels[-1]
        even = len(x) & ~1
        levels.append(np.concatenate([mul_mod(x[0:even:2], x[1:even:2]), x[even:]]))
    out = np.atleast_1d(inv_mod(levels[-1]))[:len(levels[-1])]
    for x in reversed(levels[:-1]):  # the inverse of a pair's product times the partner
        up, even = out, len(x) & ~1
        out = np.empty_like(x)
        out[0:even:2] = mul_mod(up[:even // 2], x[1:even:2])
        out[1:even:2] = mul_mod(up[:even // 2], x[0:even:2])
        out[even:] = up[even // 2:]
    return out


def _np_ext_batch_inv(a) -> np.ndarray:
    """The norms d of every element inverted in one batch (see ext_inv_from_norms)."""
    a = _coords(_u64(a))
    n0, n1, d = ext_norm_coeffs(*a)
    return _ext(ext_inv_from_norms(*a, n0, n1, _np_batch_inv(d)))


def _np_powers(x, n: int) -> np.ndarray:
    """[1, x, ..., x^(n-1)] by doubling: the second half of each prefix is the first times x^k."""
    out = np.empty((n,) + np.shape(x), dtype=np.uint64)
    if n:
        out[0] = 1 if out.ndim == 1 else [1, 0, 0, 0]
    times = mul_mod if out.ndim == 1 else _np_ext_mul
    k, xk = 1, _u64(x)
    while k < n:
        m = min(k, n - k)
        out[k:k + m] = times(out[:m], xk)
        xk, k = times(xk, xk), 2 * k
    return out


def _np_lincomb(c, coeffs) -> np.ndarray:
    # Integer matrix products against the weights' 16-bit halves: each of up to 2^16 terms
    # is below 2^47, so every sum is exact in 64 bits.
    c, coeffs = _u64(c), _u64(coeffs)
    lo, hi = coeffs & U64(0xFFFF), coeffs >> U64(16)
    acc = np.zeros((c.shape[1], 4), dtype=np.uint64)
    for k in range(0, len(c), 1 << 16):
        rows = c[k:k + (1 << 16)].T
        acc = (acc + rows @ lo[k:k + (1 << 16)] % _P
               + (rows @ hi[k:k + (1 << 16)] % _P << U64(16))) % _P
    return acc


class Backend(NamedTuple):
    """The operations a backend implements; every other operation is built from these."""

    add: Callable  # (a, b) -> a + b, element-wise
    sub: Callable
    mul: Callable
    inv: Callable  # element-wise inverse, 0 for 0
    batch_inv: Callable  # inverses of a 1-D array of non-zero elements
    powers: Callable  # (x, n) -> [1, x, ..., x^(n-1)], base field
    ext_mul: Callable  # extension product, broadcasting over leading axes
    ext_inv: Callable  # extension inverse, 0 for 0
    ext_batch_inv: Callable  # inverses of an (n, 4) array of non-zero elements
    ext_powers: Callable  # (x (4,), n) -> (n, 4)
    lincomb: Callable  # (c (k, m) base, coeffs (k, 4) ext) -> sum_k c[k, m] * coeffs[k], (m, 4)


NUMPY = Backend(
    add=lambda a, b: add_mod(_u64(a), _u64(b)),
    sub=lambda a, b: sub_mod(_u64(a), _u64(b)),
    mul=lambda a, b: mul_mod(_u64(a), _u64(b)),
    inv=lambda a: inv_mod(_u64(a)),
    batch_inv=_np_batch_inv,
    powers=_np_powers,
    ext_mul=_np_ext_mul,
    ext_inv=_np_ext_inv,
    ext_batch_inv=_np_ext_batch_inv,
    ext_powers=_np_powers,
    lincomb=_np_lincomb,
)
"""The formulas evaluated by numpy: no compilation, no numba (what ``import verifier`` gets)."""

_backend = NUMPY


def use_backend(backend: Backend) -> Backend:
    """Make ``backend`` run every operation of this module; returns the previous one.
    circuits.kernels installs itself on import; tests switch back and forth."""
    global _backend
    previous, _backend = _backend, backend
    return previous


# --- base field ---------------------------------------------------------------------------------

def add(a, b):
    """(a + b) mod P, element-wise."""
    return _backend.add(a, b)


def sub(a, b):
    """(a - b) mod P, element-wise."""
    return _backend.sub(a, b)


def mul(a, b):
    """(a * b) mod P, element-wise."""
    return _backend.mul(a, b)


def inv(a):
    """Element-wise inverse (0 for 0)."""
    return _backend.inv(a)


def neg(a):
    """-a mod P."""
    return sub(U64(0), a)


def pow_(a, e: int) -> np.ndarray:
    """a^e element-wise for a non-negative integer exponent (pow_mod on the array)."""
    a = np.asarray(a, dtype=np.uint64)
    return np.array(np.broadcast_to(pow_mod(a, e), a.shape), dtype=np.uint64)


def batch_inv(a: np.ndarray) -> np.ndarray:
    """Inverses of a 1-D array of non-zero elements."""
    return _backend.batch_inv(a)


def root_of_unity(n: int) -> int:
    """The primitive n-th root of unity GENERATOR^((P-1)/n), n a power of two <= 2^27."""
    if n <= 0 or n & (n - 1) or n > 1 << TWO_ADICITY:
        raise ValueError(f"no root of unity of order {n}")
    return pow(GENERATOR, (P - 1) // n, P)


def powers(x, n: int) -> np.ndarray:
    """[1, x, x^2, ..., x^(n-1)] in the base field."""
    return _backend.powers(U64(x), n)


# --- extension field ----------------------------------------------------------------------------

def ext_mul(a, b):
    """Product in F_p[x]/(x^4 - 11), broadcasting over leading axes."""
    return _backend.ext_mul(a, b)


def ext_inv(a):
    """Inverse in the extension (0 maps to 0), broadcasting over leading axes."""
    return _backend.ext_inv(a)


def ext_batch_inv(a: np.ndarray) -> np.ndarray:
    """Inverses of an (n, 4) array of non-zero extension elements."""
    return _backend.ext_batch_inv(a)


def ext_powers(x: np.ndarray, n: int) -> np.ndarray:
    """[1, x, ..., x^(n-1)] for one extension element x of shape (4,)."""
    return _backend.ext_powers(_u64(x), n)


def lincomb(c: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """out[m] = sum_k c[k, m] * coeffs[k]: base rows (k, m) combined with extension weights (k, 4).

    Used for random linear combinations of constraint and trace columns (composition and DEEP
    polynomials) and for evaluating base-field polynomials at extension points (c = coefficients
    transposed, coeffs = powers of the point), or extension polynomials at base points
    (c = powers of the points, coeffs = the coefficients).
    """
    return _backend.lincomb(c, coeffs)


def ext_basis_weights(weights: np.ndarray) -> np.ndarray:
    """(4k, 4): row 4j + c is x^c * weights[j]. With it a sum of extension values times extension
    weights is one base ``lincomb`` over the values' coordinates (row 4j + c: coordinate c of
    value j)."""
    weights = np.asarray(weights, dtype=np.uint64)
    basis = np.eye(4, dtype=np.uint64)
    return ext_mul(basis[None, :, :], weights[:, None, :]).reshape(4 * len(weights), 4)


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


def ext_eval_at_base(coeffs: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate a polynomial with extension coefficients (n, 4) at base points x (m,): (m, 4),
    as one linear combination of the points' powers."""
    x = np.asarray(x, dtype=np.uint64)
    xp = np.empty((len(coeffs), len(x)), dtype=np.uint64)
    if len(coeffs):
        xp[0] = 1
    for k in range(1, len(coeffs)):
        xp[k] = mul(xp[k - 1], x)
    return lincomb(xp, np.asarray(coeffs, dtype=np.uint64))


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
    def stack(values) -> np.ndarray:
        """The extension values of a sequence of Fp / Fp4 scalars as one (k, 4) array."""
        return np.array([v.c if isinstance(v, Fp4Scalar) else v.v if isinstance(v, Fp4)
                         else ext_from_base(v.v) for v in values], dtype=np.uint64).reshape(-1, 4)

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


class Fp4Scalar(Fp4):
    """One extension element held as four Python integers instead of an array.

    The verifier evaluates every constraint at a single out-of-domain point: thousands of
    operations on one element each, where numpy's cost per call (array or scalar) would
    dominate. Between two such values (or with an integer constant) the operators apply the
    scalar formulas on Python integers (the same code with integer constants: _on_ints); with
    anything else they fall back to :class:`Fp4`'s array arithmetic. ``v`` gives the (4,)
    array, so code written for ``Fp4`` reads it unchanged. The coefficients are always Python
    ints (a numpy scalar among them could turn a formula's arithmetic into floats)."""

    __slots__ = ("c",)

    def __init__(self, v) -> None:  # (not calling Fp4.__init__: the array is made on demand)
        self.c = tuple(np.asarray(v, dtype=np.uint64).reshape(4).tolist())

    @staticmethod
    def _of(c: tuple) -> "Fp4Scalar":
        out = object.__new__(Fp4Scalar)
        out.c = c
        return out

    @staticmethod
    def of_rows(values: np.ndarray) -> list["Fp4Scalar"]:
        """The rows of a (k, 4) array of reduced extension elements as k scalars."""
        return [Fp4Scalar._of(tuple(row)) for row in np.asarray(values, np.uint64).tolist()]

    @property
    def v(self) -> np.ndarray:
        return np.array(self.c, dtype=np.uint64)

    def __add__(self, o: Scalar):
        a = self.c
        if isinstance(o, int):  # a constant only moves the first coefficient
            return self._of((_add_int(a[0], o % P), a[1], a[2], a[3]))
        if isinstance(o, Fp4Scalar):
            return self._of(_each(_add_int, a, o.c))
        return Fp4.__add__(self, o)

    __radd__ = __add__

    def __sub__(self, o: Scalar):
        a = self.c
        if isinstance(o, int):
            return self._of((_sub_int(a[0], o % P), a[1], a[2], a[3]))
        if isinstance(o, Fp4Scalar):
            return self._of(_each(_sub_int, a, o.c))
        return Fp4.__sub__(self, o)

    def __rsub__(self, o: Scalar):
        if isinstance(o, int):
            return self._of(_each(_sub_int, (o % P, 0, 0, 0), self.c))
        return Fp4.__rsub__(self, o)

    def __mul__(self, o: Scalar):
        a = self.c
        if isinstance(o, int):
            k = o % P
            return self._of(_each(_mul_int, a, (k, k, k, k)))
        if isinstance(o, Fp4Scalar):
            return self._of(_ext_mul_int(*a, *o.c))
        return Fp4.__mul__(self, o)

    __rmul__ = __mul__

    def __neg__(self):
        return 0 - self

    def __pow__(self, e: int):
        result, base = (1, 0, 0, 0), self.c
        while e > 0:
            if e & 1:
                result = _ext_mul_int(*result, *base)
            base = _ext_mul_int(*base, *base)
            e >>= 1
        return self._of(result)

    def inv(self) -> "Fp4Scalar":
        return self._of(_ext_inv_int(*self.c))


def _each(formula, a: tuple, b: tuple) -> tuple:
    """A base-field formula applied coefficient by coefficient."""
    return formula(a[0], b[0]), formula(a[1], b[1]), formula(a[2], b[2]), formula(a[3], b[3])
