"""ROM rows under construction, and the emitter that writes one function's rows.

The emitter tracks the static operand-stack height (in 32-bit slots) as rows are written, so
every row gets its ``sh`` from the stack effects of the rows before it; a multi-row expansion
(:mod:`.int64`) cannot get a height wrong. Local branches inside an expansion go to
:class:`Label` objects, patched when the label is placed.
"""

from __future__ import annotations

from memjit.runtime.wasm.opcodes import BR, BR_EQZ, BR_IF, I32_CONST, LOCAL_GET, LOCAL_SET, LOCAL_TEE, OP, \
    GLOBAL_GET, GLOBAL_SET, SELECT

M32 = 0xFFFFFFFF


class Rom:
    """Column lists under construction; ``emit`` returns the new row's pc."""

    def __init__(self) -> None:
        self.cols: dict[str, list[int]] = {k: [] for k in (
            "op", "imm", "arg1", "arg2", "arg3", "sh", "fuel", "func", "offset")}
        self.headers: set[int] = set()

    @property
    def pc(self) -> int:
        return len(self.cols["op"])

    def emit(self, op: int, sh: int, fuel: int, func: int, offset: int, imm: int = 0,
             arg1: int = 0, arg2: int = 0, arg3: int = 0) -> int:
        pc = self.pc
        for k, v in (("op", op), ("imm", imm), ("arg1", arg1), ("arg2", arg2), ("arg3", arg3),
                     ("sh", sh), ("fuel", fuel), ("func", func), ("offset", offset)):
            self.cols[k].append(v)
        return pc

    def set_target(self, pc: int, target: int) -> None:
        self.cols["arg1"][pc] = target


class Label:
    """A branch target inside an expansion; ``h`` is the stack height every branch to it has."""

    __slots__ = ("pc", "h", "fixups")

    def __init__(self) -> None:
        self.pc: int | None = None
        self.h: int | None = None
        self.fixups: list[int] = []


class Emitter:
    """Writes the rows of one function: ``h`` is the operand height above ``base`` (locals and
    scratch slots lie below it), ``cost`` the fuel the next row carries (an instruction's whole
    fuel goes on its first row), ``scratch`` the slot of scratch local 0."""

    def __init__(self, rom: Rom, func: int, base: int, scratch: int, nscratch: int) -> None:
        self.rom, self.func, self.base = rom, func, base
        self.scratch, self.nscratch = scratch, nscratch
        self.h, self.cost, self.at = 0, 0, -1

    def start(self, at: int, h: int, cost: int) -> None:
        """Begin the rows of the instruction at byte offset ``at``, at operand height ``h``."""
        self.at, self.h, self.cost = at, h, cost

    def row(self, op: int, dh: int, imm: int = 0, arg1: int = 0, arg2: int = 0,
            arg3: int = 0) -> int:
        """One row of op id ``op`` whose stack effect is ``dh`` slots."""
        pc = self.rom.emit(op, self.base + self.h, self.cost, self.func, self.at, imm, arg1,
                           arg2, arg3)
        self.cost = 0
        self.h += dh
        return pc

    def s(self, k: int) -> int:
        """The local index of scratch slot ``k``."""
        assert 0 <= k < self.nscratch, f"scratch slot {k} not reserved"
        return self.scratch + k

    def const(self, value: int) -> None:
        self.row(I32_CONST, 1, imm=value & M32)

    def get(self, local: int) -> None:
        self.row(LOCAL_GET, 1, imm=local)

    def set(self, local: int) -> None:
        self.row(LOCAL_SET, -1, imm=local)

    def tee(self, local: int) -> None:
        self.row(LOCAL_TEE, 0, imm=local)

    def global_get(self, index: int) -> None:
        self.row(GLOBAL_GET, 1, imm=index)

    def global_set(self, index: int) -> None:
        self.row(GLOBAL_SET, -1, imm=index)

    def binary(self, name: str) -> None:
        """An i32 binary operator or comparison (``"i32.add"``)."""
        self.row(OP[name], -1)

    def unary(self, name: str) -> None:
        self.row(OP[name], 0)

    def select(self) -> None:
        self.row(SELECT, -2)

    def pop(self, n: int = 1) -> None:
        """Drop the top ``n`` slots: heights are static, so a drop needs no row."""
        self.h -= n

    def place(self, label: Label) -> None:
        """The next row is ``label``'s target; the height is the branches' height."""
        label.pc = self.rom.pc
        if label.h is None:
            label.h = self.h
        self.h = label.h
        for pc in label.fixups:
            self.rom.set_target(pc, label.pc)

    def branch(self, op: int, label: Label) -> None:
        """``br`` / ``br_if`` / ``br_eqz`` to ``label`` (no values carried)."""
        pc = self.row(op, 0 if op == BR else -1)
        if label.h is None:
            label.h = self.h
        assert label.h == self.h, "branches to a label must agree on the stack height"
        if label.pc is None:
            label.fixups.append(pc)
        else:
            self.rom.set_target(pc, label.pc)

    def br(self, label: Label) -> None:
        self.branch(BR, label)

    def br_if(self, label: Label) -> None:
        self.branch(BR_IF, label)

    def br_eqz(self, label: Label) -> None:
        self.branch(BR_EQZ, label)
