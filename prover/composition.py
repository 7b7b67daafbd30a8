"""The composition polynomial: constraints over the LDE, divided and randomly combined."""

from __future__ import annotations

import numpy as np

from circuits.air import Air, Domain, as_columns
from circuits.field import P, Fp4, add, ext_mul, ext_scale, lincomb
from circuits.ntt import coset_intt
from prover.domain import LdeDomain
from verifier.stark import SHIFT


class ConstraintViolation(ValueError):
    """The witness does not satisfy the AIR (raised by the prover's own consistency check)."""


def check_trace(air: Air, main: np.ndarray, aux: np.ndarray | None, challenges: list) -> None:
    """Evaluate every constraint on the trace rows; raise on the first violation."""
    n = air.trace_length
    aux = aux if aux is not None else np.zeros((0, n, 4), dtype=np.uint64)
    values = air.evaluate(as_columns(main, False), as_columns(np.roll(main, -1, axis=1), False),
                          as_columns(aux, True), as_columns(np.roll(aux, -1, axis=1), True),
                          [Fp4(c) for c in challenges])
    rows = {Domain.TRANSITION: slice(0, n - 1), Domain.FIRST: slice(0, 1),
            Domain.LAST: slice(n - 1, n), Domain.EVERY: slice(0, n)}
    for i, (dom, val) in enumerate(values):
        v = np.broadcast_to(val.v, (n, 4) if isinstance(val, Fp4) else (n,))[rows[dom]]
        bad = np.flatnonzero(v.reshape(len(v), -1).any(axis=1))
        if len(bad):
            row = bad[0] + rows[dom].start
            raise ConstraintViolation(f"{air.name}: constraint {i} ({dom.name.lower()}) fails at row {row}")


def composition_evals(air: Air, domain: LdeDomain, main_lde: np.ndarray, aux_lde: np.ndarray,
                      challenges: list, alphas: np.ndarray) -> np.ndarray:
    """C(x) = sum_i alpha_i c_i(x) / Z_i(x) at every LDE point, (M, 4).

    main_lde is (width, M); aux_lde is (aux_width, M, 4). The next row of x is g x, which on the
    coset in natural order is `blowup` positions further.
    """
    b = domain.blowup
    values = air.evaluate(as_columns(main_lde, False), as_columns(np.roll(main_lde, -b, axis=1), False),
                          as_columns(aux_lde, True), as_columns(np.roll(aux_lde, -b, axis=1), True),
                          [Fp4(c) for c in challenges])
    total = np.zeros((domain.size, 4), dtype=np.uint64)
    for dom in Domain:
        idx = [i for i, (d, _) in enumerate(values) if d is dom]
        if not idx:
            continue
        base = [i for i in idx if not isinstance(values[i][1], Fp4)]
        num = np.zeros((domain.size, 4), dtype=np.uint64)
        if base:
            cols = np.stack([np.broadcast_to(values[i][1].v, (domain.size,)) for i in base])
            num = lincomb(cols, alphas[base])
        for i in idx:
            if isinstance(values[i][1], Fp4):
                num = add(num, ext_mul(values[i][1].v, alphas[i]))
        total = add(total, ext_scale(num, domain.inv_divisor(dom)))
    return total


def composition_segments(air: Air, evals: np.ndarray, segments: int, check: bool) -> np.ndarray:
    """Split C into `segments` polynomials of degree < n: coefficients (segments, 4, n)."""
    n = air.trace_length
    coeffs = coset_intt(np.ascontiguousarray(evals.T), SHIFT)  # (4, M)
    if check and coeffs[:, segments * n:].any():
        raise ConstraintViolation(f"{air.name}: composition polynomial exceeds its degree bound")
    return coeffs[:, :segments * n].reshape(4, segments, n).transpose(1, 0, 2)
