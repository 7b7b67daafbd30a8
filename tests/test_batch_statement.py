"""A batch statement's encoding and the verifier's stateless fact rules, as the verifier reads
them column by column: FACT_RECORD is FACT_STRUCT, a decoded statement's encode() is what
packing its fields again gives, the fact accumulator's fields are each fact's, and
fact_problems flags exactly what the market's per-fact rules (written out below, one fact at a
time, as the reference) flag."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits.field import P
from circuits.rollup import batch as B
from circuits.rollup.batch import FACT_RECORD, FACT_STRUCT, BatchFact, BatchInputs, fact_fields
from circuits.rollup.leaf import LIMB, LIMB_BITS, MAX_AMOUNT
from verifier.batch import (MAX_INDEX, MAX_SCORE, BundleFormatError, decode_statement,
                            fact_problems, payout)

ROOTS = dict(old_root=(0,) * 8, new_root=(0,) * 8)  # fact rules only: roots left unfolded
SLOW_DRAWS = [HealthCheck.too_slow, HealthCheck.data_too_large]  # up to 12 facts of 14 fields


def reference_problems(inputs: BatchInputs) -> list[str]:
    """The stateless rules one fact at a time: the specification fact_problems vectorizes."""
    out = []
    for i, f in enumerate(inputs.facts):
        if not 0 <= f.index < MAX_INDEX:
            out.append(f"fact {i}: index or key hash out of range")
        if not 0 <= f.score <= MAX_SCORE or not 0 <= f.rate <= B.EMA_SCALE \
                or not 0 <= f.prior <= MAX_SCORE:
            out.append(f"fact {i}: score, rate or prior usefulness out of range")
        if f.score == 0 and f.reward:
            out.append(f"fact {i}: a call scored 0 is paid nothing")
        if f.version == B.STAKE_VERSION:
            if not B.CALL < f.kind <= B.SLASH or not 1 <= f.amount <= MAX_AMOUNT:
                out.append(f"fact {i}: stake fact kind {f.kind} or amount {f.amount} out of "
                           "range")
            if (f.score, f.rate, f.reward, f.wrate, f.since, f.weight, f.total, f.emission,
                    f.prior) != (0,) * 9:
                out.append(f"fact {i}: a stake fact has no score, rate, reward, weight or "
                           "prior")
            continue
        if (f.kind, f.amount) != (B.CALL, 0):
            out.append(f"fact {i}: a call fact moves no stake")
        if not 0 <= f.reward < LIMB:
            out.append(f"fact {i}: reward {f.reward} above the limb")
        if f.version == 1:
            if f.reward > inputs.emission or (f.wrate, f.since, f.weight, f.total,
                                              f.emission) != (0, 0, 0, 0, 0):
                out.append(f"fact {i}: a version-1 fact is weighed 0 and paid at most the "
                           "emission")
        elif f.version == 2:
            if f.wrate != (f.rate if f.score > 0 else 0) or not 0 <= f.since < B.MAX_SINCE \
                    or not 0 <= f.weight * inputs.ema_rate < 1 << 21 or f.weight > f.total:
                out.append(f"fact {i}: weight rate, seconds since last use or weight out of "
                           "range")
            elif f.reward != payout(f.weight, f.total, f.emission):
                out.append(f"fact {i}: reward {f.reward} is not the payout of weight "
                           f"{f.weight} ({payout(f.weight, f.total, f.emission)})")
        else:
            out.append(f"fact {i}: unknown fact version {f.version}")
    return out


U64 = (1 << 64) - 1


def edges(*bounds: int, top: int = (1 << 32) - 1) -> list[int]:
    """The values on and beside each bound, within [0, top]."""
    return sorted({v for b in bounds for v in (b - 1, b, b + 1) if 0 <= v <= top})


def near(*bounds: int, top: int = (1 << 32) - 1) -> st.SearchStrategy[int]:
    """Integers in [0, top] that sit on or beside the given bounds most of the time."""
    return st.one_of(st.sampled_from(edges(*bounds, top=top)), st.integers(0, top))


U64 = (1 << 64) - 1
EDGES = {"index": edges(MAX_INDEX), "score": edges(0, MAX_SCORE),
         "rate": edges(0, B.EMA_SCALE), "reward": edges(0, LIMB, 10_000, 2 ** 32, U64, top=U64),
         "version": [0, 1, 2, 3, 4], "wrate": edges(0, 200, 1000), "since": edges(0, B.MAX_SINCE),
         "weight": edges(0, 1 << 21, 1 << 11, 1 << 14, top=U64) + [(1 << 64) // 200 + 1, U64],
         "total": edges(0, 1 << 21, U64, top=U64), "emission": edges(0, 10_000, U64, top=U64),
         "prior": edges(0, MAX_SCORE), "kind": [0, 1, 2, 3, 4],
         "amount": edges(0, 1, MAX_AMOUNT, U64, top=U64)}
"""Each field's values on and beside the bounds the rules test (a weight whose product with
the EMA rate 200 wraps 64 bits among them)."""
WIDE = {name: st.one_of(st.sampled_from(values), st.integers(0, max(values)))
        for name, values in EDGES.items()}
BASES = (BatchFact(7, (1,) * 7, 800_000, 200, 9_000),  # a version-1 call
         BatchFact(7, (1,) * 7, 800_000, 200, payout(90, 1_000, 10_000), 2, 200, 3_600, 90,
                   1_000, 10_000, 1_000),  # a version-2 call, weighed
         BatchFact(7, (1,) * 7, 0, 0, 0, B.STAKE_VERSION, kind=B.SLASH, amount=5))


@st.composite
def fact(draw, ema_rate: int, emission: int) -> BatchFact:
    """A fact that keeps every rule (a version-1 or version-2 call or a stake fact), then most
    of the time one or two fields moved to values on or beside a rule's bounds."""
    key = tuple(draw(st.integers(0, P - 1)) for _ in range(7))
    index, score = draw(st.integers(0, MAX_INDEX - 1)), draw(st.integers(0, MAX_SCORE))
    rate, prior = draw(st.integers(0, B.EMA_SCALE)), draw(st.integers(0, MAX_SCORE))
    made = draw(st.sampled_from(["v1", "v2", "stake"]))
    if made == "v1":
        f = BatchFact(index, key, score, rate, draw(st.integers(0, min(emission, LIMB - 1)))
                      if score else 0, prior=prior)
    elif made == "v2":
        weight = draw(st.integers(0, ((1 << 21) - 1) // ema_rate)) if score else 0
        total = weight + draw(st.integers(0, U64 - weight))
        pot = draw(st.integers(0, U64))
        f = BatchFact(index, key, score, rate, payout(weight, total, pot), 2,
                      rate if score else 0, draw(st.integers(0, B.MAX_SINCE - 1)), weight,
                      total, pot, prior)
    else:
        f = BatchFact(index, key, 0, 0, 0, B.STAKE_VERSION,
                      kind=draw(st.sampled_from([B.BOND, B.RELEASE, B.SLASH])),
                      amount=draw(st.integers(1, MAX_AMOUNT)))
    for name in draw(st.lists(st.sampled_from(sorted(WIDE)), max_size=2)):
        f = dataclasses.replace(f, **{name: draw(WIDE[name])})
    return f


@st.composite
def statements(draw) -> BatchInputs:
    ema_rate, emission = draw(near(1, 200, 1000)), draw(near(0, 10_000, top=U64))
    facts = draw(st.lists(fact(max(ema_rate, 1), emission), min_size=1, max_size=12))
    return BatchInputs(3, 9, emission, facts=tuple(facts), facts_commitment=bytes(32),
                       prev_commitment=bytes(32), ema_rate=ema_rate,
                       first=draw(st.integers(0, 1 << 20)), old_subroot=(1,) * 8,
                       new_subroot=(2,) * 8, **ROOTS)


def test_every_field_on_every_bound_of_every_kind_of_fact():
    """One fact, one field moved to a value on or beside a bound: flagged exactly as the per-fact
    rules flag it (the three bases keep every rule)."""
    def statement(*facts: BatchFact) -> BatchInputs:
        return BatchInputs(3, 9, 10_000, facts=facts, facts_commitment=bytes(32),
                           prev_commitment=bytes(32), old_subroot=(1,) * 8,
                           new_subroot=(2,) * 8, **ROOTS)

    assert not reference_problems(statement(*BASES))
    wraps = dataclasses.replace(BASES[1], weight=(1 << 64) // 200 + 1, total=U64, emission=0,
                                reward=0)  # weight * 200 wraps 64 bits: paid 0, in range else
    st_ = statement(wraps)
    assert reference_problems(st_) == [m for m in fact_problems(st_) if m.startswith("fact ")] \
        == ["fact 0: weight rate, seconds since last use or weight out of range"]
    for base in BASES:
        for name, values in EDGES.items():
            for value in values:
                st_ = statement(*BASES, dataclasses.replace(base, **{name: value}))
                assert [m for m in fact_problems(st_) if m.startswith("fact ")] == \
                    reference_problems(st_), (name, value)


def test_fact_record_is_fact_struct():
    assert FACT_RECORD.itemsize == FACT_STRUCT.size
    values = list(range(1, 21))
    row = np.frombuffer(FACT_STRUCT.pack(*values), FACT_RECORD)[0]
    flat = [int(v) for name in FACT_RECORD.names for v in np.atleast_1d(row[name])]
    assert flat == values


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_DRAWS)
@given(statements())
def test_fact_problems_are_the_per_fact_rules(statement):
    found = fact_problems(statement)
    assert found[0] == "the statement's depth-30 subroots do not fold to its state roots"
    assert [m for m in found if m.startswith("fact ")] == reference_problems(statement)


@settings(max_examples=100, deadline=None, suppress_health_check=SLOW_DRAWS)
@given(statements())
def test_decoding_is_exact_and_fields_are_each_facts(statement):
    data = statement.encode()
    try:
        decoded = decode_statement(data)
    except BundleFormatError:  # only for a field the AIR reads as an element, not below p
        assert any(getattr(f, name) >= P for f in statement.facts
                   for name in ("wrate", "since", "weight", "prior", "kind"))
        return
    assert decoded == statement and decoded.encode() == data
    assert dataclasses.replace(decoded).encode() == data  # packed again from the fields
    fields = fact_fields(decoded.fact_table(), statement.first)
    for i, f in enumerate(statement.facts):
        want = [statement.first + i, f.index, f.score, f.rate, f.reward, f.wrate, f.since,
                f.weight, f.prior, f.kind, f.amount % LIMB, f.amount >> LIMB_BITS, *f.key]
        assert fields[:, i].tolist() == [v % P for v in want]


def test_a_field_that_does_not_fit_is_a_problem_not_a_crash():
    good = BatchFact(3, (1,) * 7, 5, 200, 0)
    for bad in (dataclasses.replace(good, index=-1), dataclasses.replace(good, score=1 << 32),
                dataclasses.replace(good, key=(1,) * 6), dataclasses.replace(good, amount=-2)):
        statement = BatchInputs(3, 9, 10, facts=(bad,), facts_commitment=bytes(32),
                                prev_commitment=bytes(32), old_subroot=(1,) * 8,
                                new_subroot=(2,) * 8, **ROOTS)
        assert fact_problems(statement)[-1] == \
            "a field of the statement does not fit its encoding"
