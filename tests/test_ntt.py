"""NTT kernels against naive O(n^2) evaluation and interpolation over BabyBear."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from circuits.field import P
from circuits.ntt import coset_intt, coset_ntt, intt, lde, ntt, root_of_unity


def rand(shape, seed=0):
    return np.random.default_rng(seed).integers(0, P, shape, dtype=np.uint64)


def naive_eval(coeffs, points):
    return np.array([sum(int(c) * pow(int(x), j, P) for j, c in enumerate(coeffs)) % P
                     for x in points], dtype=np.uint64)


def naive_interpolate(evals, shift=1):
    """Coefficients of the degree < n polynomial through (shift * w^i, evals[i])."""
    n = len(evals)
    w_inv = pow(root_of_unity(n), P - 2, P)
    n_inv = pow(n, P - 2, P)
    s_inv = pow(shift, P - 2, P)
    return np.array([n_inv * pow(s_inv, j, P) * sum(int(e) * pow(w_inv, i * j, P)
                                                    for i, e in enumerate(evals)) % P
                     for j in range(n)], dtype=np.uint64)


def coset(size, shift):
    w = root_of_unity(size)
    return [shift * pow(w, i, P) % P for i in range(size)]


def test_root_of_unity_definition_and_order():
    for log in range(28):
        n = 1 << log
        w = root_of_unity(n)
        assert w == pow(31, (P - 1) // n, P)
        assert pow(w, n, P) == 1
        assert n == 1 or pow(w, n // 2, P) == P - 1
    for bad in (0, 3, 12, 1 << 28):
        with pytest.raises(ValueError):
            root_of_unity(bad)


@pytest.mark.parametrize("log_n", range(7))
def test_ntt_matches_naive(log_n):
    n = 1 << log_n
    c = rand(n, log_n)
    e = ntt(c)
    assert e.dtype == np.uint64 and e.shape == (n,)
    assert (e == naive_eval(c, coset(n, 1))).all()
    assert (intt(e) == c).all()
    assert (intt(c) == naive_interpolate(c)).all()


@pytest.mark.parametrize("log_n", [10, 12, 13, 14, 15])
def test_large_sizes_across_block_boundary(log_n):
    n = 1 << log_n
    c = rand((3, n), log_n)
    e = ntt(c)
    assert (intt(e) == c).all()
    w = root_of_unity(n)
    for i in (0, 1, 5, n // 2 - 1, n // 2 + 3, n - 1):
        x = pow(w, i, P)
        assert int(e[2, i]) == sum(int(cj) * pow(x, j, P) for j, cj in enumerate(c[2])) % P


def sparse_poly(n, terms, seed):
    rng = np.random.default_rng(seed)
    c = np.zeros(n, np.uint64)
    support = rng.choice(n, terms, replace=False)
    c[support] = rng.integers(1, P, terms, dtype=np.uint64)
    return c, support


def eval_sparse(c, support, x):
    return sum(int(c[j]) * pow(x, int(j), P) for j in support) % P


@pytest.mark.parametrize("log_n", [17, 18, 19, 20, 23])
def test_sparse_polynomial_large_sizes(log_n):
    """5-term polynomials checked at sampled points, plus roundtrips, up to n = 2^23."""
    n = 1 << log_n
    c, support = sparse_poly(n, 5, log_n)
    e = ntt(c)
    w = root_of_unity(n)
    for i in np.random.default_rng(1).choice(n, 10, replace=False):
        assert int(e[i]) == eval_sparse(c, support, pow(w, int(i), P))
    assert (intt(e) == c).all()


def test_lde_2_20_to_2_23():
    n, blowup, shift = 1 << 20, 8, 31
    c, support = sparse_poly(n, 4, 3)
    out = lde(ntt(c), blowup, shift)
    w = root_of_unity(n * blowup)
    for i in np.random.default_rng(2).choice(n * blowup, 10, replace=False):
        assert int(out[i]) == eval_sparse(c, support, shift * pow(w, int(i), P) % P)
    assert (coset_intt(out, shift)[:n] == c).all()


@pytest.mark.parametrize("log_n", range(6))
@pytest.mark.parametrize("k_frac", [0, 1, 2])
def test_coset_ntt_matches_naive(log_n, k_frac):
    size = 1 << log_n
    k = [size, max(size // 2, 1), max(size - 1, 0)][k_frac]
    c = rand(k, 100 + log_n)
    for shift in (1, 7, 31, P - 1):
        e = coset_ntt(c, size, shift)
        assert (e == naive_eval(c, coset(size, shift))).all()
        full = np.zeros(size, np.uint64)
        full[:k] = c
        assert (coset_intt(e, shift) == full).all()


def test_coset_ntt_small_input_large_size():
    c = rand(3, 5)
    size = 1 << 14
    e = coset_ntt(c, size, 11)
    pts = coset(size, 11)
    for i in (0, 1, 4097, size - 1):
        assert int(e[i]) == naive_eval(c, [pts[i]])[0]
    assert (coset_ntt(np.zeros(0, np.uint64), 8, 3) == 0).all()
    with pytest.raises(ValueError):
        coset_ntt(rand(9), 8, 3)


@pytest.mark.parametrize("log_n", range(6))
@pytest.mark.parametrize("blowup", [1, 2, 8])
def test_lde_matches_interpolate_then_evaluate(log_n, blowup):
    n = 1 << log_n
    evals = rand((2, n), 200 + log_n)
    out = lde(evals, blowup, 31)
    assert out.shape == (2, n * blowup)
    for r in range(2):
        coeffs = naive_interpolate(evals[r])
        assert (out[r] == naive_eval(coeffs, coset(n * blowup, 31))).all()


@pytest.mark.parametrize("log_n", [12, 13, 16])
def test_lde_large_consistent_with_coset_ntt(log_n):
    n = 1 << log_n
    evals = rand((2, n), log_n)
    out = lde(evals, 8, 31)
    coeffs = intt(evals)
    assert (out == coset_ntt(coeffs, 8 * n, 31)).all()
    back = coset_intt(out, 31)
    assert (back[:, :n] == coeffs).all() and (back[:, n:] == 0).all()


def test_batched_leading_axes_and_no_mutation():
    x = rand((2, 3, 4, 32), 9)
    keep = x.copy()
    for f in (ntt, intt, lambda a: coset_intt(a, 5), lambda a: lde(a, 4, 31),
              lambda a: coset_ntt(a, 64, 5)):
        y = f(x)
        assert y.shape[:3] == (2, 3, 4)
        flat = x.reshape(-1, 32)
        rows = np.stack([f(flat[i]) for i in range(flat.shape[0])])
        assert (y.reshape(rows.shape) == rows).all()
        assert (x == keep).all()
    assert intt(x[..., ::2].copy()).shape == (2, 3, 4, 16)
    assert ntt(np.zeros((0, 8), np.uint64)).shape == (0, 8)
    assert ntt(x[0, 0, :, ::2]).shape == (4, 16)  # strided input


def test_size_one_and_rejections():
    assert (ntt(np.array([5], np.uint64)) == [5]).all()
    assert (lde(np.array([[5], [6]], np.uint64), 4, 3) == [[5] * 4, [6] * 4]).all()
    with pytest.raises(ValueError):
        ntt(rand(12))
    with pytest.raises(ValueError):
        lde(rand(8), 3, 31)
    with pytest.raises(ValueError):
        coset_ntt(rand(8), 16, P)


@settings(max_examples=40, deadline=None)
@given(log_n=st.integers(0, 7), blowup_log=st.integers(0, 3),
       shift=st.integers(1, P - 1), seed=st.integers(0, 2**32 - 1))
def test_properties(log_n, blowup_log, shift, seed):
    n, b = 1 << log_n, 1 << blowup_log
    c = rand(n, seed)
    e = ntt(c)
    assert (intt(e) == c).all()
    ce = coset_ntt(c, n * b, shift)
    assert (lde(e, b, shift) == ce).all()
    padded = np.zeros(n * b, np.uint64)
    padded[:n] = c
    assert (coset_intt(ce, shift) == padded).all()
    x = coset(n * b, shift)[seed % (n * b)]
    assert int(ce[seed % (n * b)]) == naive_eval(c, [x])[0]
