"""The market's integer arithmetic, all of it: what the ledger applies and what the rollup's
batch AIR reproduces. Pure functions on integers; nothing here reads the ledger.

Units: amounts in SWT (integers in 0..MAX_AMOUNT), usefulness, scores and rates in parts per
million (PPM = 10^6), times in whole Unix seconds. Every division rounds down unless it says up.

    ema(u, s, r)          = (r*s + (PPM - r)*u) // PPM        usefulness after score s at rate r
    label_rate(e, v, V)   = (e*min(v, V) // V) // 1000 * 1000 EMA rate of a label backed by a
                                                               validator stake v (full at V)
    slash(a, q)           = ceil(a*q / PPM) = -(-a*q // PPM)   burned of an amount a at q ppm: of
                                                               the bonded and of the unbonding
                                                               stake, each on its own
    seed(u, B, s)         = u*B*DAY // (PPM*(DAY + s))        the seed's reward formula, s >= 0
                                                               seconds since the last use
    weight(u,B,s,r,e,x)   = seed(u, B, s)*r // e if x > 0     a call's claim on its period's
                          = 0                    otherwise    emission (x: its score; r/e: the
                                                               stake behind the score)
    period(t, P)          = t // P                            the emission period of time t
    payout(w, W, E)       = w*min(E, W) // W                  a call's reward when its period
                                                               closes (W: the period's weights)
    fee(n, b, k)          = b + k*n                           a call of a worker that served n
                                                               calls in the demand window

So a period mints at most E (sum of payouts <= min(E, W)): below the cap every call earns exactly
its weight, above it the emission is shared in proportion to the weights. Rates are whole
thousandths of a million, so every ppm fraction has a denominator of at most 1000.
"""

from __future__ import annotations

PPM = 1_000_000
DAY_S = 86_400
RATE_STEP = 1_000
MAX_AMOUNT = (1 << 53) - 1
"""The largest amount: exact in SQLite's INTEGER, the rollup's u64 fields and a JSON number, with
room for 1024 of them to add up within an i64. It is the rollup leaf's bound too
(circuits.rollup.leaf.MAX_AMOUNT: a locked stake, minted or slashed total in two limbs), so
nothing the market accepts makes a batch unprovable; defined here so that the ledger loads no
numpy, and pinned equal to the leaf's by tests/test_batch_stake.py."""


def ema(usefulness: int, score: int, rate_ppm: int) -> int:
    """The usefulness after one more score: an integer EMA whose newest score weighs rate_ppm."""
    return (rate_ppm * score + (PPM - rate_ppm) * usefulness) // PPM


def label_rate(ema_ppm: int, stake: int, full_stake: int) -> int:
    """The EMA rate a label moves usefulness at: ema_ppm scaled by the labeller's bonded stake
    (full at `full_stake` and above), rounded down to a whole thousandth of a million."""
    return ema_ppm * min(stake, full_stake) // full_stake // RATE_STEP * RATE_STEP


def slash(amount: int, slash_ppm: int) -> int:
    """The part of `amount` burned at slash_ppm, rounded up (a slash is never rounded away)."""
    return -(-amount * slash_ppm // PPM)


def seed_reward(usefulness: int, base_reward: int, seconds: int) -> int:
    """usefulness/10^6 * base_reward / (1 + days since last use), days exact in seconds."""
    return usefulness * base_reward * DAY_S // (PPM * (DAY_S + max(0, seconds)))


def weight(usefulness: int, base_reward: int, seconds: int, rate_ppm: int, ema_ppm: int,
           score: int) -> int:
    """A scored call's weight: the seed formula on its new usefulness, scaled by the rate its
    score moved usefulness at (the stake behind the score); nothing for a score of 0."""
    if score <= 0 or ema_ppm <= 0:
        return 0
    return seed_reward(usefulness, base_reward, seconds) * rate_ppm // ema_ppm


def period(time_s: int, period_s: int) -> int:
    """The emission period a time falls in."""
    return time_s // period_s


def payout(call_weight: int, total_weight: int, emission: int) -> int:
    """A call's reward when its period closes: its share of min(emission, total weight)."""
    if total_weight <= 0:
        return 0
    return call_weight * min(emission, total_weight) // total_weight


def fee(recent_calls: int, base_fee: int, fee_step: int) -> int:
    """The price of one call of a worker that served `recent_calls` in the demand window."""
    return base_fee + fee_step * recent_calls
