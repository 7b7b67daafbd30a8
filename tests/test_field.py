"""BabyBear and its quartic extension: field laws (hypothesis) against Python integers, on
both backends (numpy, what the verifier runs; the numba kernels, what the prover runs)."""

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from circuits import field
from circuits.field import (P, W, Fp, Fp4, Fp4Scalar, add, batch_inv, ext_basis_weights,
                            ext_batch_inv, ext_eval_at_base, ext_eval_poly, ext_from_base, ext_inv,
                            ext_mul, ext_pow, ext_powers, inv, lincomb, mul, neg, pow_, powers,
                            root_of_unity, sub)
from circuits.kernels import KERNELS

BACKENDS = pytest.mark.parametrize("backend", [field.NUMPY, KERNELS], ids=["numpy", "kernels"])


@contextmanager
def running(backend):
    previous = field.use_backend(backend)
    try:
        yield
    finally:
        field.use_backend(previous)


felt = st.integers(0, P - 1)
ext = st.lists(felt, min_size=4, max_size=4)
EDGE = [0, 1, 2, P - 1, P - 2, (P - 1) // 2, 1 << 30, 11]


def ref_ext_mul(a, b):
    c = [0] * 7
    for i in range(4):
        for j in range(4):
            c[i + j] += a[i] * b[j]
    for k in range(6, 3, -1):
        c[k - 4] += W * c[k]
    return [v % P for v in c[:4]]


def arr(x):
    return np.array(x, dtype=np.uint64)


@BACKENDS
@given(felt, felt, felt)
def test_base_ops_match_integers(backend, a, b, c):
    with running(backend):
        A, B, C = arr(a), arr(b), arr(c)
        assert int(add(A, B)) == (a + b) % P
        assert int(sub(A, B)) == (a - b) % P
        assert int(mul(A, B)) == a * b % P
        assert int(neg(A)) == -a % P
        assert int(mul(A, add(B, C))) == int(add(mul(A, B), mul(A, C)))
        if a:
            assert int(mul(A, inv(A))) == 1


@BACKENDS
def test_base_edge_values(backend):
    with running(backend):
        e = arr(EDGE)
        a, b = np.meshgrid(e, e)
        assert (mul(a, b) == arr([[x * y % P for x in EDGE] for y in EDGE])).all()
        assert (add(a, b) == arr([[(x + y) % P for x in EDGE] for y in EDGE])).all()
        nz = e[e != 0]
        assert (mul(batch_inv(nz), nz) == 1).all()


@BACKENDS
@given(ext, ext, ext)
def test_ext_ring_laws(backend, a, b, c):
    with running(backend):
        A, B, C = arr(a), arr(b), arr(c)
        assert ext_mul(A, B).tolist() == ref_ext_mul(a, b)
        assert (ext_mul(A, B) == ext_mul(B, A)).all()
        assert (ext_mul(ext_mul(A, B), C) == ext_mul(A, ext_mul(B, C))).all()
        assert (ext_mul(A, add(B, C)) == add(ext_mul(A, B), ext_mul(A, C))).all()


@BACKENDS
@given(ext)
def test_ext_inverse(backend, a):
    with running(backend):
        A = arr(a)
        if not any(a):
            assert not ext_inv(A).any()
            return
        assert ext_mul(A, ext_inv(A)).tolist() == [1, 0, 0, 0]


@BACKENDS
@settings(max_examples=20)
@given(st.lists(ext.filter(any), min_size=1, max_size=40))
def test_ext_batch_inverse_matches_single(backend, xs):
    with running(backend):
        A = arr(xs)
        assert (ext_batch_inv(A) == ext_inv(A)).all()


@BACKENDS
@given(ext, st.integers(0, 300))
def test_ext_pow_and_frobenius(backend, a, e):
    with running(backend):
        A = arr(a)
        expect = arr([1, 0, 0, 0])
        for _ in range(e):
            expect = ext_mul(expect, A)
        assert (ext_pow(A, e) == expect).all()
        # a^(p^4) = a: the extension has p^4 elements, so x^4 - 11 is irreducible.
        assert (ext_pow(ext_pow(ext_pow(ext_pow(A, P), P), P), P) == A).all()


@BACKENDS
def test_extension_is_a_field(backend):
    with running(backend):
        # For p = 1 (mod 4), x^4 - a is irreducible over F_p iff a is not a square (the binomial
        # irreducibility criterion), so F_p[x]/(x^4 - 11) is the field F_p^4.
        assert pow(W, (P - 1) // 2, P) == P - 1 and P % 4 == 1
        x = arr([0, 1, 0, 0])
        assert ext_pow(x, P ** 4 - 1).tolist() == [1, 0, 0, 0]
        assert ext_pow(x, P ** 2 - 1).tolist() != [1, 0, 0, 0]


@BACKENDS
def test_roots_of_unity(backend):
    with running(backend):
        for log_n in [1, 5, 27]:
            n = 1 << log_n
            w = root_of_unity(n)
            assert pow(w, n, P) == 1 and pow(w, n // 2, P) == P - 1


@BACKENDS
def test_powers_lincomb_and_horner(backend):
    with running(backend):
        rng = np.random.default_rng(7)
        c = rng.integers(0, P, (5, 9), dtype=np.uint64)
        weights = rng.integers(0, P, (5, 4), dtype=np.uint64)
        out = lincomb(c, weights)
        for m in range(9):
            expect = [sum(int(c[k, m]) * int(weights[k, j]) for k in range(5)) % P for j in range(4)]
            assert out[m].tolist() == expect
        x = 12345
        assert powers(np.uint64(x), 5).tolist() == [pow(x, i, P) for i in range(5)]
        assert int(pow_(arr(x), 77)) == pow(x, 77, P)
        coeffs = rng.integers(0, P, (6, 4), dtype=np.uint64)
        pt = arr([3, 1, 4, 1])
        expect = np.zeros(4, dtype=np.uint64)
        for i, cf in enumerate(coeffs):
            expect = add(expect, ext_mul(cf, ext_pow(pt, i)))
        assert (ext_eval_poly(coeffs, pt) == expect).all()


@BACKENDS
@given(felt, ext)
def test_wrappers_mix_base_and_extension(backend, a, b):
    with running(backend):
        x, y = Fp(arr(a)), Fp4(arr(b))
        assert ((x * y).v == ext_mul(ext_from_base(arr(a)), arr(b))).all()
        assert ((x - y).v == sub(ext_from_base(arr(a)), arr(b))).all()
        assert ((y - x + x).v == arr(b)).all()
        assert int((3 - x).v) == (3 - a) % P
        assert ((x * 5 + 1).v == (a * 5 + 1) % P).all()


vectors = st.integers(0, 9).flatmap(lambda n: st.lists(ext, min_size=n, max_size=n))


@settings(max_examples=40)
@given(vectors, vectors, ext)
def test_backends_agree_on_arrays(xs, ys, e):
    # Every shape path of the numpy backend (pairs, one-times-many, broadcasting, batches of
    # any length, including the product tree's odd levels) against the compiled kernels.
    n = min(len(xs), len(ys))
    A, B, E = arr(xs[:n]).reshape(n, 4), arr(ys[:n]).reshape(n, 4), arr(e)
    for op in (lambda: ext_mul(A, B), lambda: ext_mul(A, E), lambda: ext_mul(E, A),
               lambda: ext_mul(A[:, None], B[None]), lambda: ext_inv(A), lambda: add(A, B),
               lambda: sub(A, E), lambda: mul(A, B), lambda: lincomb(A, B),
               lambda: ext_basis_weights(A), lambda: ext_powers(E, n),
               lambda: powers(A[0, 0] if n else 3, n)):
        with running(field.NUMPY):
            want = op()
        with running(KERNELS):
            assert (want == op()).all()
    nz = A[A.any(axis=1)]
    for backend in (field.NUMPY, KERNELS):
        with running(backend):
            assert (ext_batch_inv(nz) == ext_inv(nz)).all()
            units = nz[:, 0] % np.uint64(P - 1) + np.uint64(1)
            assert (mul(batch_inv(units), units) == 1).all()


@given(ext, ext, felt)
def test_scalar_wrapper_matches_arrays(a, b, k):
    # Fp4Scalar (the verifier's one-point evaluation) against Fp4 arrays, mixed operands too.
    xa, xb, sa, sb = Fp4(arr(a)), Fp4(arr(b)), Fp4Scalar(arr(a)), Fp4Scalar(arr(b))
    for f in (lambda x, y: x * y, lambda x, y: x + y, lambda x, y: x - y, lambda x, y: k - x,
              lambda x, y: x * k + 1, lambda x, y: -x, lambda x, y: x ** 7, lambda x, y: y * x.inv(),
              lambda x, y: x * xb, lambda x, y: xa - y, lambda x, y: x * Fp(arr(k))):
        assert (f(sa, sb).v == f(xa, xb).v).all()
    assert (Fp4.stack([sa, xb, Fp(arr(k))]) == arr([a, b, [k, 0, 0, 0]])).all()


@given(ext, ext, felt)
def test_scalar_wrapper_keeps_python_ints(a, b, k):
    # a numpy scalar among the coefficients could turn a formula's arithmetic into floats
    sa, sb = Fp4Scalar(arr(a)), Fp4Scalar(arr(b))
    values = [sa, sa * sb, sa + sb, sa - sb, k - sa, sa * k + 1, -sa, sa ** 7, sa.inv(),
              *Fp4Scalar.of_rows(arr([a, b]))]
    assert all(type(c) is int and 0 <= c < P for v in values for c in v.c)


@BACKENDS
def test_extension_polynomials_at_base_points(backend):
    with running(backend):
        rng = np.random.default_rng(5)
        coeffs, x = rng.integers(0, P, (9, 4), dtype=np.uint64), rng.integers(0, P, 6, dtype=np.uint64)
        assert (ext_eval_at_base(coeffs, x) == ext_eval_poly(coeffs, ext_from_base(x))).all()
        weights, values = coeffs[:5], rng.integers(0, P, (5, 4), dtype=np.uint64)
        as_base = lincomb(values.reshape(-1, 1), ext_basis_weights(weights))[0]
        assert (as_base == ext_mul(values, weights).sum(axis=0) % P).all()


def test_numpy_lincomb_sums_more_rows_than_one_product_holds():
    rng = np.random.default_rng(6)
    c = rng.integers(P - 1000, P, ((1 << 16) + 3, 2), dtype=np.uint64)
    w = rng.integers(P - 1000, P, ((1 << 16) + 3, 4), dtype=np.uint64)
    with running(field.NUMPY):
        got = lincomb(c, w)
    expect = [[sum(int(c[k, m]) * int(w[k, j]) for k in range(len(c))) % P for j in range(4)]
              for m in range(2)]
    assert got.tolist() == expect
