"""The batch AIR: an honest batch proves and verifies; one malicious prover per constraint
family (each lies in one way, skips its own checks, and is rejected by the constraints and by
the verifier)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from circuits.rollup import batch as B
from circuits.rollup.batch import BatchAir, BatchFact, BatchInputs, apply_fact, batch_trace
from circuits.rollup.leaf import MINTED, USEFULNESS, key_hash
from memjit.rollup.tree import StateTree
from prover import prove
from prover.composition import ConstraintViolation, check_trace
from verifier import ProofParams, verify_air
from verifier.batch import fact_problems, verify_batch

FAST = ProofParams(num_queries=8, grinding_bits=2)
CHALLENGES = [np.array([3, 1, 4, 1], np.uint64), np.array([5, 9, 2, 6], np.uint64)]
DAY = 20_000
KEY1 = tuple(int(x) for x in key_hash(bytes([1] * 32)))
KEY2 = tuple(int(x) for x in key_hash(bytes([2] * 32)))
FACTS = (BatchFact(3, KEY1, 800_000, 200, 50), BatchFact(5, KEY2, 0, 200, 0),
         BatchFact(3, KEY1, 1_000_000, 100, (1 << 30) - 1))


def genesis() -> StateTree:
    """A tree where account 5 exists already (usefulness 300,000, minted 2^30 - 7)."""
    tree = StateTree()
    tree.update(5, apply_fact(np.zeros(16, np.uint64), BatchFact(5, KEY2, 300_000, 1000,
                                                                 (1 << 30) - 7), DAY - 1))
    return tree


def build(applied=FACTS, stated=FACTS, *, new_leaf=None, index_of=None, sibling=None):
    """(statement, trace) of a batch that states `stated` but applies `applied`; hooks change
    a new leaf (new_leaf(i, limbs)), the path index used (index_of(i, index)) or a sibling
    (sibling(i, siblings))."""
    tree = genesis()
    old_root = tuple(int(x) for x in tree.root)
    olds, news, sibs, used = [], [], [], []
    for i, f in enumerate(applied):
        index = f.index if index_of is None else index_of(i, f.index)
        new = apply_fact(tree.limbs(index), f, DAY)
        if new_leaf is not None:
            new = new_leaf(i, new)
        w = tree.update(index, new)
        olds.append(w.old), news.append(w.new), sibs.append(w.siblings.copy())
        if sibling is not None:
            sibs[-1] = sibling(i, sibs[-1])
        used.append(dataclasses.replace(f, index=index))
    new_root = tuple(int(x) for x in tree.root)
    statement = BatchInputs(7, DAY, 10_000_000_000, old_root, new_root, tuple(stated),
                            bytes(32), bytes(32))
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
    assert air.max_degree() == 3 and air.width == 701
    proof = prove(air, main, FAST)
    verdict = verify_batch(statement, proof, min_security_bits=0)
    assert verdict.valid, verdict.reason
    # the same proof under another new root, day or fact list is not a proof of it
    for other in (dataclasses.replace(statement, new_root=statement.old_root),
                  dataclasses.replace(statement, day=DAY + 1),
                  dataclasses.replace(statement, facts=FACTS[:2])):
        assert not verify_batch(other, proof, min_security_bits=0).valid


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
    assert_rejected(*build(applied=FACTS[:2]), prove_it=True)


def test_duplicated_fact_rejected():
    assert_rejected(*build(applied=(FACTS[0], FACTS[0], FACTS[1]), stated=FACTS[:2] + FACTS[:1]))
    assert_rejected(*build(applied=(FACTS[0], FACTS[1], FACTS[1]), stated=FACTS[:2]))


def test_reordered_facts_rejected():
    assert_rejected(*build(applied=(FACTS[1], FACTS[0], FACTS[2])))


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
