"""The batch AIR: a batch of facts moves the state tree from one root to the next.

Each fact updates one account: the leaf at its index goes from `old` to `new` limbs
(circuits.rollup.leaf) by the market's rules, and both leaves hash up the same 30 siblings, the
old one to the current root and the new one to the next root. The roots are the depth-30
subtree's that holds every account (indexes are < 2^30): the state tree is depth 32, and the
verifier folds each subroot, twice a left child, with the two empty subtrees' constant digests
to get the statement's state roots (fold_subroots; collision resistance binds the subroot to the
root). A fact takes a segment of 31 rows: a leaf row (k = 0) hashing both leaves, then a row per
level (k = 1..30) hashing the two paths' nodes with the level's sibling; row k = 30 outputs the
two subroots. Every row holds two Poseidon2 permutations (circuits.rollup.poseidon2_air): lane A
the old path, lane B the new. Rows after the last fact (at least one: 31 never divides the
power-of-two length) are inactive segments hashing zeros; they carry the new root and the final
accumulator to the last row.

Columns (687): lane A (298), lane B (298), sibling (8), path bit, k, is_leaf + its inverse
witness, is_top + its inverse witness, active, fact = is_leaf * active, top = is_top * active,
the current root (8), seq, index, the index accumulated from the path bits, 2^(k), score, rate
(thousandths of a million), reward, the EMA remainder, fresh (the old slot is empty), the
minted limb's carry, the reward formula's 15 columns (weight rate, seconds since last use,
weight, the two-limb quotients, remainders and carries, the prior usefulness; BatchAir._formula),
the new usefulness' high limb u1, the stake facts' 7 (the kind flags bond, release, slash; the
stake limb's carry or borrow; the slashed limb's carry; the amount's two limbs), then the range
checks: 23 running-sum columns (RANGES: the remainder < 1000 as rem and 999 - rem < 2^10, the
new usefulness' limbs u0 < 2^14 and u1 < 2^6, the new minted low limb < 2^30, the formula's 15,
the new stake's limbs < 2^30 and < 2^23, the new slashed low limb < 2^30) and 10 selectors
[k < B], one per distinct width below 30 (circuits.rollup.ranges: a value is checked over its
fact's 31 rows).

Constraints (degree <= 3):

- each lane is a Poseidon2 permutation (every row);
- k counts 0..30 and wraps; is_leaf = [k = 0], is_top = [k = 30] by inverse witnesses; active
  starts at 1, may only drop after a top row and never comes back, ends at 0;
- outside leaf rows each lane's input is (node, sibling) or (sibling, node) by the row's bit,
  node being the lane's output on the previous row; both lanes share the sibling and the bit;
- the index: at the leaf row 2^k = 1 and the sum 0, each level adds bit * 2^(k-1); at the top
  row the sum equals the fact's index (carried unchanged through the segment): 30 bits, so
  the index is < 2^30 < p, read unambiguously;
- the root: starts at the public old subroot; at an active top row lane A's output equals it
  and the next root is lane B's output; it ends at the public new subroot;
- the fact's kind: flags bond, release, slash and call = fact - bond - release - slash, all
  boolean, so exactly one is set on a fact row and none elsewhere; the kind (bond + 2 release
  + 3 slash) is a field of the fact accumulator, so it is the public fact's;
- the leaf update, on a fact row: key hash and version unchanged unless the slot was empty
  (fresh: old limbs all 0); minted' = minted + reward in 30-bit limbs with a boolean carry;
  for a call: stake and slashed unchanged, usefulness' = (rate score + (1000 - rate) prior)
  // 1000 with a remainder < 1000, the prior usefulness at most the old one (a failure's decay
  happens outside facts: it may only lower it), last day = the batch's day; for a stake fact
  (BatchAir._stake): stake' = stake + amount (bond) or stake - amount (release, slash) over two
  limbs with a carry or borrow, the new limbs range-checked (30 and 23 bits: stake never goes
  below 0 nor reaches 2^53), slashed' = slashed + amount for a slash (a boolean carry, the low
  limb range-checked), usefulness and last day unchanged, score and reward 0;
- the range checks (RANGES, circuits.rollup.ranges.RangeChecks): each value's running sum
  starts at it on the fact row, halves by a bit per row and is 0 from row k = B on;
- the weight (version-2 facts): weight = seed(usefulness', B, since) * wrate // e, the market's
  formula, in three floor divisions with quotient and remainder witnesses (BatchAir._formula);
- the facts: seq starts at the statement's `first` (the sequence number of its first fact in
  the batch: a batch proven as a chain of STARKs, memjit.rollup.proving, numbers its facts
  across them) and counts segments; an auxiliary column accumulates, on every
  fact row, acc' = acc gamma + 1 + sum_j beta^(j+1) field_j over the fact's 19 fields (seq,
  index, score, rate, reward, weight rate, since, weight, prior, kind, the amount's two limbs,
  key hash), from 0 to the
  value the verifier computes from the public facts: a skipped, extra, reordered or altered fact changes it (gamma, beta are drawn
  after the main trace is committed). The verifier itself checks the public facts' ranges.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field

import numpy as np

from circuits.air import Air, ConstraintBuilder, Degree
from circuits.field import P, ext_from_base, ext_mul, ext_powers, lincomb
from circuits.poseidon2 import DIGEST, WIDTH, compress, permute
from circuits.rollup import leaf as L
from circuits.rollup import poseidon2_air as p2
from circuits.rollup.ranges import RangeChecks

TREE_DEPTH = 32  # the state tree's depth (memjit.rollup.tree)
DEPTH = 30  # the levels the AIR proves: indexes are < 2^30, so the top two always go left
SEGMENT = DEPTH + 1
EMA_SCALE = 1000  # rates are whole thousandths of a million (memjit.market.formulas.RATE_STEP)
MAX_USEFULNESS_BITS = 20
FACT_FIELDS = 12 + L.KEY_LIMBS
CALL, BOND, RELEASE, SLASH = range(4)  # fact kinds (memjit.market.facts.KINDS)
STAKE_VERSION = 3  # a stake fact's version (fact v3, memjit.market.facts)
STAKE_HI_BITS = 23  # stake = lo + 2^30 hi < 2^53 (circuits.rollup.leaf.MAX_AMOUNT)
DAY_S, PPM = 86_400, 1_000_000  # memjit.market.formulas' (a test pins them)
# seed = u B DAY // (PPM (DAY + s)) = (u B DAY_N // PPM_N) // (DAY + s): the common factor
# gcd(DAY, PPM) = 1600 cancels, and nested floors of positive integers compose.
DAY_N, PPM_N = DAY_S // 1600, PPM // 1600  # 54, 625
MAX_SCALE = 64_000  # DAY_N * base reward stays below this (a carry then fits 16 bits)
MAX_SINCE = (1 << 26) - DAY_S  # seconds since last use, so that DAY + s < 2^26
LOW = 14  # limb width of the reward formula's two-limb products
# A statement's encoding (BatchInputs.encode): its head, then a record per fact.
STATEMENT_HEAD = struct.Struct("<QQQIIII32I")  # number .. first, the four roots
FACT_STRUCT = struct.Struct("<IIIIQ7IIIIQQQIQ")
FACT_RECORD = np.dtype([("index", "<u4"), ("score", "<u4"), ("rate", "<u4"), ("version", "<u4"),
                        ("reward", "<u8"), ("key", "<u4", 7), ("wrate", "<u4"), ("since", "<u4"),
                        ("prior", "<u4"), ("weight", "<u8"), ("total", "<u8"),
                        ("emission", "<u8"), ("kind", "<u4"), ("amount", "<u8")])
"""FACT_STRUCT as a numpy record (a test pins the two to the same bytes)."""

A, B = 0, p2.COLUMNS
SIB = 2 * p2.COLUMNS
(BIT, K, IS_LEAF, INV_LEAF, IS_TOP, INV_TOP, ACTIVE, FACT, TOP) = range(SIB + 8, SIB + 17)
ROOT = SIB + 17
(SEQ, INDEX, IDX_ACC, POW2, SCORE, RATE, REWARD, REM, FRESH, CARRY) = range(ROOT + 8, ROOT + 18)
(WRATE, SINCE, WEIGHT, V0, V1, RHO_A, C0, SEED, T0, T1, R0, R1, C1, RHO_C, PRIOR, U1) = range(
    ROOT + 18, ROOT + 34)
# The stake facts: kind flags (a call is fact - bond - release - slash), the stake limb's
# carry or borrow, the slashed limb's carry, the amount's two limbs.
(IS_BOND, IS_RELEASE, IS_SLASH, S_CARRY, X_CARRY, AMT0, AMT1) = range(ROOT + 34, ROOT + 41)
# The range checks (name, bits), in the order of _range_values: the leaf update's, then the
# reward formula's; each is one running-sum column over the fact's segment (RangeChecks).
RANGES = (("rem", 10), ("rem_up", 10), ("u0", LOW), ("u1", MAX_USEFULNESS_BITS - LOW),
          ("minted", L.LIMB_BITS), ("v0", LOW), ("v1", 13), ("rho_a", 10), ("rho_a_up", 10),
          ("c0", 16), ("seed", 11), ("t0", LOW), ("t1", 13), ("r0", LOW), ("r1", 13), ("c1", 12),
          ("rho_b_up", 27), ("rho_c", 10), ("rho_c_up", 10), ("decay", 20),
          ("stake0", L.LIMB_BITS), ("stake1", STAKE_HI_BITS), ("slashed", L.LIMB_BITS))
CHECKS = RangeChecks(AMT1 + 1, [bits for _, bits in RANGES], SEGMENT)
WIDTH_ALL = CHECKS.first + CHECKS.width
C0_OFFSET, C1_OFFSET = 640, 1  # the carries may be negative: range-checked with an offset
_BOOLS = [BIT, ACTIVE, FRESH, CARRY, IS_BOND, IS_RELEASE, IS_SLASH, S_CARRY, X_CARRY]
_KEPT_UNLESS_FRESH = list(range(L.KEY, L.KEY + L.KEY_LIMBS))


@dataclass(frozen=True)
class BatchFact:
    """A fact as the batch AIR applies it: the account's index and key hash (7 limbs), the
    score (ppm), the EMA rate in thousandths of a million, and the reward (SWT).

    Version 2 (the market's reward formula) also carries the rate the call's weight used
    (`wrate`, thousandths: the EMA rate for a call scored above 0, else 0), the seconds since
    the account's last use, the weight the AIR proves from the account's new usefulness, and
    the period's total weight and emission, from which the verifier checks the reward
    (memjit.market.formulas.payout). A version-1 fact (recorded before the formula was
    carried) has a weight of 0 and a reward bounded by the statement's emission only.

    A stake fact (version 3; `kind` BOND, RELEASE or SLASH, CALL for the others) moves the
    account's locked stake by `amount` (a bond adds, a release or a slash takes; a slash also
    adds it to the slashed total); its score, rates, reward, weight and prior are 0."""

    index: int
    key: tuple[int, ...]
    score: int
    rate: int
    reward: int
    version: int = 1
    wrate: int = 0
    since: int = 0
    weight: int = 0
    total: int = 0
    emission: int = 0
    prior: int = 0  # the usefulness the call's EMA started from (<= the leaf's: decay only)
    kind: int = CALL
    amount: int = 0  # the stake a bond, release or slash moves (< 2^53)


@dataclass(frozen=True)
class BatchInputs:
    """The statement of a batch proof (every field is a public input). The AIR proves the
    transition of the depth-30 subtree holding every account (`old_subroot` to `new_subroot`);
    the state roots are the depth-32 tree's, which the verifier checks are the subroots folded
    with the two empty subtrees above (:func:`fold_subroots`)."""

    number: int
    day: int
    emission: int  # the most SWT a version-1 fact may be paid (the period's emission)
    old_root: tuple[int, ...]
    new_root: tuple[int, ...]
    facts: tuple[BatchFact, ...]
    facts_commitment: bytes  # the header's commitment to the published facts
    prev_commitment: bytes  # the previous batch's commitment (32 zero bytes for batch 1)
    base_reward: int = 1000  # B of the seed formula (SWT)
    ema_rate: int = 200  # the consensus EMA rate (thousandths), the weight's denominator
    first: int = 0  # the batch's sequence number of this statement's first fact
    old_subroot: tuple[int, ...] = field(kw_only=True)  # the depth-30 subtree's, before
    new_subroot: tuple[int, ...] = field(kw_only=True)  # ... and after

    @functools.cached_property
    def _encoded(self) -> bytes:
        head = [STATEMENT_HEAD.pack(self.number, self.day, self.emission, self.base_reward,
                                    self.ema_rate, len(self.facts), self.first,
                                    *self.old_root, *self.new_root, *self.old_subroot,
                                    *self.new_subroot),
                self.facts_commitment, self.prev_commitment]
        return b"".join(head + [FACT_STRUCT.pack(f.index, f.score, f.rate, f.version, f.reward,
                                                 *f.key, f.wrate, f.since, f.prior, f.weight,
                                                 f.total, f.emission, f.kind, f.amount)
                                for f in self.facts])

    def encode(self) -> bytes:
        """The statement's bytes (computed once): STATEMENT_HEAD, the facts commitment, the
        previous commitment, then a FACT_STRUCT per fact (struct.error for a field that does
        not fit its slot)."""
        return self._encoded

    def keep_encoding(self, encoded: bytes) -> None:
        """Take `encoded`, the bytes this statement was just decoded from, as its encode(): a
        decoder reads every field at a fixed width, so they are the bytes encode() would pack
        again (verifier.batch.decode_statement; a test pins it)."""
        self.__dict__["_encoded"] = bytes(encoded)

    def fact_table(self) -> np.ndarray:
        """The facts as encoded, one FACT_RECORD each (a read-only view of encode()): what the
        verifier checks and fingerprints column by column (struct.error as encode)."""
        return np.frombuffer(self.encode(), FACT_RECORD, offset=STATEMENT_HEAD.size + 64)


def fact_fields(table: np.ndarray, first: int) -> np.ndarray:
    """The FACT_FIELDS values (FACT_FIELDS, n) the fact accumulator absorbs for each fact of a
    FACT_RECORD table, reduced: its sequence number (from `first`), index, score, rate,
    reward, weight rate, seconds since last use, weight, prior usefulness, kind, the amount's
    two limbs and the key hash's seven."""
    amount = table["amount"]
    seq = np.arange(first, first + len(table), dtype=np.uint64)
    cols = [seq, *(table[name] for name in ("index", "score", "rate", "reward", "wrate",
                                            "since", "weight", "prior", "kind")),
            amount % np.uint64(L.LIMB), amount >> np.uint64(L.LIMB_BITS), *table["key"].T]
    return np.stack([c.astype(np.uint64) for c in cols]) % np.uint64(P)


@functools.cache
def _empty_subtrees() -> tuple[np.ndarray, np.ndarray]:
    """The roots of the empty subtrees of heights 30 and 31 (reference Poseidon2): the
    siblings of a depth-30 subroot's path to the depth-32 root."""
    node = permute(np.zeros(WIDTH, dtype=np.uint64))[:DIGEST]  # an empty slot's digest
    out = []
    for height in range(TREE_DEPTH):
        if height >= DEPTH:
            out.append(node)
        node = compress(node, node)
    return out[0], out[1]


def fold_subroots(subroots: np.ndarray) -> np.ndarray:
    """The depth-32 roots (..., 8) of trees whose accounts all lie in the depth-30 subtrees
    `subroots` (..., 8) (every index < 2^30): each subroot, left child twice, beside the empty
    subtrees."""
    empty30, empty31 = _empty_subtrees()
    node = np.asarray(subroots, dtype=np.uint64)
    node = compress(node, np.broadcast_to(empty30, node.shape))
    return compress(node, np.broadcast_to(empty31, node.shape))


def trace_length(n_facts: int) -> int:
    """Rows for n facts: 31 per fact and at least one row after them (never 0 rows: 31 does not
    divide a power of two), a power of two >= 64. 2^15 rows hold up to 1,057 facts."""
    return max(64, 1 << (SEGMENT * n_facts).bit_length())


class BatchAir(Air):
    name = "rollup_batch_v3"
    width = WIDTH_ALL
    aux_width = 1
    num_challenges = 2

    def __init__(self, public_inputs: BatchInputs) -> None:
        if not public_inputs.facts:
            raise ValueError("a batch proves at least one fact")
        if any(len(r) != DIGEST for r in (public_inputs.old_root, public_inputs.new_root,
                                          public_inputs.old_subroot, public_inputs.new_subroot)):
            raise ValueError("roots are 8 field elements")
        super().__init__(public_inputs, trace_length(len(public_inputs.facts)))
        self._expected: tuple[bytes, np.ndarray] | None = None

    def public_inputs_bytes(self) -> bytes:
        return self.public_inputs.encode()

    _degrees_of_every_batch: list | None = None
    _segments_of_every_batch: int | None = None

    def constraint_degrees(self):
        """The constraints and their degrees do not depend on the statement: derived once per
        process (the symbolic pass costs as much as the verifier's evaluation at z)."""
        if BatchAir._degrees_of_every_batch is None:
            BatchAir._degrees_of_every_batch = super().constraint_degrees()
        return BatchAir._degrees_of_every_batch

    def num_segments(self) -> int:
        """As the degrees, once per process."""
        if BatchAir._segments_of_every_batch is None:
            BatchAir._segments_of_every_batch = super().num_segments()
        return BatchAir._segments_of_every_batch

    def _fingerprint(self, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """The accumulator's final value over the public facts (cached per challenge pair)."""
        key = gamma.tobytes() + beta.tobytes()
        if self._expected is not None and self._expected[0] == key:
            return self._expected[1]
        facts = self.public_inputs.facts
        fields = fact_fields(self.public_inputs.fact_table(), self.public_inputs.first)
        betas = ext_powers(beta, FACT_FIELDS + 1)[1:]
        terms = (lincomb(fields, betas) + ext_from_base(np.uint64(1))) % P
        gammas = ext_powers(gamma, len(facts))[::-1]
        value = ext_mul(terms, gammas).sum(axis=0) % P
        self._expected = (key, value)
        return value

    def eval(self, b: ConstraintBuilder) -> None:
        c, n = b.main_cur, b.main_nxt
        (acc,), (acc_n,) = b.aux_cur, b.aux_nxt
        gamma, beta = b.challenges
        pi = self.public_inputs
        for expr in p2.lane_constraints([c[A:A + p2.COLUMNS], c[B:B + p2.COLUMNS]]):
            b.every_row(expr)
        for col in _BOOLS:
            b.every_row(c[col] * (c[col] - 1))
        k, is_leaf, is_top, active = c[K], c[IS_LEAF], c[IS_TOP], c[ACTIVE]
        fact, top = c[FACT], c[TOP]
        b.every_row(is_leaf * k)
        b.every_row(k * c[INV_LEAF] - (1 - is_leaf))
        b.every_row(is_top * (k - DEPTH))
        b.every_row((k - DEPTH) * c[INV_TOP] - (1 - is_top))
        b.every_row(fact - is_leaf * active)
        b.every_row(top - is_top * active)
        b.first_row(k)
        b.transition(n[K] - (k + 1) * (1 - is_top))
        b.first_row(active - 1)
        b.transition(n[ACTIVE] * (1 - active))
        b.transition((active - n[ACTIVE]) * (1 - is_top))
        b.last_row(active)
        # Paths: both lanes hash the previous row's output with the same sibling and bit.
        not_top = 1 - is_top
        bit_n = n[BIT]
        for lane in (A, B):
            out = c[lane + p2.OUTPUT:lane + p2.OUTPUT + DIGEST]
            for j in range(DIGEST):
                sib = n[SIB + j]
                b.transition(not_top * (n[lane + j] - out[j] - bit_n * (sib - out[j])))
                b.transition(not_top * (n[lane + DIGEST + j] - sib - bit_n * (out[j] - sib)))
        # The index: its 30 bits weighted by 2^(level-1) sum to it (so it is < 2^30 < p).
        b.every_row(is_leaf * c[IDX_ACC])
        b.every_row(is_leaf * (c[POW2] - 1))
        b.transition(not_top * (n[IDX_ACC] - c[IDX_ACC] - bit_n * c[POW2]))
        b.transition(not_top * (n[POW2] - 2 * c[POW2]))
        b.transition(not_top * (n[INDEX] - c[INDEX]))
        b.every_row(top * (c[IDX_ACC] - c[INDEX]))
        b.every_row(is_leaf * c[BIT])
        # Roots: the depth-30 subtree's (the verifier folds them to the state roots).
        for j in range(DIGEST):
            root = c[ROOT + j]
            b.first_row(root - pi.old_subroot[j])
            b.every_row(top * (c[A + p2.OUTPUT + j] - root))
            b.transition(n[ROOT + j] - root - top * (c[B + p2.OUTPUT + j] - root))
            b.last_row(root - pi.new_subroot[j])
        # The leaf update (fact rows).
        old, new = c[A:A + WIDTH], c[B:B + WIDTH]
        fresh = c[FRESH]
        b.every_row(fresh * (1 - fact))
        for i in range(WIDTH):
            b.every_row(fresh * old[i])
        for i in _KEPT_UNLESS_FRESH:
            b.every_row(fact * (1 - fresh) * (new[i] - old[i]))
        b.every_row(fact * (new[L.VERSION] - L.LEAF_VERSION))
        call, stake_fact = self._stake(b, c, old, new, fact)
        rate, score = c[RATE], c[SCORE]
        b.every_row(call * (new[L.USEFULNESS] * EMA_SCALE + c[REM] - rate * score
                            - (EMA_SCALE - rate) * c[PRIOR]))
        b.every_row(call * (new[L.LAST_DAY] - pi.day))
        b.every_row(stake_fact * (new[L.USEFULNESS] - old[L.USEFULNESS]))
        b.every_row(stake_fact * (new[L.LAST_DAY] - old[L.LAST_DAY]))
        b.every_row(stake_fact * score)
        b.every_row(stake_fact * c[REWARD])
        b.every_row(fact * (new[L.MINTED] + c[CARRY] * L.LIMB - old[L.MINTED] - c[REWARD]))
        b.every_row(fact * (new[L.MINTED + 1] - old[L.MINTED + 1] - c[CARRY]))
        self._formula(b, c, fact)
        CHECKS.constraints(b, c, n, _range_values(c, pi.ema_rate), fact, is_leaf, is_top, n[K])
        # The facts, in order: seq counts segments; the accumulator binds the public facts.
        b.first_row(c[SEQ] - pi.first)
        b.transition(n[SEQ] - c[SEQ] - is_top)
        fields = [c[SEQ], c[INDEX], score, rate, c[REWARD], c[WRATE], c[SINCE], c[WEIGHT],
                  c[PRIOR], _kind(c), c[AMT0], c[AMT1], *new[L.KEY:L.KEY + L.KEY_LIMBS]]
        term = 1 + beta * fields[0]
        power = beta
        for f in fields[1:]:
            power = power * beta
            term = term + power * f
        b.first_row(acc)
        b.transition(acc_n - acc - fact * (acc * (gamma - 1) + term))
        if isinstance(gamma, Degree):
            b.last_row(acc)
        else:
            b.last_row(acc - type(gamma)(self._fingerprint(gamma.v, beta.v)))

    @staticmethod
    def _stake(b: ConstraintBuilder, c, old, new, fact):
        """The stake facts' constraints; returns (call, stake_fact), the flags of a call and
        of a stake fact (both 0 off fact rows). The kind flags are boolean and so is
        call = fact - bond - release - slash: exactly one of the four is set on a fact row,
        none elsewhere. With d = bond - release - slash (+1, -1 or 0 for a call) and the
        amount a = a0 + 2^30 a1 (its limbs bound to the public amount by the accumulator):

            stake0' = stake0 + d (a0 - 2^30 c)      c: the carry (d = 1) or borrow (d = -1)
            stake1' = stake1 + d (a1 + c)
            slashed0' + 2^30 x = slashed0 + slash a0,    slashed1' = slashed1 + slash a1 + x

        stake0', slashed0' < 2^30 and stake1' < 2^23 are range-checked (RANGES), so these are
        integer identities: the locked stake never goes below 0 nor reaches 2^53."""
        bond, release, slash = c[IS_BOND], c[IS_RELEASE], c[IS_SLASH]
        call = fact - bond - release - slash
        b.every_row(call * (call - 1))
        d = bond - release - slash
        carry = c[S_CARRY]
        b.every_row(fact * (new[L.STAKE] - old[L.STAKE]) - d * (c[AMT0] - carry * L.LIMB))
        b.every_row(fact * (new[L.STAKE + 1] - old[L.STAKE + 1]) - d * (c[AMT1] + carry))
        b.every_row(fact * (new[L.SLASHED] - old[L.SLASHED]) + c[X_CARRY] * L.LIMB
                    - slash * c[AMT0])
        b.every_row(fact * (new[L.SLASHED + 1] - old[L.SLASHED + 1]) - slash * c[AMT1]
                    - c[X_CARRY])
        return call, bond + release + slash

    def _formula(self, b: ConstraintBuilder, c, fact) -> None:
        """The weight from the account's new usefulness u = u0 + 2^14 u1 (u0 < 2^14, u1 < 2^6
        range-checked, u1 a column): with
        C = DAY_N B and T = DAY + s,

            v    = u C // PPM_N        u C = PPM_N v + rho_a,      0 <= rho_a < PPM_N
            seed = v // T              v = seed T + rho_b,         0 <= rho_b < T
            w    = seed wrate // e     seed wrate = w e + rho_c,   0 <= rho_c < e

        the first two as two-limb identities (limbs of LOW bits, one carry each) so that no
        product reaches p; every limb, remainder and carry is range-checked (RANGES)."""
        pi = self.public_inputs
        scale = DAY_N * pi.base_reward
        u1 = c[U1]
        u0 = c[B + L.USEFULNESS] - (1 << LOW) * u1
        b.every_row(fact * (u0 * scale - PPM_N * c[V0] - c[RHO_A] - (1 << LOW) * c[C0]))
        b.every_row(fact * (u1 * scale - PPM_N * c[V1] + c[C0]))
        b.every_row(fact * (c[T0] + (1 << LOW) * c[T1] - DAY_S - c[SINCE]))
        b.every_row(fact * (c[SEED] * c[T0] + c[R0] - c[V0] - (1 << LOW) * c[C1]))
        b.every_row(fact * (c[SEED] * c[T1] + c[R1] + c[C1] - c[V1]))
        b.every_row(fact * (c[WEIGHT] * pi.ema_rate + c[RHO_C] - c[SEED] * c[WRATE]))

    def build_aux_trace(self, main: np.ndarray, challenges: list[np.ndarray]) -> np.ndarray:
        gamma, beta = challenges
        n = self.trace_length
        acc = np.zeros((n, 4), dtype=np.uint64)
        betas = ext_powers(beta, FACT_FIELDS + 1)[1:]
        rows = np.flatnonzero(main[FACT])
        at = main[:, rows]
        fields = np.stack([*at[[SEQ, INDEX, SCORE, RATE, REWARD, WRATE, SINCE, WEIGHT, PRIOR]],
                           _kind(at), *at[[AMT0, AMT1]],
                           *at[B + L.KEY:B + L.KEY + L.KEY_LIMBS]]) % P
        terms = (lincomb(fields, betas) + ext_from_base(np.uint64(1))) % P
        value = np.zeros(4, dtype=np.uint64)
        start = 0
        for row, term in zip(rows, terms):  # one extension multiply per fact
            acc[start:row + 1] = value
            value = (ext_mul(value, gamma) + term) % P
            start = row + 1
        acc[start:] = value
        return acc[None]


def _kind(c):
    """A fact row's kind from its flags (CALL 0, BOND 1, RELEASE 2, SLASH 3)."""
    return c[IS_BOND] + 2 * c[IS_RELEASE] + 3 * c[IS_SLASH]


def _range_values(c, ema_rate: int) -> list:
    """The values a fact row range-checks (RANGES), from its columns `c` (symbolic in the AIR,
    field elements as integers in the witness): the EMA remainder in [0, 1000), the new
    usefulness' limbs, the new minted low limb, then the reward formula's limbs, remainders
    (each below its divisor) and offset carries, the decay old usefulness - prior, and the new
    stake's limbs and slashed low limb."""
    t = c[T0] + (1 << LOW) * c[T1]
    return [c[REM], EMA_SCALE - 1 - c[REM], c[B + L.USEFULNESS] - (1 << LOW) * c[U1], c[U1],
            c[B + L.MINTED], c[V0], c[V1], c[RHO_A], PPM_N - 1 - c[RHO_A], c[C0] + C0_OFFSET,
            c[SEED], c[T0], c[T1], c[R0], c[R1], c[C1] + C1_OFFSET,
            t - 1 - c[R0] - (1 << LOW) * c[R1], c[RHO_C], ema_rate - 1 - c[RHO_C],
            c[A + L.USEFULNESS] - c[PRIOR], c[B + L.STAKE], c[B + L.STAKE + 1],
            c[B + L.SLASHED]]


def range_witness(row: np.ndarray, ema_rate: int) -> list[int]:
    """A fact row's range-checked values (field elements: a value below 0 wraps to >= 2^30,
    out of every range) from its committed columns."""
    return [v % P for v in _range_values([int(x) for x in row], ema_rate)]


def batch_trace(inputs: BatchInputs, olds: np.ndarray, news: np.ndarray,
                siblings: np.ndarray, columns=p2.columns) -> np.ndarray:
    """The main trace (width, n) of a batch: per fact its old and new limbs (16 each) and the
    siblings of its path (32 or 30, 8; the AIR uses the lower 30) before the update, in fact
    order. `columns` computes the
    Poseidon2 columns (the prover passes its compiled prover.poseidon2.air_columns)."""
    facts = inputs.facts
    n_rows = trace_length(len(facts))
    segs = -(-n_rows // SEGMENT)
    leaf_a = np.zeros((segs, WIDTH), dtype=np.uint64)
    leaf_b = np.zeros((segs, WIDTH), dtype=np.uint64)
    sib = np.zeros((segs, DEPTH, DIGEST), dtype=np.uint64)
    index = np.zeros(segs, dtype=np.int64)
    m = len(facts)
    leaf_a[:m], leaf_b[:m], sib[:m] = olds, news, np.asarray(siblings)[:, :DEPTH]
    index[:m] = [f.index for f in facts]
    bits = (index[:, None] >> np.arange(DEPTH)) & 1  # (segs, 30)
    t = np.zeros((segs, SEGMENT, WIDTH_ALL), dtype=np.uint64)
    for lane, leaf in ((A, leaf_a), (B, leaf_b)):
        cols = columns(leaf)
        t[:, 0, lane:lane + p2.COLUMNS] = cols
        for k in range(1, SEGMENT):
            node = cols[:, p2.OUTPUT:p2.OUTPUT + DIGEST]
            s = sib[:, k - 1]
            right = bits[:, k - 1, None].astype(bool)
            state = np.concatenate([np.where(right, s, node), np.where(right, node, s)], axis=1)
            cols = columns(state)
            t[:, k, lane:lane + p2.COLUMNS] = cols
    ks = np.arange(SEGMENT, dtype=np.uint64)
    t[:, :, K] = ks
    t[:, 0, IS_LEAF] = 1
    t[:, 1:, INV_LEAF] = [pow(int(k), P - 2, P) for k in ks[1:]]
    t[:, -1, IS_TOP] = 1
    t[:, :-1, INV_TOP] = [(pow(int(k) - DEPTH, P - 2, P)) for k in ks[:-1]]
    t[:m, :, ACTIVE] = 1
    t[:m, 0, FACT] = 1
    t[:m, -1, TOP] = 1
    t[:, 1:, SIB:SIB + DIGEST] = sib
    t[:, 1:, BIT] = bits
    t[:, :, SEQ] = inputs.first + np.arange(segs, dtype=np.uint64)[:, None]
    t[:, :, INDEX] = index[:, None].astype(np.uint64)
    weights = (1 << np.arange(DEPTH, dtype=np.uint64))
    t[:, 1:, IDX_ACC] = np.cumsum(bits * weights, axis=1).astype(np.uint64) % P
    t[:, :, POW2] = [pow(2, int(k), P) for k in ks]
    roots = [inputs.old_subroot] + [tuple(int(x) for x in t[s, -1, B + p2.OUTPUT:B + p2.OUTPUT + DIGEST])
                                 for s in range(m)]
    t[:, :, ROOT:ROOT + DIGEST] = np.array(roots + [roots[-1]] * (segs - m),
                                           dtype=np.uint64)[:segs, None, :] % P
    ranged = np.zeros((segs, len(RANGES)), dtype=np.int64)
    for s, f in enumerate(facts):
        row = t[s, 0]
        row[SCORE], row[RATE], row[REWARD] = f.score, f.rate, f.reward
        row[REM] = (f.rate * f.score + (EMA_SCALE - f.rate) * f.prior) % EMA_SCALE
        row[FRESH] = int(not leaf_a[s].any())
        row[CARRY] = (int(leaf_a[s, L.MINTED]) + f.reward) >> L.LIMB_BITS
        _stake_witness(row, leaf_a[s], f)
        _formula_witness(row, int(leaf_b[s, L.USEFULNESS]), f, inputs)
        ranged[s] = range_witness(row, inputs.ema_rate)
    CHECKS.fill(t, ranged)
    return np.ascontiguousarray(t.reshape(segs * SEGMENT, WIDTH_ALL)[:n_rows].T)


def _stake_witness(row: np.ndarray, old: np.ndarray, fact: BatchFact) -> None:
    """Fill a fact row's stake columns (see BatchAir._stake)."""
    a0 = fact.amount % L.LIMB
    row[AMT0], row[AMT1] = a0, fact.amount >> L.LIMB_BITS
    if fact.kind == CALL:
        return
    row[(IS_BOND, IS_RELEASE, IS_SLASH)[fact.kind - 1]] = 1
    lo = int(old[L.STAKE])
    row[S_CARRY] = lo + a0 >= L.LIMB if fact.kind == BOND else lo < a0
    row[X_CARRY] = fact.kind == SLASH and int(old[L.SLASHED]) + a0 >= L.LIMB


def formula_weight(usefulness: int, fact: BatchFact, inputs: BatchInputs) -> int:
    """The weight the AIR proves for a fact whose account's new usefulness is `usefulness`
    (memjit.market.formulas.weight, in the AIR's steps)."""
    v = usefulness * DAY_N * inputs.base_reward // PPM_N
    return v // (DAY_S + fact.since) * fact.wrate // inputs.ema_rate


def _formula_witness(row: np.ndarray, usefulness: int, fact: BatchFact,
                     inputs: BatchInputs) -> None:
    """Fill a fact row's reward-formula columns (see BatchAir._formula)."""
    mask = (1 << LOW) - 1
    x = usefulness * DAY_N * inputs.base_reward
    v, rho_a = divmod(x, PPM_N)
    t = DAY_S + fact.since
    seed, rho_b = divmod(v, t)
    rho_c = seed * fact.wrate % inputs.ema_rate
    u0 = usefulness & mask
    v0, v1, t0, t1, r0, r1 = v & mask, v >> LOW, t & mask, t >> LOW, rho_b & mask, rho_b >> LOW
    c0 = (u0 * DAY_N * inputs.base_reward - PPM_N * v0 - rho_a) >> LOW
    c1 = (seed * t0 + r0 - v0) >> LOW
    named = {WRATE: fact.wrate, SINCE: fact.since, WEIGHT: fact.weight, V0: v0, V1: v1,
             RHO_A: rho_a, C0: c0, SEED: seed, T0: t0, T1: t1, R0: r0, R1: r1, C1: c1,
             RHO_C: rho_c, PRIOR: fact.prior, U1: usefulness >> LOW}
    for col, value in named.items():
        row[col] = value % P


def _amount(limbs: np.ndarray, pos: int) -> int:
    return int(limbs[pos]) + (int(limbs[pos + 1]) << L.LIMB_BITS)


def _set_amount(limbs: np.ndarray, pos: int, amount: int) -> None:
    if not 0 <= amount <= L.MAX_AMOUNT:
        raise ValueError(f"an amount of {amount} SWT is outside the leaf's 0..2^53-1")
    limbs[pos], limbs[pos + 1] = amount % L.LIMB, amount >> L.LIMB_BITS


def apply_fact(old: np.ndarray, fact: BatchFact, day: int) -> np.ndarray:
    """The account limbs after one fact: the rule the AIR enforces (a call: usefulness is
    memjit.market.formulas.ema at rate 1000 * fact.rate and the reward is minted; a stake
    fact moves the locked stake, and a slash adds to the slashed total). ValueError for a
    fact the AIR cannot prove (a prior above the account's, stake below 0 or too large)."""
    new = np.array(old, dtype=np.uint64)
    if not new.any():
        new[L.KEY:L.KEY + L.KEY_LIMBS] = fact.key
    new[L.VERSION] = L.LEAF_VERSION
    if fact.kind != CALL:
        sign = 1 if fact.kind == BOND else -1
        _set_amount(new, L.STAKE, _amount(new, L.STAKE) + sign * fact.amount)
        if fact.kind == SLASH:
            _set_amount(new, L.SLASHED, _amount(new, L.SLASHED) + fact.amount)
        return new
    if fact.prior > int(new[L.USEFULNESS]):
        raise ValueError("a fact's prior usefulness is above its account's (decay only lowers)")
    new[L.USEFULNESS] = (fact.rate * fact.score + (EMA_SCALE - fact.rate) * fact.prior) \
        // EMA_SCALE
    new[L.LAST_DAY] = day
    minted = int(new[L.MINTED]) + (int(new[L.MINTED + 1]) << L.LIMB_BITS) + fact.reward
    new[L.MINTED], new[L.MINTED + 1] = minted % L.LIMB, minted >> L.LIMB_BITS
    return new
