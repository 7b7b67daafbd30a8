"""The rollup's Poseidon2 state: the tree of memjit.rollup.tree as the facts define it.

Each worker gets the next free index at its first fact (the order of first appearance across
batches, so the index follows from the published data, as zkSync Lite assigns account ids at
registration), and each fact updates its account by circuits.rollup.batch.apply_fact
(usefulness EMA at the fact's rate, last day, reward minted). The batch header carries the
root after the batch (`zk_root`); the batch's STARK proves the update (memjit.rollup.proving).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from circuits.rollup.batch import BatchFact, apply_fact
from circuits.rollup.leaf import key_hash
from memjit.market.facts import Fact
from memjit.market.formulas import DAY_S, RATE_STEP
from memjit.market.oracle import OracleConfig
from memjit.rollup.tree import StateTree

FACT_RATE = OracleConfig().ema_ppm // RATE_STEP
"""The EMA rate (thousandths) every fact is applied at: facts do not record their call's rate
yet, so the consensus rate stands for all (docs/rollup.md)."""


def day_of(timestamp_ms: int) -> int:
    """The day (since the epoch) a batch cut at `timestamp_ms` writes as accounts' last use."""
    return timestamp_ms // 1000 // DAY_S


def root_bytes(root: Iterable[int]) -> bytes:
    """A Poseidon2 root (8 elements) as 32 little-endian bytes (the header's encoding)."""
    return np.array(list(root), dtype="<u4").tobytes()


@dataclass
class RollupState:
    """The Poseidon2 state after some batches: the tree and each worker's index."""

    tree: StateTree
    indexes: dict[str, int]

    @classmethod
    def genesis(cls) -> "RollupState":
        return cls(StateTree(), {})

    @property
    def root(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self.tree.root)

    def apply(self, facts: Iterable[Fact], day: int):
        """Apply facts in order; returns (batch facts, olds, news, siblings), the AIR witness."""
        out, olds, news, sibs = [], [], [], []
        for f in facts:
            index = self.indexes.setdefault(f.worker, len(self.indexes))
            fact = BatchFact(index, tuple(int(x) for x in key_hash(bytes.fromhex(f.worker))),
                             f.score, FACT_RATE, f.reward)
            w = self.tree.update(index, apply_fact(self.tree.limbs(index), fact, day))
            out.append(fact), olds.append(w.old), news.append(w.new), sibs.append(w.siblings)
        return out, np.stack(olds), np.stack(news), np.stack(sibs)
