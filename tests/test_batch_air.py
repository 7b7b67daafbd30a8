"""The batch AIR: an honest batch proves and verifies; one malicious prover per constraint
family (each lies in one way, skips its own checks, and is rejected by the constraints and by
the verifier), the reward formula's included (a wrong weight, a wrong quotient or remainder, a
reward above the payout) and the stake facts' (a wrong stake after a bond or a release, a slash
not added to the slashed total, stake below 0, a slash applied as a release, kind flags that
are not the public kind, a stake fact that moves usefulness or last use, a call that moves
stake)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from circuits.rollup import batch as B
from circuits.rollup.batch import (BatchAir, BatchFact, BatchInputs, apply_fact, batch_trace,
                                   formula_weight)
from circuits.rollup.leaf import (LAST_DAY, LIMB, MINTED, SLASHED, STAKE, USEFULNESS, Leaf,
                                  key_hash)
from memjit.market import formulas
from memjit.rollup.tree import DEFAULTS, StateTree
from prover import prove
from prover.composition import ConstraintViolation, check_trace
from verifier import ProofParams, verify_air
from verifier.batch import fact_problems, payout, verify_batch

FAST = ProofParams(num_queries=8, grinding_bits=2)
CHALLENGES = [np.array([3, 1, 4, 1], np.uint64), np.array([5, 9, 2, 6], np.uint64)]
DAY = 20_000
KEY1 = tuple(int(x) for x in key_hash(bytes([1] * 32)))
KEY2 = tuple(int(x) for x in key_hash(bytes([2] * 32)))
EMISSION = 10_000_000_000


def genesis() -> StateTree:
    """A tree where account 5 exists already (usefulness 300,000, minted 2^30 - 7)."""
    tree = StateTree()
    tree.update(5, apply_fact(np.zeros(16, np.uint64), BatchFact(5, KEY2, 300_000, 1000,
                                                                 (1 << 30) - 7), DAY - 1))
    return tree


def weighed(facts: tuple[BatchFact, ...]) -> tuple[BatchFact, ...]:
    """The facts with each version-2 fact's weight and reward as the market computes them
    (memjit.market.formulas) on the account's new usefulness in genesis()."""
    tree, out = genesis(), []
    inputs = BatchInputs(7, DAY, EMISSION, (0,) * 8, (0,) * 8, (), bytes(32), bytes(32),
                         old_subroot=(0,) * 8, new_subroot=(0,) * 8)
    for f in facts:
        if f.kind == B.CALL:
            f = dataclasses.replace(f, prior=int(tree.limbs(f.index)[USEFULNESS]) - f.prior)
        new = apply_fact(tree.limbs(f.index), f, DAY)
        tree.update(f.index, new)
        if f.version == 2:
            u = int(new[USEFULNESS])
            w = formulas.weight(u, 1000, f.since, 1000 * f.wrate, 200_000, f.score)
            assert w == formula_weight(u, f, inputs)
            f = dataclasses.replace(f, weight=w, total=f.total + w,
                                    reward=formulas.payout(w, f.total + w, f.emission))
        out.append(f)
    return tuple(out)


def v2(index, key, score, rate, since, others, emission, decay=0):
    """A version-2 fact before weighing: `others` is the rest of its period's weight, `decay`
    how far usefulness fell outside facts before the call (a failure's decay)."""
    return BatchFact(index, key, score, rate, 0, 2, rate if score else 0, since, 0, others,
                     emission, decay)


FACTS = weighed((v2(3, KEY1, 800_000, 200, 7_200, 500, 10_000),
                 BatchFact(5, KEY2, 0, 200, 0),
                 BatchFact(3, KEY1, 1_000_000, 100, (1 << 30) - 1),
                 v2(5, KEY2, 600_000, 1000, B.MAX_SINCE - 1, 0, 10_000, decay=60_000),
                 v2(3, KEY1, 1_000_000, 1000, 0, 3, 1),
                 v2(5, KEY2, 0, 1000, 86_400, 9, 10_000)))


def stake(index, key, kind, amount):
    """A stake fact."""
    return BatchFact(index, key, 0, 0, 0, B.STAKE_VERSION, kind=kind, amount=amount)


# Account 3 bonds (a new account), is called, bonds again (the low limb carries), is slashed
# (it borrows), releases 2^30 (the high limb only), account 5 bonds, account 3 is slashed of
# all it has left (the slashed low limb carries), account 5 is called.
STAKE_FACTS = weighed((stake(3, KEY1, B.BOND, LIMB + 5),
                       BatchFact(3, KEY1, 500_000, 200, 0),
                       stake(3, KEY1, B.BOND, LIMB - 2),
                       stake(3, KEY1, B.SLASH, 7),
                       stake(3, KEY1, B.RELEASE, LIMB),
                       stake(5, KEY2, B.BOND, 100),
                       stake(3, KEY1, B.SLASH, LIMB - 4),
                       v2(5, KEY2, 700_000, 200, 3_600, 10, 10_000)))


def build(applied=None, stated=None, *, new_leaf=None, index_of=None, sibling=None,
          apply=apply_fact):
    """(statement, trace) of a batch that states `stated` but applies `applied`; hooks change
    a new leaf (new_leaf(i, limbs)), the path index used (index_of(i, index)), a sibling
    (sibling(i, siblings)) or the leaf update itself (apply(old, fact, day))."""
    applied = FACTS if applied is None else applied
    stated = FACTS if stated is None else stated
    tree = genesis()
    old_root, old_sub = tuple(int(x) for x in tree.root), tuple(int(x) for x in tree.subroot)
    olds, news, sibs, used = [], [], [], []
    for i, f in enumerate(applied):
        index = f.index if index_of is None else index_of(i, f.index)
        if index_of is not None:  # leaves of other accounts: EMAs start from those leaves
            f = dataclasses.replace(f, prior=min(f.prior, int(tree.limbs(index)[USEFULNESS])))
        new = apply(tree.limbs(index), f, DAY)
        if new_leaf is not None:
            new = new_leaf(i, new)
        w = tree.update(index, new)
        olds.append(w.old), news.append(w.new), sibs.append(w.siblings.copy())
        if sibling is not None:
            sibs[-1] = sibling(i, sibs[-1])
        used.append(dataclasses.replace(f, index=index))
    new_root = tuple(int(x) for x in tree.root)
    statement = BatchInputs(7, DAY, EMISSION, old_root, new_root, tuple(stated),
                            bytes(32), bytes(32), old_subroot=old_sub,
                            new_subroot=tuple(int(x) for x in tree.subroot))
    trace_pi = dataclasses.replace(statement, facts=tuple(used))
    return statement, batch_trace(trace_pi, np.stack(olds), np.stack(news), np.stack(sibs))


def constraints_hold(statement, main) -> None:
    air = BatchAir(statement)
    check_trace(air, main, air.build_aux_trace(main, CHALLENGES), CHALLENGES)


def assert_rejected(statement, main, prove_it: bool = False) -> None:
    with pytest.raises(ConstraintViolation):
        constraints_hold(statement, main)
    if prove_it:
        air = BatchAir(statement)
        assert not verify_air(air, prove(air, main, FAST, check=False), 0).valid


def test_honest_batch_proves_and_verifies():
    statement, main = build()
    constraints_hold(statement, main)
    air = BatchAir(statement)
    assert air.max_degree() == 3 and air.width == 687  # 23 range checks, 10 selectors
    proof = prove(air, main, FAST)
    verdict = verify_batch(statement, proof, min_security_bits=0)
    assert verdict.valid, verdict.reason
    # the same proof under another new root, day or fact list is not a proof of it
    for other in (dataclasses.replace(statement, new_root=statement.old_root,
                                      new_subroot=statement.old_subroot),
                  dataclasses.replace(statement, day=DAY + 1),
                  dataclasses.replace(statement, facts=FACTS[:2])):
        assert not verify_batch(other, proof, min_security_bits=0).valid


def test_subroots_fold_to_the_state_roots():
    """The AIR proves the depth-30 subtree's update; the statement's depth-32 roots are the
    subroots folded with the two empty subtrees (the tree's own), checked by the verifier."""
    tree = genesis()
    assert np.array_equal(B.fold_subroots([tree.subroot, DEFAULTS[30]]), [tree.root, DEFAULTS[32]])


def test_subroot_not_folding_to_the_state_root_rejected():
    """A statement whose subroots are honest for its STARK but do not fold to its state roots
    (the header's) is refused: here the state root after is another tree's."""
    statement, main = build()
    proof = prove(BatchAir(statement), main, FAST)
    for lying in (dataclasses.replace(statement, new_root=statement.old_root),
                  dataclasses.replace(statement, old_root=statement.new_root)):
        assert fact_problems(lying) == ["the statement's depth-30 subroots do not fold to its "
                                        "state roots"]
        assert not verify_batch(lying, proof, 0).valid
    # and subroots that fold to the roots but are not the AIR's: the STARK refuses them
    other = dataclasses.replace(statement, new_subroot=statement.old_subroot,
                                new_root=statement.old_root)
    assert not fact_problems(other) and not verify_batch(other, proof, 0).valid


def test_wrong_reward_rejected():
    def more(i, limbs):
        if i == 0:
            limbs[MINTED] += 1
        return limbs
    assert_rejected(*build(new_leaf=more), prove_it=True)


def test_reward_column_differing_from_the_public_fact_rejected():
    paid_more = (dataclasses.replace(FACTS[0], reward=51), *FACTS[1:])
    assert_rejected(*build(applied=paid_more))


def test_wrong_ema_rejected():
    def higher(i, limbs):
        if i == 2:
            limbs[USEFULNESS] += 1
        return limbs
    assert_rejected(*build(new_leaf=higher))


def test_wrong_path_bit_rejected():
    statement, main = build()
    row = B.SEGMENT + 4  # fact 1, level 4: flip the bit, keep the hashes
    main[B.BIT, row] ^= 1
    assert_rejected(statement, main)


def test_wrong_sibling_rejected():
    def other(i, sibs):
        if i == 1:
            sibs[7, 0] = (int(sibs[7, 0]) + 1) % B.P
        return sibs
    assert_rejected(*build(sibling=other), prove_it=True)


def test_skipped_fact_rejected():
    assert_rejected(*build(applied=FACTS[:-1]), prove_it=True)


def test_duplicated_fact_rejected():
    assert_rejected(*build(applied=(FACTS[0], FACTS[0], FACTS[1]), stated=FACTS[:2] + FACTS[:1]))
    assert_rejected(*build(applied=(*FACTS[:3], FACTS[2]), stated=FACTS[:4]))


def test_reordered_facts_rejected():
    assert_rejected(*build(applied=(FACTS[1], FACTS[0], *FACTS[2:])))


def test_leaf_of_another_account_rejected():
    # the fact of account 3 applied to account 5's leaf (index 5, key of account 3)
    assert_rejected(*build(index_of=lambda i, index: 5 if i == 0 else index))
    # account 5's leaf rewritten with account 3's key at its own index
    def rekey(i, limbs):
        if i == 1:
            limbs[:7] = KEY1
        return limbs
    assert_rejected(*build(new_leaf=rekey))


def test_public_facts_breaking_market_rules_rejected():
    statement, _ = build()
    bad = [dataclasses.replace(FACTS[0], score=1_000_001),
           dataclasses.replace(FACTS[0], rate=1001),
           dataclasses.replace(FACTS[0], reward=10_000_000_001),
           dataclasses.replace(FACTS[1], reward=1),
           dataclasses.replace(FACTS[0], index=1 << 30)]
    for fact in bad:
        st = dataclasses.replace(statement, facts=(fact, *FACTS[1:]))
        assert fact_problems(st)
        assert not verify_batch(st, b"", 0).valid


def _refill(main: np.ndarray, row: int) -> None:
    """Recompute a fact's range-check columns from its row's (possibly lying) columns, so that
    only the constraint a lie breaks can catch it (a value out of range decomposes as if it
    were in range: its running sum misses 0)."""
    segment = main[:, row:row + B.SEGMENT].T[None]  # a view: (1, 31, width)
    B.CHECKS.fill(segment, np.array([B.range_witness(main[:, row], 200)], dtype=np.int64))


def test_wrong_weight_rejected():
    lying = (dataclasses.replace(FACTS[0], weight=FACTS[0].weight + 1,
                                 reward=payout(FACTS[0].weight + 1, FACTS[0].total,
                                               FACTS[0].emission)), *FACTS[1:])
    statement, main = build(applied=lying, stated=lying)
    assert not fact_problems(statement)  # the lie is only visible to the STARK
    assert_rejected(statement, main, prove_it=True)


def test_wrong_quotient_or_remainder_rejected():
    statement, main = build()
    row = 0  # fact 0's leaf row
    t = B.DAY_S + FACTS[0].since
    lies = {
        "seed one higher": {B.SEED: +1},
        "seed one lower, remainder one divisor higher": {B.SEED: -1, B.R0: t & 0x3FFF,
                                                         B.R1: t >> B.LOW},
        "v one lower, remainder 625 higher": {B.V0: -1, B.RHO_A: B.PPM_N},
        "weight's remainder one divisor higher, seed unchanged": {B.RHO_C: 200},
    }
    for name, changes in lies.items():
        lie = main.copy()
        for col, delta in changes.items():
            lie[col, row] = (int(lie[col, row]) + delta) % B.P
        _refill(lie, row)
        with pytest.raises(ConstraintViolation):
            constraints_hold(statement, lie)
    lie = main.copy()
    lie[B.SEED, row] = (int(lie[B.SEED, row]) + 1) % B.P
    _refill(lie, row)
    assert_rejected(statement, lie, prove_it=True)


def test_reward_above_the_formula_rejected():
    statement, main = build()
    proof = prove(BatchAir(statement), main, FAST)
    for fact in (dataclasses.replace(FACTS[0], reward=FACTS[0].reward + 1),
                 dataclasses.replace(FACTS[0], total=FACTS[0].weight - 1),
                 dataclasses.replace(FACTS[0], wrate=0),
                 dataclasses.replace(FACTS[1], weight=1, total=1),
                 dataclasses.replace(FACTS[0], since=B.MAX_SINCE)):
        lying = dataclasses.replace(statement, facts=(fact, *FACTS[1:]))
        assert fact_problems(lying)
        assert not verify_batch(lying, proof, 0).valid


def test_the_verifiers_formula_is_the_markets():
    assert (B.DAY_S, B.PPM) == (formulas.DAY_S, formulas.PPM)
    for weight, total, emission in ((0, 0, 5), (3, 10, 5), (10, 10, 100), (7, 2**53, 2**53 - 1),
                                    (2**20, 2**21 + 1, 10_000)):
        assert payout(weight, total, emission) == formulas.payout(weight, total, emission)


def test_prior_usefulness_above_the_leaf_rejected():
    """A fact's EMA may start below the account's usefulness (a failure decayed it outside the
    facts), never above it."""
    statement, main = build()
    row = 3 * B.SEGMENT  # fact 3 started 60,000 below its account
    lie = main.copy()
    lie[B.PRIOR, row] = int(lie[B.A + USEFULNESS, row]) + 1
    _refill(lie, row)
    with pytest.raises(ConstraintViolation):
        constraints_hold(statement, lie)
    higher = tuple(dataclasses.replace(f, prior=f.prior + 60_001) if i == 3 else f
                   for i, f in enumerate(FACTS))
    with pytest.raises(ValueError, match="decay only lowers"):
        build(applied=higher, stated=higher)


def test_honest_stake_facts_prove_and_verify():
    statement, main = build(STAKE_FACTS, STAKE_FACTS)
    constraints_hold(statement, main)
    proof = prove(BatchAir(statement), main, FAST)
    assert verify_batch(statement, proof, 0).valid
    tree = genesis()
    for f in STAKE_FACTS:
        tree.update(f.index, apply_fact(tree.limbs(f.index), f, DAY))
    three, five = Leaf.of(tree.limbs(3)), Leaf.of(tree.limbs(5))
    assert (three.stake, three.slashed) == (0, LIMB + 3)
    assert (five.stake, five.slashed, five.minted) == (100, 0,
                                                       (1 << 30) - 7 + STAKE_FACTS[-1].reward)
    assert three.usefulness == 100_000 and three.last_day == DAY
    # the same proof is not one of another amount or kind
    for i, other in ((0, dataclasses.replace(STAKE_FACTS[0], amount=LIMB + 6)),
                     (3, dataclasses.replace(STAKE_FACTS[3], kind=B.RELEASE))):
        lying = dataclasses.replace(statement, facts=(*STAKE_FACTS[:i], other,
                                                      *STAKE_FACTS[i + 1:]))
        assert not fact_problems(lying) and not verify_batch(lying, proof, 0).valid


def _leaf_lie(fact: int, limb: int, delta: int):
    """A new_leaf hook adding `delta` to one limb of fact `fact`'s new leaf."""
    def lie(i, limbs):
        if i == fact:
            limbs[limb] = (int(limbs[limb]) + delta) % B.P
        return limbs
    return lie


def test_wrong_stake_after_a_bond_rejected():
    assert_rejected(*build(STAKE_FACTS, STAKE_FACTS, new_leaf=_leaf_lie(0, STAKE, 1)),
                    prove_it=True)
    assert_rejected(*build(STAKE_FACTS, STAKE_FACTS, new_leaf=_leaf_lie(2, STAKE + 1, 1)))


def test_wrong_stake_after_a_release_rejected():
    assert_rejected(*build(STAKE_FACTS, STAKE_FACTS, new_leaf=_leaf_lie(4, STAKE + 1, 1)),
                    prove_it=True)


def test_slash_not_added_to_slashed_rejected():
    assert_rejected(*build(STAKE_FACTS, STAKE_FACTS, new_leaf=_leaf_lie(3, SLASHED, -7)),
                    prove_it=True)
    # nor its stake kept: a slash that only counts
    assert_rejected(*build(STAKE_FACTS, STAKE_FACTS, new_leaf=_leaf_lie(3, STAKE, 7)))


def _wrapping(old, fact, day):
    """The leaf update of a prover that lets stake go below 0: limb arithmetic mod p."""
    if fact.kind != B.RELEASE:
        return apply_fact(old, fact, day)
    new = np.array(old, dtype=np.uint64)
    lo = int(new[STAKE]) - fact.amount % LIMB
    borrow = int(lo < 0)
    new[STAKE] = lo + borrow * LIMB
    new[STAKE + 1] = (int(new[STAKE + 1]) - (fact.amount >> 30) - borrow) % B.P
    return new


def test_stake_below_zero_rejected():
    """Releasing more than is locked: the new stake's high limb wraps mod p, out of its
    23-bit range (the honest update refuses the fact)."""
    facts = (stake(3, KEY1, B.BOND, 10), stake(3, KEY1, B.RELEASE, 11))
    with pytest.raises(ValueError, match="outside the leaf"):
        build(facts, facts)
    statement, main = build(facts, facts, apply=_wrapping)
    assert int(main[B.B + STAKE + 1, B.SEGMENT]) == B.P - 1
    assert_rejected(statement, main, prove_it=True)


def test_slash_applied_as_a_release_rejected():
    applied = tuple(dataclasses.replace(f, kind=B.RELEASE) if i == 3 else f
                    for i, f in enumerate(STAKE_FACTS))
    assert_rejected(*build(applied, STAKE_FACTS), prove_it=True)


def test_kind_flags_not_the_public_kind_rejected():
    statement, main = build(STAKE_FACTS, STAKE_FACTS)
    row = 3 * B.SEGMENT  # the slash of 7
    for flags in ({B.IS_SLASH: 0, B.IS_RELEASE: 1},  # the leaf moves as a slash: kind 2 stated 3
                  {B.IS_BOND: 1},  # two flags: bond + slash
                  {B.IS_SLASH: 0}):  # no flag: a call that moves stake
        lie = main.copy()
        for col, value in flags.items():
            lie[col, row] = value
        with pytest.raises(ConstraintViolation):
            constraints_hold(statement, lie)
    lie = main.copy()
    lie[B.IS_BOND, row + 1] = 1  # a flag off the fact row
    assert_rejected(statement, lie)
    # a bond stated as a call (the applied bond's flags and amount): the accumulator differs
    as_call = (dataclasses.replace(STAKE_FACTS[5], version=1, kind=B.CALL, amount=0),)
    assert_rejected(*build(STAKE_FACTS[5:6], as_call))


def test_stake_fact_that_moves_usefulness_or_last_day_rejected():
    """A bond (fact 2, on an account a call has scored) may not raise the usefulness nor move
    the last use: only calls do."""
    assert_rejected(*build(STAKE_FACTS, STAKE_FACTS, new_leaf=_leaf_lie(2, USEFULNESS, 1)),
                    prove_it=True)
    assert_rejected(*build(STAKE_FACTS, STAKE_FACTS, new_leaf=_leaf_lie(2, LAST_DAY, 1)))


def test_call_that_moves_stake_rejected():
    assert_rejected(*build(STAKE_FACTS, STAKE_FACTS, new_leaf=_leaf_lie(1, STAKE, 5)),
                    prove_it=True)
    assert_rejected(*build(STAKE_FACTS, STAKE_FACTS, new_leaf=_leaf_lie(7, SLASHED, 1)))


def test_public_stake_facts_breaking_the_rules_rejected():
    statement, _ = build(STAKE_FACTS, STAKE_FACTS)
    bad = [dataclasses.replace(STAKE_FACTS[0], amount=0),
           dataclasses.replace(STAKE_FACTS[0], amount=1 << 53),
           dataclasses.replace(STAKE_FACTS[0], kind=B.CALL),
           dataclasses.replace(STAKE_FACTS[0], kind=4),
           dataclasses.replace(STAKE_FACTS[0], reward=1, score=1),
           dataclasses.replace(STAKE_FACTS[0], prior=1),
           dataclasses.replace(STAKE_FACTS[1], amount=5),
           dataclasses.replace(STAKE_FACTS[1], kind=B.BOND)]
    for fact in bad:
        st = dataclasses.replace(statement, facts=(fact, *STAKE_FACTS[1:]))
        assert fact_problems(st), fact
        assert not verify_batch(st, b"", 0).valid
