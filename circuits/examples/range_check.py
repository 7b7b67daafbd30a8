"""A LogUp example: values proven to lie in [0, 256) by lookup into a byte table.

Main columns: v (the values), acc (running sum of v, bound to a public total), t (the table
0, 1, ..., 255, 255, ...) and m (how often each table row is looked up). One auxiliary column h
accumulates the LogUp sum  sum_i m_i / (alpha - t_i) - 1 / (alpha - v_i)  row by row; it starts
at 0 and, with the last row's term, must end at 0, which holds iff the multiset of values is
contained in the table with the claimed multiplicities.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from circuits.air import Air, ConstraintBuilder
from circuits.field import P, ext_batch_inv, ext_from_base, ext_scale, sub

TABLE_SIZE = 256
V, ACC, T, M = range(4)


@dataclass(frozen=True)
class RangeCheckInputs:
    """The statement: n_rows values, each in [0, 256), sum to total (mod p)."""

    n_rows: int
    total: int


class RangeCheckAir(Air):
    name = "range_check"
    width = 4
    aux_width = 1
    num_challenges = 1
    lookup_width = 1  # single values: alpha - v, alpha - t

    def lookup_denominators(self) -> int:
        return 2 * self.trace_length  # the table entry and the looked-up value of every row

    def __init__(self, public_inputs: RangeCheckInputs) -> None:
        if public_inputs.n_rows < TABLE_SIZE:
            raise ValueError(f"range_check needs at least {TABLE_SIZE} rows")
        super().__init__(public_inputs, public_inputs.n_rows)

    def public_inputs_bytes(self) -> bytes:
        pi = self.public_inputs
        return struct.pack("<QQ", pi.n_rows, pi.total % P)

    def eval(self, b: ConstraintBuilder) -> None:
        v, acc, t, m = b.main_cur
        v_n, acc_n, t_n, _ = b.main_nxt
        (h,), (h_n,) = b.aux_cur, b.aux_nxt
        (alpha,) = b.challenges
        b.first_row(acc - v)
        b.transition(acc_n - acc - v_n)
        b.last_row(acc - self.public_inputs.total)
        b.first_row(t)
        b.transition((t_n - t) * (t_n - t - 1))
        b.last_row(t - (TABLE_SIZE - 1))
        # LogUp: (h' - h) = m / (alpha - t) - 1 / (alpha - v), cleared of denominators.
        dt, dv = alpha - t, alpha - v
        b.first_row(h)
        b.transition((h_n - h) * dt * dv - m * dv + dt)
        b.last_row(h * dt * dv + m * dv - dt)

    def build_aux_trace(self, main: np.ndarray, challenges: list[np.ndarray]) -> np.ndarray:
        (alpha,) = challenges
        inv_t = ext_batch_inv(sub(alpha, ext_from_base(main[T])))
        inv_v = ext_batch_inv(sub(alpha, ext_from_base(main[V])))
        terms = sub(ext_scale(inv_t, main[M]), inv_v)
        # Exclusive prefix sum: values < 2^31, so uint64 cumsum is exact for n < 2^33 rows.
        h = np.zeros_like(terms)
        h[1:] = np.cumsum(terms[:-1], axis=0) % P
        return h[None]


def range_check_trace(values: np.ndarray) -> tuple[np.ndarray, RangeCheckInputs]:
    """The (4, n) trace for values (length n >= 256, a power of two) and its statement."""
    values = np.asarray(values, dtype=np.uint64)
    n = len(values)
    table = np.minimum(np.arange(n, dtype=np.uint64), TABLE_SIZE - 1)
    counts = np.bincount(np.minimum(values, TABLE_SIZE).astype(np.int64), minlength=TABLE_SIZE + 1)
    mult = np.zeros(n, dtype=np.uint64)
    mult[:TABLE_SIZE] = counts[:TABLE_SIZE]  # out-of-range values get no table entry
    acc = np.cumsum(values) % P
    trace = np.stack([values % P, acc, table, mult]).astype(np.uint64)
    return trace, RangeCheckInputs(n_rows=n, total=int(acc[-1]))
