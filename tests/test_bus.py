"""The fused LogUp kernel (circuits.bus) computes exactly what the constraint expressions
compute, and refuses terms that are not linear in the columns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from circuits.air import Columns, ConstraintBuilder
from circuits.bus import SUB, BusPlan, Linear, NonLinear
from circuits.field import P, Fp, Fp4, ext_inv, ext_mul, ext_powers
from circuits.wasm_vm import logup
from circuits.wasm_vm.columns import WIDTH
from circuits.wasm_vm.view import View

RNG = np.random.default_rng(7)


def ext(shape=()) -> np.ndarray:
    return RNG.integers(0, P, (*shape, 4), dtype=np.uint64)


def test_linear_forms():
    x, y = Linear.column(0), Linear.column(1)
    f = 3 * x - (y - 2) * 5 + 7 - x
    assert (f.const, f.coefs) == (17, {0: 2, 1: -5})
    with pytest.raises(NonLinear):
        _ = x * y
    with pytest.raises(NonLinear):
        Linear.of(Fp(np.zeros(1, np.uint64)))


@pytest.mark.parametrize("group", [1, 2, 3])
def test_kernel_matches_the_fraction_sum(group):
    # terms m_t / (alpha - f_t) with m = col0 + 2, f = col1 + beta col2 (t-th pair of columns)
    m, T, W = 2 * SUB + 5, 5, 12
    main = RNG.integers(0, P, (W, m), dtype=np.uint64)
    terms = [(Linear.column(0) + 2, [Linear.column(2 * t + 1), Linear.column(2 * t + 2)])
             for t in range(T)]
    plan = BusPlan.compile(terms, group)
    alpha, beta = ext(), ext()
    h, hn = ext((len(plan.groups) - 1, m)), ext((len(plan.groups) - 1, m))
    weights = plan.weights(alpha, ext_powers(beta, 2))
    out = plan.evaluate(main, h, hn, weights)
    for g in range(len(plan.groups) - 1):
        ts = range(plan.groups[g], plan.groups[g + 1])
        ds = [Fp4(alpha) - (Fp(main[2 * t + 1]) + Fp4(beta) * Fp(main[2 * t + 2])) for t in ts]
        mu = Fp(main[0]) + 2
        # (h' - h) prod d - sum m prod_{others} d, checked through the inverses
        total = sum((Fp4(ext_inv(d.v)) * mu for d in ds[1:]), Fp4(ext_inv(ds[0].v)) * mu)
        prod = ds[0]
        for d in ds[1:]:
            prod = prod * d
        expected = (Fp4(hn[g]) - Fp4(h[g]) - total) * prod
        assert np.array_equal(out[g], expected.v)
        num, den = plan.fraction(main, g, weights)  # the same sum, as the aux trace takes it
        assert np.array_equal(den, prod.v)
        assert np.array_equal(ext_mul(num, ext_inv(den)), total.v)


def test_vm_bus_matches_its_constraint_expressions():
    # the prover's fused path and the verifier's expressions, on the same random columns
    m = SUB + 3
    main = RNG.integers(0, P, (WIDTH, m), dtype=np.uint64)
    groups = len(logup.lookup_groups(View([Fp(c) for c in main]), [Fp4(ext()), Fp4(ext())]))
    aux, aux_n = ext((groups, m)), ext((groups, m))
    challenges = [Fp4(ext()), Fp4(ext())]
    public = Fp4(ext())

    def constraints(fast: bool):
        wrap = (lambda a, e: Columns(a, e)) if fast else \
            (lambda a, e: [(Fp4 if e else Fp)(v) for v in a])
        b = ConstraintBuilder(wrap(main, False), wrap(main, False), wrap(aux, True),
                              wrap(aux_n, True), challenges)
        logup.logup_constraints(b, View(b.main_cur), public)
        return b.constraints

    slow, fast = constraints(False), constraints(True)
    assert len(slow) == len(fast) == 2 * groups + 1
    for (d1, v1), (d2, v2) in zip(slow, fast):
        assert d1 == d2
        assert np.array_equal(np.broadcast_to(v1.v, v2.v.shape), v2.v)



coefs = st.integers(-(1 << 40), 1 << 40)


@st.composite
def linear_terms(draw, width: int = 5):
    """Random terms (multiplicity, 1-3 fields) of linear forms over ``width`` columns."""
    def form():
        cols = draw(st.lists(st.integers(0, width - 1), max_size=4))
        return sum((Linear.column(c) * draw(coefs) for c in cols), Linear(draw(coefs)))
    return [(form(), [form() for _ in range(draw(st.integers(1, 3)))])
            for _ in range(draw(st.integers(1, 5)))]


@settings(max_examples=40, deadline=None)
@given(linear_terms(), st.integers(1, 3), st.integers(1, 40))
def test_kernel_matches_direct_evaluation_of_random_forms(terms, group, m):
    main = RNG.integers(0, P, (5, m), dtype=np.uint64)
    plan = BusPlan.compile(terms, group)
    alpha, beta = ext(), ext()
    powers = ext_powers(beta, 3)
    weights = plan.weights(alpha, powers)
    cols = [Fp(c) for c in main]

    def value(f: Linear):
        return sum((cols[c] * k for c, k in f.coefs.items()), Fp(np.full(m, f.const % P, np.uint64)))

    for g in range(len(plan.groups) - 1):
        num, den = plan.fraction(main, g, weights)
        prod, total = None, None
        for mult, fields in terms[plan.groups[g]:plan.groups[g + 1]]:
            d = Fp4(alpha) - sum((Fp4(powers[j]) * value(f) for j, f in enumerate(fields)),
                                 Fp4(np.zeros(4, np.uint64)))
            prod = d if prod is None else prod * d
            frac = Fp4(ext_inv(d.v)) * value(mult)
            total = frac if total is None else total + frac
        assert np.array_equal(den, prod.v)
        assert np.array_equal(ext_mul(num, ext_inv(den)), total.v)
