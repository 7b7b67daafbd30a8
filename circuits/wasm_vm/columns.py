"""The main-trace column layout of the VM AIR: one row per executed instruction (CPU part) and,
in the same rows, one entry per touched memory address (memory-table part).

CPU part::

    clk                row index (timestamps are 3*clk + 1 + slot)
    pc fp depth dinv   registers; dinv inverts depth when non-zero (halting return test)
    pages              the memory's page count (changed by memory.grow)
    imm_lo imm_hi a1 a2 a3 sh   ROM fields of the row (bound by the ROM lookup)
    npc                next pc as the instruction computes it
    s_<op>             one-hot selectors (pad, every proven op, trap rows: see isa)
    X Y Q R Z          value registers, 8 nibbles each (little-endian): X first value read
                       (slot 0), Y second (slot 1), Q/R value before/after the write (slot 2),
                       Z the third component of the nibble lookups (= R but where isa's
                       R_CHECKED / LOW_WORD_IN_Z say otherwise: Y - X for comparisons, the
                       product's low word for shifts, rotations and clz/ctz, the remainder's
                       magnitude for div/rem, index - bound for br_table / call_indirect,
                       the distance past the memory's end on out-of-bounds trap rows)
    k0 k1 k2           slot keys (space base + address); act0 act1 act2 slot activity
    p0 p1 p2           previous timestamps of the slots; tl0 th0 tl1 th1 tl2 th2 their
                       distance limbs (12-bit)
    xinv zinv          inverse witnesses for X == 0 and Z == 0 (sums of nibbles)
    c0 c1              16-bit carries / borrows (12-bit-chunk carries of div/rem's remainder
                       bound); sx sy sign bits of X and Y
    u0..u4             multiplier bytes of the product engine (X, or from the POW table); on
                       br_table / call_indirect rows the looked-up entry's fields
    cm0 cm1 cm2        its 16-bit-chunk carries (12-bit; on call rows cm0, cm1 are the new
                       frame pointer's distance below its limit, on load/store rows the
                       word's distance below the page count and cm2 the address's and
                       offset's high halves summed, on memory.grow rows cm0, cm1 the new
                       count's distance below the cap, on out-of-bounds trap rows cm0, cm1
                       the carries of the access's distance past the end; on div/rem rows cm2
                       is the top limb of the remainder bound's slack); fneg = Y is flipped
                       (shr_s of a negative, signed div/rem by a negative)
    w o0 o1            linear memory: word index and byte offset (bits) of the access; w is
                       the looked-up ROM entry's pc on br_table / call_indirect rows, o0 o1
                       the carries of a signed div/rem's negation
    hn sb              a pinned top nibble and its sign bit: of the loaded byte/halfword, the
                       extended operand, the dividend, clz's low word
    d0 d1              low 12-bit limbs of div/rem's remainder-bound slack |b| - 1 - |r|;
                       on call_indirect type-trap rows d1 is the product that d0 inverts, on
                       byte loads/stores d1 = o0 o1 (the byte-3 flag)
    xz dz              X == 0 and depth == 0 as columns (1 - sum * inverse), so that the
                       flags multiply without raising the AIR's degree above 3
    sg                 the sign flag sx xor sy of signed comparisons (sb xor sy: div_s's
                       quotient sign)
    v0..v3             the product engine's multiplicand bytes: Y's, complemented when fneg

Memory-table part::

    mkey mact mpub     key (strictly increasing), active flag, "initialised from the public table"
    mout               "final value bound to the public output words"
    mfin[8] mts        final value limbs and final timestamp
    mk0 mk1 mk2        the key as two 12-bit limbs and a bit (keys < 2^25)
    mg0 mg1            12-bit limbs of the gap to the next key
"""

from __future__ import annotations

from circuits.wasm_vm.isa import SELECTORS

NIBBLES = 8
REGISTERS = ("X", "Y", "Q", "R", "Z")

NAMES: list[str] = ["clk", "pc", "fp", "depth", "dinv", "pages", "imm_lo", "imm_hi", "a1", "a2",
                    "a3", "sh", "npc"]
NAMES += ["s_" + s for s in SELECTORS]
NAMES += [f"{r}{i}" for r in REGISTERS for i in range(NIBBLES)]
NAMES += ["k0", "k1", "k2", "act0", "act1", "act2", "p0", "p1", "p2",
          "tl0", "th0", "tl1", "th1", "tl2", "th2", "xinv", "zinv", "c0", "c1", "sx", "sy"]
NAMES += [f"u{i}" for i in range(5)] + ["cm0", "cm1", "cm2", "fneg"]
NAMES += ["w", "o0", "o1", "hn", "sb", "d0", "d1", "xz", "dz", "sg"] + [f"v{i}" for i in range(4)]
NAMES += ["mkey", "mact", "mpub", "mout"] + [f"mfin{i}" for i in range(NIBBLES)]
NAMES += ["mts", "mk0", "mk1", "mk2", "mg0", "mg1"]

COL: dict[str, int] = {name: i for i, name in enumerate(NAMES)}
WIDTH = len(NAMES)


def reg(name: str) -> list[int]:
    """Column indices of a register's 8 nibbles (or of ``mfin``)."""
    return [COL[f"{name}{i}"] for i in range(NIBBLES)]
