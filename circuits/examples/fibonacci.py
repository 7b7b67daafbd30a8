"""Fibonacci AIR: two columns (x, y) with x' = y, y' = x + y; the baseline for benchmarks."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from circuits.air import Air, ConstraintBuilder
from circuits.field import P


@dataclass(frozen=True)
class FibonacciInputs:
    """The statement: starting from (a, b), after n_rows - 1 steps y equals result."""

    n_rows: int
    result: int
    a: int = 1
    b: int = 1


class FibonacciAir(Air):
    name = "fibonacci"
    width = 2

    def __init__(self, public_inputs: FibonacciInputs) -> None:
        super().__init__(public_inputs, public_inputs.n_rows)

    def public_inputs_bytes(self) -> bytes:
        pi = self.public_inputs
        return struct.pack("<QQQQ", pi.n_rows, pi.a % P, pi.b % P, pi.result % P)

    def eval(self, b: ConstraintBuilder) -> None:
        pi = self.public_inputs
        x, y = b.main_cur
        x_next, y_next = b.main_nxt
        b.first_row(x - pi.a)
        b.first_row(y - pi.b)
        b.transition(x_next - y)
        b.transition(y_next - (x + y))
        b.last_row(y - pi.result)


def fibonacci_trace(n_rows: int, a: int = 1, b: int = 1) -> tuple[np.ndarray, FibonacciInputs]:
    """The (2, n_rows) trace and its statement."""
    trace = np.empty((2, n_rows), dtype=np.uint64)
    x, y = a % P, b % P
    for i in range(n_rows):  # building the witness is inherently sequential
        trace[0, i], trace[1, i] = x, y
        x, y = y, (x + y) % P
    return trace, FibonacciInputs(n_rows=n_rows, result=int(trace[1, -1]), a=a, b=b)
