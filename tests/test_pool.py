"""Pool selection: the top k by usefulness (then stake), with places reserved for workers in
their immunity period, so that every newcomer gets its trials; inactive workers are never
asked. (Requests end to end, with real proofs: tests/test_market_request.py.)"""

from __future__ import annotations

from pathlib import Path

import blake3
import pytest
from helpers import add_call

from memjit.market.ledger import Ledger, Worker
from memjit.market.pool import MarketConfig, select
from memjit.market.registry import RegistryConfig, trials

OWNER = b"\x01" * 48
CONFIG = MarketConfig(registry=RegistryConfig(immunity_trials=2), explore=1)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    with Ledger(tmp_path) as led:
        with led.transaction() as db:
            led.add_owner(db, OWNER)
        yield led


def _add(ledger: Ledger, name: str, usefulness: int = 0, calls: int = 0, stake: int = 500,
         status: str = "active") -> str:
    """A worker row registered after the previous ones, with `calls` calls on record."""
    wid = blake3.blake3(name.encode()).hexdigest()
    with ledger.transaction() as db:
        ledger.add_worker(db, Worker(id=wid, owner=OWNER, cid=name, task="digits", vk=None,
                                     stake=stake, usefulness=usefulness,
                                     registered_at=float(len(ledger.workers())),
                                     last_used_at=None, unbonding_amount=0, unbonding_at=None,
                                     status=status))
    _call(ledger, [wid] * calls)
    return wid


def _call(ledger: Ledger, wids: list[str]) -> None:
    """Record one call of each worker (as a settled request would)."""
    with ledger.transaction() as db:
        for wid in wids:
            add_call(db, OWNER, wid)


def _select(ledger: Ledger, k: int, config: MarketConfig = CONFIG) -> list[str]:
    with ledger.transaction() as db:
        return [w.id for w in select(ledger, db, "digits", k, config)]


def test_top_k_by_usefulness_then_stake_with_one_place_for_exploration(ledger: Ledger) -> None:
    good = _add(ledger, "good", 900_000, calls=5)
    rich = _add(ledger, "rich", 500_000, calls=5, stake=900)
    poor = _add(ledger, "poor", 500_000, calls=5, stake=400)
    _add(ledger, "bad", 100_000, calls=5)
    _add(ledger, "gone", 1_000_000, calls=5, status="inactive")
    assert _select(ledger, 3) == [good, rich, poor]  # nobody immune: pure exploitation
    tried = _add(ledger, "tried", calls=1)
    fresh = _add(ledger, "fresh")
    assert _select(ledger, 3) == [fresh, good, rich]  # the newcomer with fewest calls first
    assert _select(ledger, 3, MarketConfig(registry=CONFIG.registry, explore=2)) == [
        fresh, tried, good]
    assert _select(ledger, 1) == [fresh]


def test_immune_workers_fill_the_places_the_others_leave(ledger: Ledger) -> None:
    veteran = _add(ledger, "veteran", 600_000, calls=2)
    first, second, third = (_add(ledger, name) for name in ("n1", "n2", "n3"))
    assert _select(ledger, 3) == [first, second, veteran]
    assert _select(ledger, 10) == [first, second, third, veteran]


def test_exploration_gives_every_newcomer_its_trials(ledger: Ledger) -> None:
    established = [_add(ledger, f"old{i}", 900_000 - i, calls=2) for i in range(3)]
    newcomers = [_add(ledger, f"new{i}") for i in range(3)]
    for _ in range(6):  # each request explores one newcomer until none is immune
        picked = _select(ledger, 3)
        assert picked[1:] == established[:2]
        _call(ledger, picked)
    with ledger.transaction() as db:
        assert [trials(db, wid) for wid in newcomers] == [2, 2, 2]
    assert _select(ledger, 3) == established  # immunity over: back to the top 3
