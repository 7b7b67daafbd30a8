"""The AIR interface: a statement's trace shape and constraints, written once.

An ``Air`` describes an execution trace of ``trace_length`` rows (a power of two) with
``width`` base-field columns and, optionally, ``aux_width`` extension-field columns built after
``num_challenges`` random extension challenges are drawn (LogUp and permutation arguments).

Constraints are emitted by ``Air.eval`` into a ``ConstraintBuilder``, as ordinary arithmetic on
``Fp``/``Fp4`` values. The same code runs

* in the prover on whole low-degree-extension columns (numpy vectors),
* in the verifier at the out-of-domain point (extension scalars), and
* symbolically on ``Degree`` values, which gives every constraint's degree, so the composition
  polynomial's size follows from the constraints themselves instead of a hand-kept table.

Each constraint holds on a set of rows, named by its ``Domain``: every row but the last
(transitions, which see the next row), the first row, the last row, or every row. Boundary
assertions are first/last-row constraints such as ``cur[0] - public_value``.

What the security formula (``verifier.params``) reads from an AIR: the trace length, the maximum
constraint degree and the composition segments (both derived from ``eval``), and, for an AIR with
a lookup argument, ``lookup_width`` and ``lookup_denominators()``. An AIR with a LogUp (or
permutation) argument must set both, counting every denominator the argument divides by -- on
every row, padding included, and on the public side it adds itself -- or its proofs will claim
more security than they have. Denominators the AIR computes for the verifier (its public side)
must never be zero: raise ``ZeroDenominator`` instead of dividing (the proof is then rejected).
"""

from __future__ import annotations

import enum
import os
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from circuits.field import Fp, Fp4


class ZeroDenominator(ArithmeticError):
    """A denominator the verifier computes itself (the public side of a lookup argument) is zero:
    a challenge hit a public tuple's fingerprint. The sum is undefined; the proof is rejected."""


class Domain(enum.IntEnum):
    """The rows on which a constraint must vanish; fixes its divisor polynomial."""

    TRANSITION = 0  # rows 0 .. n-2; divisor (x^n - 1) / (x - g^(n-1))
    FIRST = 1  # row 0; divisor x - 1
    LAST = 2  # row n-1; divisor x - g^(n-1)
    EVERY = 3  # rows 0 .. n-1; divisor x^n - 1


class Degree:
    """Symbolic value that tracks polynomial degree in units of the trace degree."""

    __slots__ = ("d",)

    def __init__(self, d: int) -> None:
        self.d = d

    def __add__(self, o: Any) -> "Degree":
        d = o.d if type(o) is Degree else 0
        return self if self.d >= d else o

    __radd__ = __sub__ = __rsub__ = __add__

    def __mul__(self, o: Any) -> "Degree":
        return Degree(self.d + o.d) if type(o) is Degree else self

    __rmul__ = __mul__

    def __neg__(self) -> "Degree":
        return self

    def __pow__(self, e: int) -> "Degree":
        return Degree(self.d * e)


Value = Any  # Fp, Fp4 or Degree: whatever the evaluation context supplies


@dataclass
class ConstraintBuilder:
    """What an AIR's ``eval`` sees: the current and next rows, the challenges, and sinks."""

    main_cur: Sequence[Value]
    main_nxt: Sequence[Value]
    aux_cur: Sequence[Value]
    aux_nxt: Sequence[Value]
    challenges: Sequence[Value]

    def __post_init__(self) -> None:
        self.constraints: list[tuple[Domain, Value]] = []
        self.sources: list[str] | None = None  # "file:line" per constraint, when recorded

    def _add(self, domain: Domain, expr: Value) -> None:
        self.constraints.append((domain, expr))
        if self.sources is not None:
            frame = sys._getframe(2)  # the AIR code that called transition() etc.
            self.sources.append(f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}")

    def transition(self, expr: Value) -> None:
        """expr = 0 on every row but the last (it may use the next row)."""
        self._add(Domain.TRANSITION, expr)

    def first_row(self, expr: Value) -> None:
        """expr = 0 on the first row."""
        self._add(Domain.FIRST, expr)

    def last_row(self, expr: Value) -> None:
        """expr = 0 on the last row."""
        self._add(Domain.LAST, expr)

    def every_row(self, expr: Value) -> None:
        """expr = 0 on every row (it must not use the next row)."""
        self._add(Domain.EVERY, expr)


class Air(ABC):
    """A constraint system over an execution trace, built from a statement's public inputs."""

    name: str  # identifies the AIR in proofs and transcripts
    width: int  # base-field main columns
    aux_width: int = 0  # extension-field auxiliary columns
    num_challenges: int = 0  # extension challenges drawn before the auxiliary trace
    lookup_width: int = 0  # fields of the widest tuple the lookup argument fingerprints (0: none)

    def __init__(self, public_inputs: Any, trace_length: int) -> None:
        if trace_length < 2 or trace_length & (trace_length - 1):
            raise ValueError(f"trace length {trace_length} is not a power of two >= 2")
        self.public_inputs = public_inputs
        self.trace_length = trace_length
        self.log_trace_length = trace_length.bit_length() - 1

    @abstractmethod
    def public_inputs_bytes(self) -> bytes:
        """Canonical encoding of the public inputs, absorbed before any challenge."""

    @abstractmethod
    def eval(self, b: ConstraintBuilder) -> None:
        """Emit every constraint of the AIR into ``b`` (same order on every call)."""

    def build_aux_trace(self, main: np.ndarray, challenges: list[np.ndarray]) -> np.ndarray:
        """The auxiliary columns (aux_width, n, 4) from the main trace (width, n) and challenges."""
        raise NotImplementedError(f"{self.name} has no auxiliary trace")

    # --- derived shape ---------------------------------------------------------------------

    def constraint_sources(self) -> list[str]:
        """Where each constraint is written ("control.py:78"), for messages naming one."""
        one = Degree(1)
        b = ConstraintBuilder([one] * self.width, [one] * self.width, [one] * self.aux_width,
                              [one] * self.aux_width, [Degree(0)] * self.num_challenges)
        b.sources = []
        self.eval(b)
        return b.sources

    def constraint_degrees(self) -> list[tuple[Domain, int]]:
        """Each constraint's domain and degree, from a symbolic evaluation (computed once)."""
        cached = self.__dict__.get("_degrees")
        if cached is not None:
            return cached
        one = Degree(1)
        b = ConstraintBuilder(
            [one] * self.width, [one] * self.width,
            [one] * self.aux_width, [one] * self.aux_width,
            [Degree(0)] * self.num_challenges,
        )
        self.eval(b)
        self._degrees = [(dom, e.d if isinstance(e, Degree) else 0) for dom, e in b.constraints]
        return self._degrees

    def max_degree(self) -> int:
        """The highest constraint degree (every trace column has degree 1)."""
        return max((d for _, d in self.constraint_degrees()), default=0)

    def lookup_denominators(self) -> int:
        """How many denominators the AIR's lookup argument sums: every row's terms times the
        trace length, plus the public side the AIR adds itself. 0 without a lookup argument."""
        return 0

    def num_segments(self) -> int:
        """How many degree-<n columns the composition polynomial is split into.

        A degree-d constraint over n rows has degree d(n-1); dividing by its domain's vanishing
        polynomial leaves < (d-1)n for transition and every-row constraints and < d*n for
        first/last-row ones.
        """
        segments = 1
        for dom, d in self.constraint_degrees():
            segments = max(segments, d - 1 if dom in (Domain.TRANSITION, Domain.EVERY) else d)
        return segments

    def evaluate(self, main_cur, main_nxt, aux_cur, aux_nxt, challenges) -> list[tuple[Domain, Value]]:
        """Run ``eval`` on concrete values; returns (domain, value) per constraint."""
        b = ConstraintBuilder(main_cur, main_nxt, aux_cur, aux_nxt, challenges)
        self.eval(b)
        return b.constraints


class Columns(list):
    """Field vectors that are the rows of one array, ``matrix``: a kernel that reads many
    columns at once (circuits.bus) takes the array instead of the list."""

    def __init__(self, matrix: np.ndarray, ext: bool) -> None:
        self.matrix = matrix
        super().__init__((Fp4 if ext else Fp)(v) for v in matrix)


def as_columns(values: np.ndarray, ext: bool) -> Columns:
    """Wrap the rows of a (k, ...) array as k field vectors (views, no copies)."""
    return Columns(np.ascontiguousarray(values, dtype=np.uint64), ext)
