"""BabyBear and its quartic extension: field laws (hypothesis) against Python integers."""

import numpy as np
from hypothesis import given, settings, strategies as st

from circuits.field import (P, W, Fp, Fp4, add, batch_inv, ext_batch_inv, ext_eval_poly,
                            ext_from_base, ext_inv, ext_mul, ext_pow, inv, lincomb, mul, neg,
                            pow_, powers, root_of_unity, sub)

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


@given(felt, felt, felt)
def test_base_ops_match_integers(a, b, c):
    A, B, C = arr(a), arr(b), arr(c)
    assert int(add(A, B)) == (a + b) % P
    assert int(sub(A, B)) == (a - b) % P
    assert int(mul(A, B)) == a * b % P
    assert int(neg(A)) == -a % P
    assert int(mul(A, add(B, C))) == int(add(mul(A, B), mul(A, C)))
    if a:
        assert int(mul(A, inv(A))) == 1


def test_base_edge_values():
    e = arr(EDGE)
    a, b = np.meshgrid(e, e)
    assert (mul(a, b) == arr([[x * y % P for x in EDGE] for y in EDGE])).all()
    assert (add(a, b) == arr([[(x + y) % P for x in EDGE] for y in EDGE])).all()
    nz = e[e != 0]
    assert (mul(batch_inv(nz), nz) == 1).all()


@given(ext, ext, ext)
def test_ext_ring_laws(a, b, c):
    A, B, C = arr(a), arr(b), arr(c)
    assert ext_mul(A, B).tolist() == ref_ext_mul(a, b)
    assert (ext_mul(A, B) == ext_mul(B, A)).all()
    assert (ext_mul(ext_mul(A, B), C) == ext_mul(A, ext_mul(B, C))).all()
    assert (ext_mul(A, add(B, C)) == add(ext_mul(A, B), ext_mul(A, C))).all()


@given(ext)
def test_ext_inverse(a):
    A = arr(a)
    if not any(a):
        assert not ext_inv(A).any()
        return
    assert ext_mul(A, ext_inv(A)).tolist() == [1, 0, 0, 0]


@settings(max_examples=20)
@given(st.lists(ext.filter(any), min_size=1, max_size=40))
def test_ext_batch_inverse_matches_single(xs):
    A = arr(xs)
    assert (ext_batch_inv(A) == ext_inv(A)).all()


@given(ext, st.integers(0, 300))
def test_ext_pow_and_frobenius(a, e):
    A = arr(a)
    expect = arr([1, 0, 0, 0])
    for _ in range(e):
        expect = ext_mul(expect, A)
    assert (ext_pow(A, e) == expect).all()
    # a^(p^4) = a: the extension has p^4 elements, so x^4 - 11 is irreducible.
    assert (ext_pow(ext_pow(ext_pow(ext_pow(A, P), P), P), P) == A).all()


def test_extension_is_a_field():
    # For p = 1 (mod 4), x^4 - a is irreducible over F_p iff a is not a square (the binomial
    # irreducibility criterion), so F_p[x]/(x^4 - 11) is the field F_p^4.
    assert pow(W, (P - 1) // 2, P) == P - 1 and P % 4 == 1
    x = arr([0, 1, 0, 0])
    assert ext_pow(x, P ** 4 - 1).tolist() == [1, 0, 0, 0]
    assert ext_pow(x, P ** 2 - 1).tolist() != [1, 0, 0, 0]


def test_roots_of_unity():
    for log_n in [1, 5, 27]:
        n = 1 << log_n
        w = root_of_unity(n)
        assert pow(w, n, P) == 1 and pow(w, n // 2, P) == P - 1


def test_powers_lincomb_and_horner():
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


@given(felt, ext)
def test_wrappers_mix_base_and_extension(a, b):
    x, y = Fp(arr(a)), Fp4(arr(b))
    assert ((x * y).v == ext_mul(ext_from_base(arr(a)), arr(b))).all()
    assert ((x - y).v == sub(ext_from_base(arr(a)), arr(b))).all()
    assert ((y - x + x).v == arr(b)).all()
    assert int((3 - x).v) == (3 - a) % P
    assert ((x * 5 + 1).v == (a * 5 + 1) % P).all()
