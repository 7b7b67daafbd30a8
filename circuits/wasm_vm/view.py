"""Named access to one trace row inside constraint code, with shared sub-expressions."""

from __future__ import annotations

from circuits.wasm_vm.columns import COL, reg


class View:
    """Named access to one row of main columns (values of any evaluation context); selector
    sums, registers and 16-bit halves are computed once per view."""

    def __init__(self, row) -> None:
        self.row = row
        self.cache: dict = {}

    def __getattr__(self, name: str):
        return self.row[COL[name]]

    def s(self, *ops: str):
        """Sum of the selectors of ``ops``."""
        key = ("s", *ops)
        if key not in self.cache:
            cols = [self.row[COL["s_" + o]] for o in ops]
            self.cache[key] = sum(cols[1:], cols[0])
        return self.cache[key]

    def r(self, name: str) -> list:
        return [self.row[i] for i in reg(name)]

    def is_zero(self, name: str):
        """1 iff register ``name`` is zero, given the inverse witness of its nibble sum
        (nibbles are range-checked, so the sum is zero only for the zero value)."""
        key = ("z", name)
        if key not in self.cache:
            limbs = self.r(name)
            total = sum(limbs[1:], limbs[0])
            self.cache[key] = (total, 1 - total * self.row[COL[name.lower() + "inv"]])
        return self.cache[key]

    def half(self, name: str, hi: bool):
        """The 16-bit half of register ``name`` (exact: its nibbles are range-checked)."""
        key = ("h", name, hi)
        if key not in self.cache:
            self.cache[key] = half(self.r(name), hi)
        return self.cache[key]


def half(limbs: list, hi: bool):
    """The 16-bit half of a nibble vector (exact: < 2^16)."""
    n = limbs[4:] if hi else limbs[:4]
    return n[0] + 16 * n[1] + 256 * n[2] + 4096 * n[3]
