"""The LogUp bus of the VM AIR: every lookup of a row, batched into auxiliary columns.

A term is (multiplicity m, tuple); the tuple's fingerprint is ``tag + b f1 + b^2 f2 + ...`` and
the term contributes m / (alpha - fingerprint). Reads, writes and the memory table's init/final
entries are terms of the memory tuple (MEM, key, 8 limbs, ts); the rest look up the public
tables (ROM and its br_table / call_indirect entries, nibble triples, bitwise ops, popcounts,
12-bit range, powers of two).

Every multiplicity and field is linear in the row's columns: the prover compiles the terms
once (:func:`bus_plan`, through :class:`circuits.bus.Linear`) and evaluates the constraints
and the auxiliary trace with one fused kernel; the verifier evaluates the expressions below.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from circuits.air import ConstraintBuilder
from circuits.field import P, Fp4, ext_batch_inv, ext_mul, ext_powers
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.columns import COL, NIBBLES, WIDTH
from circuits.wasm_vm.isa import BR_ENTRY, DIVIDE, DOTS, POW_USERS, R_CHECKED, SELECTOR_OP, \
    TABLE_ENTRY
from circuits.wasm_vm.tensor import TENSOR_WIDTH, Row as TensorRow, lookup_terms as tensor_terms
from circuits.wasm_vm.view import View

if TYPE_CHECKING:
    from circuits.bus import BusPlan

TERMS_PER_COLUMN = 2  # LogUp terms batched per auxiliary column (constraint degree 3)
POW_KIND = {"i32.shl": 0, "i32.rotl": 0, "i32.shr_u": 1, "i32.shr_s": 1, "i32.rotr": 1,
            "i32.clz": 2, "i32.ctz": 3}
"""The POW table kind each POW user looks up (see tables.pow_exponent)."""


@dataclass(frozen=True)
class Lin:
    """A tuple field given as const + sum coef * column (a multi-column field such as an op id)."""

    const: int
    terms: tuple


@dataclass(frozen=True)
class Delta:
    """A memory tuple equal to term ``of``'s but for its timestamp, ``ts_step`` later."""

    of: int
    ts_step: object


def denominator(alpha, fields: list, powers: list):
    """alpha - (fields[0] + b f1 + b^2 f2 + ...) for fields that are ints, values or Lin."""
    flat: list[tuple] = []  # (column value, weight)
    const = 0
    for f, p in zip(fields, powers):
        if isinstance(f, int):
            const = const + p * f if f else const
        elif isinstance(f, Lin):
            const = const + p * f.const if f.const else const
            flat += [(v, p * k) for v, k in f.terms]
        else:
            flat.append((f, p))
    return alpha - const - sum((v * w for v, w in flat[1:]), flat[0][0] * flat[0][1])


def lookup_terms(c: View, tensor: bool = False) -> list[tuple]:
    """Every LogUp term of a row as (multiplicity, tuple fields); with ``tensor``, also the
    precompile calls' and the tensor table's (circuits.wasm_vm.tensor)."""
    pad = c.s_pad
    X, Y, Q, R, Z = (c.r(n) for n in ("X", "Y", "Q", "R", "Z"))
    op = Lin(0, tuple((c.row[COL["s_" + o]], oid) for o, oid in SELECTOR_OP.items() if oid))
    terms = [(pad - 1, [T.ROM, c.pc, op, c.imm_lo, c.imm_hi, c.a1, c.a2, c.a3, c.sh])]
    u = [c.row[COL[f"u{j}"]] for j in range(5)]
    # br_table / call_indirect: a second ROM row, the entry (see alu.table_constraints)
    tables = ("call_indirect", "call_indirect/null", "call_indirect/type")
    entry_op = Lin(0, ((c.s_br_table, BR_ENTRY),
                       *((c.row[COL["s_" + s]], TABLE_ENTRY) for s in tables)))
    terms.append((-c.s("br_table", *tables), [T.ROM, c.w, entry_op, u[0], u[1], c.npc, u[2],
                                              u[3], u[4]]))
    for k, (old, new) in enumerate(((X, X), (Y, Y), (Q, R))):
        act, key = c.row[COL[f"act{k}"]], c.row[COL[f"k{k}"]]
        prev_ts = c.row[COL[f"p{k}"]]
        terms.append((-act, [T.MEM, key, *old, prev_ts]))
        if k < 2:  # a read: the same tuple with the new timestamp
            terms.append((act, Delta(len(terms) - 1, 3 * c.clk + 1 + k - prev_ts)))
        else:
            terms.append((act, [T.MEM, key, *new, Lin(1 + k, ((c.clk, 3),))]))
        terms.append((-act, [T.U12, c.row[COL[f"tl{k}"]]]))
        terms.append((-act, [T.U12, c.row[COL[f"th{k}"]]]))
    tag = Lin(T.R3, tuple((c.row[COL["s_" + o]], t - T.R3) for o, t in
                          (("i32.and", T.AND), ("i32.or", T.OR), ("i32.xor", T.XOR),
                           ("i32.popcnt", T.POPC))))
    nib = pad + c.s("call", "return") - 1
    terms += [(nib, [tag, X[i], Y[i], Z[i]]) for i in range(NIBBLES)]
    r_checked = c.s(*R_CHECKED)  # R is not Z there: range-check R too
    terms += [(-r_checked, [T.R3, *R[j:j + 3], *([0] * (j + 3 - NIBBLES))]) for j in (0, 3, 6)]
    terms.append((pad - 1, [T.U12, Lin(0, ((Y[7], 512), (c.sy, -4096)))]))
    terms.append((pad - 1, [T.U12, Lin(0, ((X[7], 512), (c.sx, -4096)))]))
    terms += [(pad - 1, [T.U12, c.row[COL[f"cm{k}"]]]) for k in range(3)]
    terms.append((pad - 1, [T.U12, Lin(0, ((c.hn, 512), (c.sb, -4096)))]))
    terms += [(-c.s(*DIVIDE, *DOTS), [T.U12, c.row[COL[n]]]) for n in ("d0", "d1")]
    kind = Lin(0, tuple((c.row[COL["s_" + o]], k) for o, k in POW_KIND.items() if k))
    terms.append((-c.s(*POW_USERS), [T.POW, X[0], X[1], kind, *u]))
    fin = c.r("mfin")
    terms += [(c.mact - c.mpub, [T.MEM, c.mkey] + [0] * NIBBLES + [0]),
              (-c.mact, [T.MEM, c.mkey, *fin, c.mts]),
              (-c.mpub, [T.PUBKEY, c.mkey]),
              (-c.mout, [T.PUBOUT, c.mkey, *fin])]
    terms += [(-c.mact, [T.U12, c.row[COL[n]]]) for n in ("mk0", "mk1", "mg0", "mg1")]
    if tensor:
        terms += tensor_terms(c, TensorRow(c.row), len(terms))
    return terms


def beta_powers(beta) -> list:
    """[1, b, b^2, ...] up to the longest tuple."""
    powers = [1, beta]
    for _ in range(T.TUPLE_LEN - 2):
        powers.append(powers[-1] * beta)
    return powers


def lookup_groups(c: View, challenges, tensor: bool = False) -> list[list[tuple]]:
    """The terms as (multiplicity, alpha - fingerprint), in groups of TERMS_PER_COLUMN."""
    alpha, beta = challenges
    powers = beta_powers(beta)
    if isinstance(beta, Fp4):
        powers[0] = beta ** 0  # the one of beta's kind (array or scalar)
    dens: list = []
    fields = lookup_terms(c, tensor)
    for _, f in fields:
        dens.append(dens[f.of] - powers[T.TUPLE_LEN - 1] * f.ts_step
                    if isinstance(f, Delta) else denominator(alpha, f, powers))
    terms = [(m, d) for (m, _), d in zip(fields, dens)]
    return [terms[i:i + TERMS_PER_COLUMN] for i in range(0, len(terms), TERMS_PER_COLUMN)]


def aux_columns(main: np.ndarray, challenges: list[np.ndarray],
                tensor: bool = False) -> np.ndarray:
    """One running LogUp sum per group (exclusive prefix sums): (groups, n, 4). Each group's
    terms are summed as one fraction per row (the fused kernel), so one batch inversion per
    group serves all of its terms."""
    n = main.shape[1]
    plan, weights = bus_plan(tensor), bus_weights(*challenges, tensor)
    main = np.ascontiguousarray(main, dtype=np.uint64)
    aux = np.zeros((len(plan.groups) - 1, n, 4), dtype=np.uint64)
    for j in range(len(aux)):
        num, den = plan.fraction(main, j, weights)
        total = ext_mul(num, ext_batch_inv(den))
        aux[j, 1:] = np.cumsum(total[:-1], axis=0, dtype=np.uint64) % np.uint64(P)
    return aux


@functools.cache
def bus_plan(tensor: bool = False) -> BusPlan:
    """lookup_terms as sparse linear forms of the columns, for the prover's fused kernel."""
    from circuits.bus import BusPlan, Linear  # numba: the prover's alone, kept out of the verifier
    c = View([Linear.column(i) for i in range(WIDTH + (TENSOR_WIDTH if tensor else 0))])
    terms: list[tuple[Linear, list[Linear]]] = []
    for m, fields in lookup_terms(c, tensor):
        if isinstance(fields, Delta):  # the same tuple, its timestamp ts_step later
            of = terms[fields.of][1]
            fields = [*of[:-1], of[-1] + fields.ts_step]
        else:
            fields = [Linear.of(f) if not isinstance(f, Lin) else
                      sum((v * k for v, k in f.terms), Linear(f.const)) for f in fields]
        terms.append((Linear.of(m), fields))
    return BusPlan.compile(terms, TERMS_PER_COLUMN)


@functools.lru_cache(maxsize=4)
def _weights(alpha: bytes, beta: bytes, tensor: bool) -> tuple[np.ndarray, ...]:
    powers = ext_powers(np.frombuffer(beta, np.uint64), T.TUPLE_LEN)
    return bus_plan(tensor).weights(np.frombuffer(alpha, np.uint64), powers)


def bus_weights(alpha: np.ndarray, beta: np.ndarray,
                tensor: bool = False) -> tuple[np.ndarray, ...]:
    """The bus's denominator weights for one pair of challenges (cached: every block of the
    composition uses the same)."""
    return _weights(np.asarray(alpha, np.uint64).tobytes(), np.asarray(beta, np.uint64).tobytes(),
                    tensor)


def logup_constraints(b: ConstraintBuilder, c: View, public_sum, tensor: bool = False) -> None:
    """Each aux column starts at 0 and accumulates its group's terms row by row; at the last
    row (whose terms are all zero) the columns together cancel the public side ``public_sum``
    (None in the symbolic degree pass). The prover, on whole columns, evaluates the same
    expressions with the fused kernel of :func:`bus_plan`."""
    main, aux, aux_n = (getattr(v, "matrix", None) for v in (b.main_cur, b.aux_cur, b.aux_nxt))
    if main is not None and aux is not None and aux_n is not None and main.ndim == 2:
        values = bus_plan(tensor).evaluate(main, aux, aux_n,
                                           bus_weights(*(x.v for x in b.challenges), tensor))
        for j, value in enumerate(values):
            b.transition(Fp4(value))
            b.first_row(b.aux_cur[j])
        total = sum(b.aux_cur[1:], b.aux_cur[0])
        b.last_row(total + public_sum)
        return
    for j, group in enumerate(lookup_groups(c, b.challenges, tensor)):
        h, h_n = b.aux_cur[j], b.aux_nxt[j]
        expr = h_n - h
        for _, d in group:
            expr = expr * d
        for i, (m, _) in enumerate(group):
            prod = m
            for k, (_, d) in enumerate(group):
                if k != i:
                    prod = prod * d
            expr = expr - prod
        b.transition(expr)
        b.first_row(h)
    total = sum(b.aux_cur[1:], b.aux_cur[0])
    b.last_row(total if public_sum is None else total + public_sum)
