"""The LDE coset and the constraint divisors evaluated over it."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from circuits.air import Domain
from circuits.field import P, root_of_unity
from circuits.kernels import batch_inv, inv, mul, powers, sub
from verifier.stark import SHIFT


class LdeDomain:
    """The coset SHIFT * <w_M> of size M = n * blowup on which the trace is extended."""

    def __init__(self, n: int, blowup: int) -> None:
        self.n, self.blowup, self.size = n, blowup, n * blowup
        self.g_last = pow(root_of_unity(n), n - 1, P)

    @cached_property
    def x(self) -> np.ndarray:
        """The domain points in natural order."""
        return mul(powers(np.uint64(root_of_unity(self.size)), self.size), np.uint64(SHIFT))

    def inv_divisor(self, domain: Domain) -> np.ndarray:
        """1 / Z(x) for a constraint domain's vanishing polynomial Z, at every point."""
        if domain is Domain.FIRST:
            return batch_inv(sub(self.x, np.uint64(1)))
        if domain is Domain.LAST:
            return batch_inv(sub(self.x, np.uint64(self.g_last)))
        # x^n takes only `blowup` distinct values on the coset: SHIFT^n * w_blowup^i.
        xn = mul(powers(np.uint64(root_of_unity(self.blowup)), self.blowup),
                 np.uint64(pow(SHIFT, self.n, P)))
        inv_zn = np.tile(inv(sub(xn, np.uint64(1))), self.n)
        if domain is Domain.EVERY:
            return inv_zn
        return mul(inv_zn, sub(self.x, np.uint64(self.g_last)))
