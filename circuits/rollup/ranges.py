"""Range checks as running sums over a segment's rows: one column per value, not one per bit.

An AIR whose rows come in segments of S rows (a counter k = 0..S-1 with is_leaf = [k = 0] and
is_top = [k = S - 1], constrained by the AIR itself) checks a value v < 2^B (B <= S - 1), an
expression stated on a segment's first row, with one column r:

    on (r - v) = 0                      on every row (`on`: a 0/1 flag, set on first rows only);
    d (d - 1) = 0, d = r - 2 r'         on every transition inside a segment (not from a top row);
    (1 - s_B) r = 0                     on every row (r = 0 wherever k >= B);

and one selector column s_B = [k < B] per distinct width B below S - 1, shared by every value of
that width: s_B boolean, 1 on the first row, 0 on the top row, and changing only into a row
with k = B ((s_B - s_B') (k' - B) = 0 inside a segment). Those three pin s_B to [k < B] (it is
1 at k = 0, 0 at k = S - 1, and may change at one transition only; so it never rises). Width
S - 1 needs no column: its selector is 1 - is_top.

Soundness: inside a segment r_k = 2 r_(k+1) + d_k with every d_k a bit and r_B = 0, so on the
first row v = r_0 = sum_(k<B) d_k 2^k, an integer in [0, 2^B) (below p for B <= 30): a value
out of range has no satisfying column. Degree 3 (the step's guard times d (d - 1)). The honest
column is r_k = floor(v / 2^k); rows of a segment that is not `on` may hold zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from circuits.air import ConstraintBuilder, Value


class RangeChecks:
    """Range checks of len(widths) values (value i < 2^widths[i]) in the columns from `first`:
    one running-sum column per value, then one selector column per distinct width below
    `segment` - 1."""

    def __init__(self, first: int, widths: Sequence[int], segment: int) -> None:
        if any(not 1 <= w < segment or w > 30 for w in widths):
            raise ValueError(f"a range-checked width must be in 1..min(30, {segment - 1})")
        self.first, self.widths, self.segment = first, tuple(widths), segment
        self.selected = sorted({w for w in widths if w < segment - 1})
        self.selector = {w: first + len(widths) + i for i, w in enumerate(self.selected)}
        self.width = len(widths) + len(self.selected)

    def constraints(self, b: ConstraintBuilder, cur: Sequence[Value], nxt: Sequence[Value],
                    values: Sequence[Value], on: Value, is_leaf: Value, is_top: Value,
                    k_next: Value) -> None:
        """Emit the checks: `values` are expressions on a segment's first row, checked where
        `on` is 1; `is_leaf`, `is_top` and `k_next` (the next row's counter) are the AIR's."""
        if len(values) != len(self.widths):
            raise ValueError("one value per range-checked width")
        not_top = 1 - is_top
        for i, (value, width) in enumerate(zip(values, self.widths)):
            r, r_next = cur[self.first + i], nxt[self.first + i]
            b.every_row(on * (r - value))
            d = r - 2 * r_next
            b.transition(not_top * d * (d - 1))
            below = cur[self.selector[width]] if width in self.selector else not_top
            b.every_row((1 - below) * r)
        for width, col in self.selector.items():
            s = cur[col]
            b.every_row(s * (s - 1))
            b.every_row(is_leaf * (s - 1))
            b.every_row(is_top * s)
            b.transition(not_top * (s - nxt[col]) * (k_next - width))

    def fill(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Write the columns into `rows` (segments, S, trace width), a view of the trace by
        segment, from `values` (segments, len(widths)): integers, 0 for segments not `on`."""
        ks = np.arange(rows.shape[1], dtype=np.int64)
        sums = np.asarray(values, dtype=np.int64)[:, None, :] >> ks[None, :, None]
        rows[:, :, self.first:self.first + len(self.widths)] = sums
        for width, col in self.selector.items():
            rows[:, :, col] = ks < width
