"""The rollup's state: the Poseidon2 tree of memjit.rollup.tree as the facts define it.

Each worker gets the next free index at its first fact (the order of first appearance across
batches, so the index follows from the published data, as zkSync Lite assigns account ids at
registration), and each fact updates its account by circuits.rollup.batch.apply_fact
(a call: usefulness EMA at the fact's rate from its prior usefulness, last day, reward minted;
a stake fact: the locked stake moved by its amount, a slash added to the slashed total). A
version-2 fact (memjit.market.facts.Weighing) carries the rate its call moved usefulness at
and the usefulness it started from, so the account's usefulness is the ledger's after each
fact, and the batch AIR proves its weight from it. The facts alone determine the
state, so a batch publishes its facts and no state diff: anyone holding the facts of batches
1..N recomputes the tree after batch N. The header's state roots are this tree's roots
(memjit.rollup.header.root_bytes); the batch's STARK proves the update (memjit.rollup.proving).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from circuits.rollup.batch import STAKE_VERSION, BatchFact, apply_fact
from circuits.rollup.leaf import USEFULNESS, Leaf, key_hash
from memjit.market.facts import KINDS, Fact
from memjit.market.formulas import DAY_S, RATE_STEP
from memjit.market.oracle import OracleConfig
from memjit.rollup.header import root_bytes
from memjit.rollup.tree import DEFAULTS, DEPTH, StateTree, verify_path

FACT_RATE = OracleConfig().ema_ppm // RATE_STEP
"""The EMA rate (thousandths) a version-1 fact is applied at: it does not record its call's
rate, so the consensus rate stands for it (docs/rollup.md)."""

GENESIS_ROOT = root_bytes(DEFAULTS[DEPTH])
"""The state root before batch 1: the empty tree's."""

__all__ = ["FACT_RATE", "GENESIS_ROOT", "AccountProof", "RollupState", "day_of", "root_bytes"]


def batch_fact(fact: Fact, index: int, usefulness: int) -> BatchFact:
    """A fact as the batch AIR applies it to the account at `index` (whose usefulness is
    `usefulness`): a version-1 fact at the consensus rate from the account's usefulness, a
    version-2 fact as its call was weighed, a stake fact with its kind and amount."""
    key = tuple(int(x) for x in key_hash(bytes.fromhex(fact.worker)))
    if fact.kind != "call":
        return BatchFact(index, key, 0, 0, 0, STAKE_VERSION, kind=KINDS.index(fact.kind),
                         amount=fact.amount)
    w = fact.weighing
    if w is None:
        return BatchFact(index, key, fact.score, FACT_RATE, fact.reward, prior=usefulness)
    rate = w.rate // RATE_STEP
    return BatchFact(index, key, fact.score, rate, fact.reward, 2, rate if fact.score else 0,
                     w.since, w.weight, w.total_weight, w.emission, w.prior)


def day_of(timestamp_ms: int) -> int:
    """The day (since the epoch) a batch cut at `timestamp_ms` writes as accounts' last use."""
    return timestamp_ms // 1000 // DAY_S


@dataclass(frozen=True)
class AccountProof:
    """A worker's account under a state root: its index, 16 leaf limbs and the 32 siblings of
    its path (None for a worker no fact has touched: it has no index, so no leaf to show)."""

    worker: bytes
    state_root: bytes
    index: int | None
    limbs: np.ndarray | None
    siblings: np.ndarray | None

    @property
    def leaf(self) -> Leaf | None:
        return None if self.limbs is None else Leaf.of(self.limbs)

    def verify(self) -> bool:
        """Whether the leaf holds the worker's key hash and hashes up its path to the root
        (reference Poseidon2, numpy only); True for an absent account (nothing is claimed)."""
        if self.index is None or self.limbs is None or self.siblings is None:
            return self.limbs is None
        root = np.frombuffer(self.state_root, dtype="<u4").astype(np.uint64)
        return (tuple(int(x) for x in self.limbs[:7]) == tuple(int(x) for x in key_hash(
            self.worker)) and verify_path(root, self.index, self.limbs, self.siblings))


@dataclass
class RollupState:
    """The state after some batches: the tree and each worker's index."""

    tree: StateTree
    indexes: dict[str, int]

    @classmethod
    def genesis(cls) -> "RollupState":
        return cls(StateTree(), {})

    @property
    def root(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self.tree.root)

    @property
    def subroot(self) -> tuple[int, ...]:
        """The depth-30 subtree's root (the batch AIR's; tree.StateTree.subroot)."""
        return tuple(int(x) for x in self.tree.subroot)

    def leaf(self, worker: str) -> Leaf | None:
        """A worker's account (None if no fact has touched it)."""
        index = self.indexes.get(worker)
        return None if index is None else Leaf.of(self.tree.limbs(index))

    def proof(self, worker: str) -> AccountProof:
        """The worker's leaf and path under the current root."""
        index = self.indexes.get(worker)
        limbs = None if index is None else self.tree.limbs(index)
        siblings = None if index is None else self.tree.siblings(index)
        return AccountProof(bytes.fromhex(worker), root_bytes(self.root), index, limbs, siblings)

    def apply(self, facts: Iterable[Fact], day: int):
        """Apply facts in order; returns (batch facts, olds, news, siblings), the AIR witness."""
        out, olds, news, sibs = [], [], [], []
        for f in facts:
            index = self.indexes.setdefault(f.worker, len(self.indexes))
            fact = batch_fact(f, index, int(self.tree.limbs(index)[USEFULNESS]))
            w = self.tree.update(index, apply_fact(self.tree.limbs(index), fact, day))
            out.append(fact), olds.append(w.old), news.append(w.new), sibs.append(w.siblings)
        return out, np.stack(olds), np.stack(news), np.stack(sibs)
