"""The market's integer arithmetic (memjit.market.formulas) on worked examples, and the
properties the ledger and the rollup rely on: a period never pays more than its emission, a
call never more than its weight, usefulness stays in range, a slash is never rounded away."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memjit.market.formulas import (DAY_S, MAX_AMOUNT, PPM, ema, fee, label_rate, payout,
                                    period, seed_reward, slash, weight)


def test_worked_examples() -> None:
    assert [ema(0, PPM, 200_000), ema(200_000, PPM, 200_000), ema(360_000, 0, 200_000)] == [
        200_000, 360_000, 288_000]
    assert ema(500_000, PPM, 18_000) == 509_000  # a label backed by 9% of the full stake
    # the seed formula: usefulness * base / (1 + days since last use)
    assert [seed_reward(1_000_000, 1_000, 0), seed_reward(500_000, 1_000, 2 * DAY_S),
            seed_reward(1_000_000, 1_000, DAY_S // 2), seed_reward(250_000, 1_000, 3 * DAY_S),
            seed_reward(1_000_000, 1_000, -5)] == [1_000, 166, 666, 62, 1_000]
    assert weight(600_000, 1_000, 0, 200_000, 200_000, PPM) == 600  # a consensus score
    assert weight(600_000, 1_000, 0, 50_000, 200_000, PPM) == 150  # a quarter-staked label
    assert weight(600_000, 1_000, 0, 200_000, 200_000, 0) == 0  # a wrong answer earns nothing
    assert [label_rate(200_000, v, 100_000) for v in (0, 499, 500, 9_000, 100_000, 10**9)] == [
        0, 0, 1_000, 18_000, 200_000, 200_000]
    assert [slash(s, 100_000) for s in (10_000, 9_900, 100, 5, 0)] == [1_000, 990, 10, 1, 0]
    assert [payout(w, 12_000, 10_000) for w in (6_000, 3_000, 3_000)] == [5_000, 2_500, 2_500]
    assert payout(600, 1_000, 10_000) == 600 and payout(5, 0, 10_000) == 0  # below the cap
    assert period(86_399, DAY_S) == 0 and period(86_400, DAY_S) == 1
    assert fee(5, 10, 2) == 20


@given(st.lists(st.integers(0, 10**6), max_size=50), st.integers(0, MAX_AMOUNT))
def test_a_period_pays_at_most_its_emission_and_a_call_at_most_its_weight(
        weights: list[int], emission: int) -> None:
    total = sum(weights)
    paid = [payout(w, total, emission) for w in weights]
    assert sum(paid) <= min(emission, total)
    assert all(0 <= p <= w for p, w in zip(paid, weights))
    if total <= emission:
        assert paid == weights  # below the cap every call earns exactly its weight


@given(st.integers(0, PPM), st.integers(0, PPM), st.integers(0, 1000).map(lambda k: k * 1000))
def test_usefulness_stays_between_the_old_value_and_the_score(u: int, s: int, r: int) -> None:
    assert min(u, s) <= ema(u, s, r) <= max(u, s)


@given(st.integers(0, MAX_AMOUNT), st.integers(1, PPM))
def test_a_slash_is_rounded_up_and_never_exceeds_the_amount(amount: int, ppm: int) -> None:
    burned = slash(amount, ppm)
    assert burned * PPM >= amount * ppm and burned <= amount
    assert (burned > 0) == (amount > 0)
