"""The reward formula proven on a real ledger: oracle.settle weighs scored calls (the consensus
rate, a label's lower rate, an own call, a score of 0, a failure's decay between two calls,
days without use), close_periods pays them (the emission shared above its cap) and records
version-2 facts, and the batch proof of those facts proves every weight from the worker's
account in the Poseidon2 state: the proven rewards are exactly what the ledger pays."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Clock, add_call

from memjit.errors import Rejected
from memjit.market import bonds, oracle
from memjit.market.ledger import Ledger, Worker
from memjit.market.registry import RegistryConfig
from memjit.market.rewards import RewardConfig, close_periods, open_period
from memjit.rollup.batcher import Batcher
from memjit.rollup.proving import BatchProver
from memjit.runtime.store import Store
from prover.composition import ConstraintViolation
from verifier.batch import BUNDLE_MAGIC, BUNDLE_VERSION
from test_batch_air import FAST

ALICE, BOB = b"\x01" * 48, b"\x02" * 48
W1, W2 = "aa" * 32, "bb" * 32  # owned by alice and bob
CONFIG = RewardConfig(emission=100)
DAY = 86_400


@pytest.fixture
def market(tmp_path: Path):
    clock = Clock(10_000.0)
    with Ledger(tmp_path, clock=clock) as ledger:
        with ledger.transaction() as db:
            for owner in (ALICE, BOB):
                ledger.add_owner(db, owner)
            for wid, owner in ((W1, ALICE), (W2, BOB)):
                ledger.add_worker(db, Worker(wid, owner, f"cid-{wid[:2]}", "digits",
                                             wid.encode(), 500, 0, 1.0, None, 0, None,
                                             "active"))
                bonds.record(ledger, db, bonds.WORKER, wid, "bond", 500)  # as registry does
        yield ledger, clock, tmp_path


def _call(ledger: Ledger, worker: str, awarded: int | None, rate: int, tag: int,
          requester: bytes = BOB, outcome: str = "valid") -> None:
    """Settle one judged call as the pool does: the oracle's settlement, then the call row."""
    with ledger.transaction() as db:
        w = ledger.worker(worker)
        done = oracle.settle(ledger, db, w, oracle.Check(outcome), awarded, rate,
                             own=w.owner == requester, config=oracle.OracleConfig(),
                             registry=RegistryConfig(), rewards=CONFIG)
        if outcome == "valid":
            add_call(db, requester, worker, ledger.clock(), score=awarded, weight=done.weight,
                     period=open_period(db, ledger.clock(), CONFIG),
                     statement=bytes([tag]) * 32, proof=bytes([tag]) * 32, rate=done.rate,
                     prior=done.prior, since=done.since)


def _market_days(ledger: Ledger, clock: Clock) -> None:
    _call(ledger, W1, 800_000, 200_000, 1)  # consensus rate
    clock.now += 3_600
    _call(ledger, W2, 600_000, 100_000, 2)  # a label backed by half the full stake
    _call(ledger, W2, 900_000, 200_000, 3, requester=BOB)  # its owner's own call: no weight
    clock.now += 2 * DAY + 17
    _call(ledger, W1, None, 0, 0, outcome="fault")  # a slash fact; usefulness decays outside facts
    _call(ledger, W1, 900_000, 200_000, 4)
    _call(ledger, W1, 0, 200_000, 5)  # scored 0: usefulness falls, no weight
    _call(ledger, W2, 1_000_000, 200_000, 6)
    clock.now += 5 * DAY


def test_proven_rewards_are_the_ledgers(market) -> None:
    ledger, clock, home = market
    _market_days(ledger, clock)
    with ledger.transaction() as db:
        closed = close_periods(ledger, db, CONFIG)
    assert [p.calls for p in closed] == [3, 3]
    assert [p.weight > p.paid for p in closed] == [True, True]  # above the cap: shared
    batcher = Batcher(ledger, Store(home), home)
    [header] = batcher.commit_pending(force=True)
    prover = BatchProver(batcher, rewards=CONFIG, params=FAST, min_security_bits=0)
    assert prover.prove_pending() == [1]
    assert prover.verify(1).valid
    facts = prover.bundle(1).facts
    paid = ledger.db.execute("SELECT weight, reward FROM calls WHERE period IS NOT NULL "
                             "ORDER BY period, request").fetchall()
    assert [(f.version, f.weight, f.reward) for f in facts if f.version != 3] == [
        (2, w, r) for w, r in paid]
    assert [(f.version, f.amount) for f in facts if f.version == 3] == [(3, 500), (3, 500),
                                                                      (3, 50)]  # slash 10%
    assert sum(r for _, r in paid) == header.minted and any(w for w, _ in paid)
    state = batcher.state()
    for wid in (W1, W2):  # after its last fact, an account's usefulness is the ledger's
        assert state.leaf(wid).usefulness == ledger.worker(wid).usefulness


def test_a_bundle_of_an_older_version_is_proven_again(market) -> None:
    """A proof recorded by an older memjit (an older bundle version: another AIR) is refused
    with a clear error, and the next prove_pending proves the batch again."""
    ledger, clock, home = market
    _market_days(ledger, clock)
    with ledger.transaction() as db:
        close_periods(ledger, db, CONFIG)
    batcher = Batcher(ledger, Store(home), home)
    batcher.commit_pending(force=True)
    prover = BatchProver(batcher, rewards=CONFIG, params=FAST, min_security_bits=0)
    assert prover.prove_pending() == [1]
    old = bytearray(prover.store.get(ledger.db.execute(
        "SELECT bundle_cid FROM batch_proofs").fetchone()[0]))
    old[len(BUNDLE_MAGIC)] = BUNDLE_VERSION - 1
    with ledger.transaction() as db:
        db.execute("UPDATE batch_proofs SET bundle_cid = ?", (prover.store.put(bytes(old)),))
    outdated = f"version {BUNDLE_VERSION - 1} is not the version this memjit reads"
    with pytest.raises(Rejected, match=outdated):
        prover.verify(1)
    assert prover.prove_pending() == [1] and prover.verify(1).valid
    assert prover.drop_outdated() == 0 and prover.prove_pending() == []


def test_a_weight_the_formula_does_not_give_cannot_be_proven(market) -> None:
    ledger, clock, home = market
    _market_days(ledger, clock)
    with ledger.transaction() as db:
        db.execute("UPDATE calls SET weight = weight + 1 WHERE statement = ?", (bytes([4]) * 32,))
        close_periods(ledger, db, CONFIG)
    batcher = Batcher(ledger, Store(home), home)
    batcher.commit_pending(force=True)
    with pytest.raises((ConstraintViolation, Rejected)):
        BatchProver(batcher, rewards=CONFIG, params=FAST).prove_pending()
