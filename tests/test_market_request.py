"""Requests end to end, with real proofs: the trained model's verified answer wins, the loop
faults and the liar's false output claim is caught (both slashed), fees, usefulness and the
calls' weights are settled in one transaction and the rewards when the period closes; a label
scores only if its requester has validator stake; bad requests change nothing; a request
killed while it is proving leaves the ledger exactly as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import Clock, ledger_dump

from memjit.errors import BadInput, Rejected
from memjit.market import validators
from memjit.market.epoch import advance
from memjit.market.formulas import DAY_S, weight
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger
from memjit.market.oracle import OracleConfig, Reference
from memjit.market.pool import MarketConfig, request
from memjit.market.registry import RegistryConfig, register
from memjit.market.rewards import RewardConfig
from memjit.market.tasks import MAX_SCORE, read_test_set
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR, digits_liar

IMAGES, LABELS = read_test_set()
IMAGE, LABEL = IMAGES[0].tobytes(), int(LABELS[0])  # the small model classifies it right
NAMES = ("small", "constant", "loop", "liar")
REQUESTER = Identity.from_seed("requester", b"\x09" * 32)
CONFIG = MarketConfig(registry=RegistryConfig(immunity_trials=3),
                      oracle=OracleConfig(full_label_stake=500),
                      rewards=RewardConfig(base_reward=1_000, base_fee=10, fee_step=1,
                                           faucet=1_000))
NOW = 50_000.0
STAKE = 500


def _module(name: str) -> bytes:
    return (WORKERS_DIR / f"digits_{name}.wasm").read_bytes()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW - len(NAMES))


@pytest.fixture
def market(tmp_path: Path, clock: Clock) -> tuple[Ledger, Store, dict[str, str]]:
    """A ledger with the small, constant, loop and liar workers, each under its own owner with
    a stake of 500 of its faucet grant of 1,000, registered in that order in the 4 seconds
    before NOW; the clock then stays at NOW."""
    with Ledger(tmp_path, clock=clock) as ledger:
        store = Store(tmp_path)
        ids = {}
        for i, name in enumerate(NAMES):
            owner = Identity.from_seed(name, bytes([i + 1]) * 32)
            ids[name] = register(ledger, store, owner, _module(name), STAKE,
                                 config=CONFIG.registry, faucet_grant=1_000).id
            clock.now += 1
        yield ledger, store, ids


def test_a_request_pays_the_honest_and_slashes_the_cheats(market, executor, clock) -> None:
    ledger, store, ids = market
    validators.bond(ledger, REQUESTER, 500, faucet_grant=1_000)  # labels at the full rate
    result = request(ledger, store, REQUESTER, "digits", IMAGE, label=LABEL, top_k=4,
                     config=CONFIG, executor=executor, operators=digits_liar.operators())
    calls = {name: next(c for c in result.calls if c.worker == wid) for name, wid in ids.items()}
    assert (result.best.worker, result.best.result) == (ids["small"], LABEL)
    assert result.reference == Reference(LABEL, 200_000, "label")
    first = weight(200_000, 1_000, len(NAMES), 200_000, 200_000, MAX_SCORE)  # registered -4 s
    assert [(c.outcome, c.score, c.fee, c.weight, c.slashed) for c in calls.values()] == [
        ("scored", MAX_SCORE, 10, first, 0),  # small: right
        ("scored", 0, 10, 0, 0),              # constant: verified but wrong (it says 1)
        ("fault", 0, 0, 0, 50),               # loop: out of fuel
        ("invalid", 0, 0, 0, 50),             # liar: its claimed output is not what it proved
    ]
    assert calls["loop"].reason.startswith("OutOfFuel")
    assert calls["liar"].reason.startswith("invalid claim")
    assert ledger.balance(REQUESTER.public_key) == (1_000 - 500 - 20, 0)
    small, loop, liar = (ledger.worker(ids[n]) for n in ("small", "loop", "liar"))
    assert ledger.balance(small.owner) == (500 + 10, 0)  # fee received, reward still accruing
    assert ledger.holdings(small.owner).accruing == first
    assert (small.usefulness, small.last_used_at) == (200_000, NOW)
    assert (loop.stake, liar.stake) == (450, 450)
    assert store.has(calls["liar"].claim_cid)  # the evidence of the slash is kept

    # Without a label the answers are scored against their consensus, and two independent
    # valid answers are no quorum: nothing is scored; demand raised the fee.
    again = request(ledger, store, REQUESTER, "digits", IMAGE, top_k=4, config=CONFIG,
                    executor=executor, operators=digits_liar.operators())
    assert again.reference == Reference(None, 0, None) and again.best.worker == ids["small"]
    assert {c.worker: (c.outcome, c.fee, c.weight) for c in again.calls
            if c.outcome == "unscored"} == {ids["small"]: ("unscored", 11, 0),
                                            ids["constant"]: ("unscored", 11, 0)}
    assert ledger.worker(ids["small"]).usefulness == 200_000

    # The day's period closes at the next tick: every scored call becomes a fact with its reward.
    clock.now = (NOW // DAY_S + 1) * DAY_S
    [period] = advance(ledger, CONFIG.rewards).closed
    assert (period.weight, period.paid, period.calls) == (first, first, 2)  # below the cap
    with ledger.transaction() as db:
        facts = db.execute("SELECT worker, score, reward, claim_cid FROM batch_facts "
                           "WHERE kind = 'call'").fetchall()
    assert sorted(facts) == sorted([(ids["small"], MAX_SCORE, first, calls["small"].claim_cid),
                                    (ids["constant"], 0, 0, calls["constant"].claim_cid)])
    assert ledger.holdings(small.owner).pending == first


def test_own_workers_earn_nothing(market, executor) -> None:
    ledger, store, ids = market
    owner = Identity.from_seed("small", bytes([1]) * 32)
    validators.bond(ledger, owner, 500)  # the rest of its grant: a full-rate label
    result = request(ledger, store, owner, "digits", IMAGE, label=LABEL, top_k=1,
                     config=CONFIG, executor=executor)
    (call,) = result.calls
    assert result.reference.basis == "label"
    assert (call.worker, call.outcome, call.fee, call.weight) == (ids["small"], "scored", 0, 0)
    assert ledger.worker(ids["small"]).usefulness == 0
    assert ledger.balance(owner.public_key) == (0, 0)  # no fee paid to itself


def test_bad_requests_change_nothing(market) -> None:
    ledger, store, _ = market
    before = ledger_dump(ledger.path.parent)
    for task, image, options, words in [
        ("digits", IMAGE[:63], {}, "input of 64 bytes"),
        ("digits", IMAGE, {"label": 10}, "label must be in 0..9"),
        ("digits", IMAGE, {"top_k": 0}, "top-k"),
        ("chess", IMAGE, {}, "unknown task"),
    ]:
        with pytest.raises(BadInput, match=words):
            request(ledger, store, REQUESTER, task, image, config=CONFIG, **options)
    poor = MarketConfig(registry=CONFIG.registry, rewards=RewardConfig(faucet=25))
    with pytest.raises(Rejected, match="insufficient balance: 25 SWT free"):
        request(ledger, store, REQUESTER, "digits", IMAGE, top_k=3, config=poor)
    assert ledger_dump(ledger.path.parent) == before


def test_no_worker_no_request(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger, pytest.raises(Rejected, match="no active worker"):
        request(ledger, Store(tmp_path), REQUESTER, "digits", IMAGE)


_CHILD = textwrap.dedent("""
    import sys, time
    from memjit.market.identity import Identity
    from memjit.market.ledger import Ledger
    from memjit.market.pool import request
    from memjit.runtime.store import Store
    from memjit.market.tasks import read_test_set

    def stall(worker, delivery):
        print("delivered", flush=True)  # half-way: one answer in, nothing settled yet
        time.sleep(600)

    if __name__ == "__main__":
        home = sys.argv[1]
        images, labels = read_test_set()
        with Ledger(home) as ledger:
            request(ledger, Store(home), Identity.from_seed("kid", b"\\x07" * 32), "digits",
                    images[0].tobytes(), label=int(labels[0]), top_k=4, on_delivery=stall)
""")


def test_a_request_killed_while_proving_leaves_the_ledger_unchanged(market,
                                                                    tmp_path: Path) -> None:
    ledger, _, _ = market
    home = ledger.path.parent
    ledger.close()
    before = ledger_dump(home)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(home)], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "delivered"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the request and its proving processes
        proc.wait()
    assert ledger_dump(home) == before
    with Ledger(home) as reopened:
        assert reopened.schema_version() > 0 and len(reopened.workers()) == len(NAMES)
