"""The running-sum range check (circuits.rollup.ranges) on a small AIR of 8-row segments: an
honest trace proves and verifies; each malicious prover breaks exactly one constraint family
(a value out of range with a consistent-looking decomposition, a non-boolean step, a selector
that drops at the wrong row or never drops, a running sum that does not reach 0)."""

from __future__ import annotations

import numpy as np
import pytest

from circuits.air import Air, ConstraintBuilder, Domain, as_columns
from circuits.field import P
from circuits.rollup.ranges import RangeChecks
from prover import prove
from prover.composition import ConstraintViolation, check_trace
from verifier import ProofParams, verify_air

S, SEGMENTS = 8, 4
K, IS_LEAF, IS_TOP, ON, VALUES = range(5)
WIDTHS = (3, 5, 3, 7)  # 7 = S - 1: the top row is its selector
GADGET = RangeChecks(VALUES + len(WIDTHS), WIDTHS, S)
FAST = ProofParams(num_queries=8, grinding_bits=2)
# the gadget's constraints, in order: per value (value, step, zero), per selector (boolean,
# first row, top row, drop)
VALUE, STEP, ZERO = 0, 1, 2
BOOL, LEAF, TOP, DROP = range(4)


def value_constraint(i: int, kind: int) -> int:
    return 3 * i + kind


def selector_constraint(width: int, kind: int) -> int:
    return 3 * len(WIDTHS) + 4 * GADGET.selected.index(width) + kind


class RangeAir(Air):
    """Segments of S rows whose first row states len(WIDTHS) values (honest counters: the
    gadget relies on the AIR's own)."""

    name = "test_ranges"
    width = VALUES + len(WIDTHS) + GADGET.width

    def __init__(self) -> None:
        super().__init__(None, S * SEGMENTS)

    def public_inputs_bytes(self) -> bytes:
        return b""

    def eval(self, b: ConstraintBuilder) -> None:
        c, n = b.main_cur, b.main_nxt
        GADGET.constraints(b, c, n, [c[VALUES + i] for i in range(len(WIDTHS))], c[ON],
                           c[IS_LEAF], c[IS_TOP], n[K])


def trace(values: list[list[int]]) -> np.ndarray:
    """The honest trace of SEGMENTS segments, the first len(values) `on` with these values."""
    t = np.zeros((SEGMENTS, S, RangeAir.width), dtype=np.uint64)
    t[:, :, K] = np.arange(S)
    t[:, 0, IS_LEAF] = 1
    t[:, -1, IS_TOP] = 1
    t[:len(values), 0, ON] = 1
    vals = np.zeros((SEGMENTS, len(WIDTHS)), dtype=np.int64)
    vals[:len(values)] = values
    t[:, 0, VALUES:VALUES + len(WIDTHS)] = vals % P
    GADGET.fill(t, vals)
    return np.ascontiguousarray(t.reshape(S * SEGMENTS, -1).T) % P


def failing(main: np.ndarray) -> set[int]:
    """The constraints the trace breaks (their indices)."""
    air = RangeAir()
    n = air.trace_length
    vals = air.evaluate(as_columns(main, False), as_columns(np.roll(main, -1, axis=1), False),
                        [], [], [])
    last = {Domain.TRANSITION: n - 1, Domain.EVERY: n}
    return {i for i, (dom, v) in enumerate(vals)
            if np.broadcast_to(v.v, (n,))[:last[dom]].any()}


HONEST = [[7, 31, 0, 127], [5, 16, 1, 64], [0, 0, 0, 0]]


def column(main: np.ndarray, i: int) -> np.ndarray:
    return main[GADGET.first + i]


def test_honest_values_prove_and_verify():
    main = trace(HONEST)
    assert failing(main) == set()
    air = RangeAir()
    check_trace(air, main, None, [])
    assert air.max_degree() == 3 and GADGET.width == len(WIDTHS) + 2  # selectors of 3 and 5
    assert verify_air(air, prove(air, main, FAST), 0).valid


def test_value_out_of_range_with_a_consistent_decomposition_rejected():
    """The column decomposes an in-range number bit by bit and reaches 0, but does not start at
    the value: 2^B + 5, and p - 1 (-1 as a field element: a wrapped value)."""
    for value in ((1 << 5) + 5, P - 1):
        main = trace([[7, value % 32, 0, 127]])
        main[VALUES + 1, 0] = value
        assert failing(main) == {value_constraint(1, VALUE)}
    air = RangeAir()
    with pytest.raises(ConstraintViolation):
        check_trace(air, main, None, [])
    assert not verify_air(air, prove(air, main, FAST, check=False), 0).valid


def test_non_boolean_step_rejected():
    """8 = 2 * 3 + 2 with 3 < 4 decomposed honestly: the running sum reaches 0 in time, but its
    first step is 2."""
    main = trace([[7, 31, 0, 127]])
    main[GADGET.first, 0] = 8  # value 0 (width 3): 8 = 2^3 is out of range
    main[VALUES, 0] = 8
    column(main, 0)[1:S] = [3 >> k for k in range(S - 1)]
    assert failing(main) == {value_constraint(0, STEP)}


def test_selector_dropping_at_the_wrong_row_rejected():
    """The width-3 selector drops one row late, so 8 = 2^3 decomposes with r_3 = 1."""
    main = trace([[8, 31, 0, 127]])
    assert failing(main) == {value_constraint(0, ZERO)}
    sel = GADGET.selector[3]
    main[sel, 3] = 1  # k = 3 of segment 0: [k < 4]
    assert failing(main) == {selector_constraint(3, DROP)}
    main[sel, 1:S] = 1  # never drops: 1 on the top row
    assert failing(main) == {selector_constraint(3, TOP)}
    main[sel, :S] = 0  # never rises from 0: not 1 on the first row
    assert selector_constraint(3, LEAF) in failing(main)


def test_running_sum_not_reaching_zero_rejected():
    """2^B and p - 1 halved bit by bit from the value itself: every step is a bit, but the sum
    is still nonzero where k >= B (for the widest value, on the top row)."""
    for value in (1 << 5, P - 1):
        assert failing(trace([[7, value, 0, 127]])) == {value_constraint(1, ZERO)}
    main = trace([[7, 31, 0, 1 << 7]])
    assert failing(main) == {value_constraint(3, ZERO)}
    air = RangeAir()
    assert not verify_air(air, prove(air, main, FAST, check=False), 0).valid


def test_widths_beyond_the_segment_refused():
    with pytest.raises(ValueError):
        RangeChecks(0, (8,), S)
    with pytest.raises(ValueError):
        RangeChecks(0, (31,), 40)
