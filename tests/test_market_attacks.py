"""Issue 22's attacks, played against the market's own API with real proofs, and the amounts that
show each one fails. (Attack 1, a zero-balance key bonding 10^15 SWT, and attack 4, a copy made
by one custom-section byte, are refused at registration: tests/test_registry.py; a replayed
claim is refused by the oracle itself in tests/test_oracle.py, and here end to end.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import wasmtime
from helpers import Clock

from memjit.market import validators
from memjit.market.epoch import advance
from memjit.market.formulas import DAY_S, PPM, ema
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger
from memjit.market.oracle import OracleConfig, Reference
from memjit.market.pool import MarketConfig, RequestResult, request, select
from memjit.market.registry import RegistryConfig, register, unbond
from memjit.market.rewards import RewardConfig
from memjit.market.tasks import read_test_set
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR, digits_liar

IMAGES, LABELS = read_test_set()
SMALL = (WORKERS_DIR / "digits_small.wasm").read_bytes()
CONSTANT = (WORKERS_DIR / "digits_constant.wasm").read_bytes()
OTHER_CONSTANT = wasmtime.wat2wasm(  # another program that answers 1 whatever the image
    '(module (memory (export "memory") 1) (global (export "memjit_input") i32 (i32.const 1024))'
    ' (func (export "classify") (result i32) i32.const 1))')
CONFIG = MarketConfig(registry=RegistryConfig(immunity_trials=3, unbonding_s=7 * DAY_S),
                      oracle=OracleConfig(), rewards=RewardConfig(emission=10_000))
DAY = 100 * DAY_S  # the attacks happen on day 100 (period 100)


def key(name: str) -> Identity:
    return Identity.from_seed(name, name.encode().ljust(32, b"."))


def establish(ledger: Ledger, wid: str, usefulness: int) -> None:
    """Give a worker the usefulness an honest history would have earned it."""
    with ledger.transaction() as db:
        ledger.update_worker(db, wid, usefulness=usefulness)


@pytest.fixture
def clock() -> Clock:
    return Clock(DAY + 3_600.0)


@pytest.fixture
def market(tmp_path: Path, clock: Clock) -> tuple[Ledger, Store]:
    with Ledger(tmp_path, clock=clock) as ledger:
        yield ledger, Store(tmp_path)


def test_two_constant_sybils_no_longer_outvote_an_honest_model(market, executor) -> None:
    """Attack 2: two constant workers at the minimum stake outvoted one honest model on three
    unlabelled requests (consensus said 1 for the digits 4, 6, 6), its usefulness fell to 0 and
    the top-2 pool asked only the Sybils. Now stake weighs and one group never makes a
    consensus alone: there is none, nobody is scored, and the honest model stays first."""
    ledger, store = market
    honest = register(ledger, store, key("honest"), SMALL, 1_000, config=CONFIG.registry)
    sybils = [register(ledger, store, key(f"sybil-{i}"), module, 100, config=CONFIG.registry)
              for i, module in enumerate((CONSTANT, OTHER_CONSTANT))]
    establish(ledger, honest.id, 500_000)
    requester = key("requester")  # no validator stake: unlabelled requests, as in the attack
    for i in range(3):
        result = request(ledger, store, requester, "digits", IMAGES[i].tobytes(), top_k=3,
                         config=CONFIG, executor=executor)
        answers = sorted((c.worker == honest.id, c.result, c.outcome) for c in result.calls)
        assert answers == [(False, 1, "unscored"), (False, 1, "unscored"),
                           (True, int(LABELS[i]), "unscored")]
        assert result.reference == Reference(None, 0, None)  # "1": 200 of 1,200 SWT of stake
        assert result.best.worker == honest.id  # the answer returned is the honest model's
    assert [int(label) for label in LABELS[:3]] == [4, 6, 6]
    assert ledger.worker(honest.id).usefulness == 500_000  # untouched (it was 0 after the attack)
    assert [ledger.worker(s.id).usefulness for s in sybils] == [0, 0]
    with ledger.transaction() as db:  # immunity over: the top 2 still starts with the honest
        assert select(ledger, db, "digits", 2, CONFIG)[0].id == honest.id
        weights = db.execute("SELECT sum(weight) FROM calls").fetchone()[0]
    assert weights == 0  # and nobody earns from an unscored request


def test_self_dealing_through_a_second_key_mints_nothing_then_only_its_stake_share(
        market, executor, clock) -> None:
    """Attack 3: a second key, funded by its own 10,000 SWT faucet grant, sent requests with
    chosen labels to its owner's constant worker: 3,834 SWT minted over 10 requests, and the
    honest worker's usefulness went to 0 on the false labels. Now a requester without validator
    stake buys answers, not scores; with stake its labels move usefulness only in proportion to
    it, and whatever it does the period mints at most its emission."""
    ledger, store = market
    honest = register(ledger, store, key("honest"), SMALL, 1_000, config=CONFIG.registry)
    own = register(ledger, store, key("attacker"), CONSTANT, 100, config=CONFIG.registry)
    establish(ledger, honest.id, 800_000)
    second = key("attacker-2")

    def deal(i: int) -> RequestResult:
        result = request(ledger, store, second, "digits", IMAGES[i].tobytes(), label=1,
                         top_k=2, config=CONFIG, executor=executor)
        assert {c.worker: c.result for c in result.calls} == {honest.id: int(LABELS[i]),
                                                             own.id: 1}
        return result

    # without validator stake the chosen label counts for nothing: no score, no weight
    assert deal(0).reference == Reference(None, 0, None)
    assert ledger.worker(honest.id).usefulness == 800_000 and ledger.worker(own.id).usefulness == 0
    assert ledger.balance(second.public_key)[0] == 10_000 - 10 - 10  # a fee to each owner

    validators.bond(ledger, second, 9_000)  # nearly all of its grant, behind its labels
    rate = 200_000 * 9_000 // 100_000  # 18,000 ppm: 9% of the full EMA rate of 200,000
    for i in (1, 2):
        assert deal(i).reference == Reference(1, rate, "label")
    assert ledger.worker(honest.id).usefulness == ema(ema(800_000, 0, rate), 0, rate) == 771_459
    assert ledger.worker(own.id).usefulness == ema(ema(0, PPM, rate), PPM, rate) == 35_676

    clock.now = DAY + DAY_S  # the day is over: its period closes
    [period] = advance(ledger, CONFIG.rewards).closed
    attacker = ledger.holdings(key("attacker").public_key)
    assert period.paid <= period.emission == 10_000
    # the weights: the seed formula on the constant's new usefulness (18 then 35 SWT) times the
    # 9% of the full rate its labels carry: 1 + 3 SWT, for 10 + 11 + 12 SWT of fees paid to the
    # honest worker's owner
    assert attacker.pending == period.paid == 1 + 3
    honest_owner = ledger.holdings(key("honest").public_key)
    assert honest_owner.pending == 0  # scored 0 on false labels ...
    assert honest_owner.free == 10_000 - 1_000 + 10 + 11 + 12  # ... but paid for every answer


def test_withdrawing_then_cheating_still_costs_the_unbonding_stake(market, executor,
                                                                   clock) -> None:
    """Attack 5: the liar withdrew 9,900 of its 10,000, lied, was slashed 10 and got the 9,900
    back after the period. Now unbonding stake stays slashable until it is released."""
    ledger, store = market
    liar_key = key("liar")
    liar = register(ledger, store, liar_key, digits_liar.MODULE.read_bytes(), 10_000,
                    config=CONFIG.registry)
    unbond(ledger, liar_key, liar.id, 9_900, CONFIG.registry)  # 100 left: still active
    result = request(ledger, store, key("requester"), "digits", IMAGES[0].tobytes(), top_k=1,
                     config=CONFIG, executor=executor, operators=digits_liar.operators())
    (call,) = result.calls
    assert (call.outcome, call.slashed) == ("invalid", 1_000)  # 10 bonded + 990 unbonding
    after = ledger.worker(liar.id)
    assert (after.stake, after.unbonding_amount, after.status) == (90, 8_910, "inactive")
    clock.now = DAY + 3_600.0 + 7 * DAY_S  # the unbonding period is over
    assert advance(ledger, CONFIG.rewards).released == 8_910  # not 9,900
    assert ledger.holdings(liar_key.public_key).free == 8_910


def test_a_replayed_claim_is_slashed_and_settled_once(market, clock) -> None:
    """Attack 6: re-delivering an earlier valid claim for a new request on the same input was
    scored and paid again, and the identical fact was committed twice. Now every request has a
    fresh nonce that its claims must prove; the old claim answers another request."""
    ledger, store = market
    honest_key = key("honest")
    honest = register(ledger, store, honest_key, SMALL, 1_000, config=CONFIG.registry)
    establish(ledger, honest.id, 800_000)
    validators.bond(ledger, key("requester"), 5_000)  # a staked label scores
    image, label = IMAGES[0].tobytes(), int(LABELS[0])
    with ThreadPoolExecutor(1) as threads:  # the replaying operator needs no pickling
        first = request(ledger, store, key("requester"), "digits", image, label=label, top_k=1,
                        config=CONFIG, executor=threads)
        old = store.get(first.calls[0].claim_cid)
        again = request(ledger, store, key("requester"), "digits", image, label=label, top_k=1,
                        config=CONFIG, executor=threads,
                        operators={honest.cid: lambda *_: old})
    assert first.nonce != again.nonce and first.calls[0].outcome == "scored"
    (call,) = again.calls
    assert call.outcome == "invalid" and "answers another request" in call.reason
    assert (call.weight, call.slashed) == (0, 100)
    clock.now = DAY + DAY_S
    [period] = advance(ledger, CONFIG.rewards).closed
    with ledger.transaction() as db:
        facts = db.execute("SELECT count(*), count(DISTINCT statement_digest) FROM batch_facts "
                           "WHERE kind = 'call'").fetchone()
        slashes = db.execute("SELECT amount FROM batch_facts WHERE kind = 'slash'").fetchall()
    assert period.calls == 1 and facts == (1, 1)  # one claim, one fact, paid once
    assert slashes == [(100,)]  # the replay's slash is a stake fact
    assert ledger.holdings(honest_key.public_key).pending == period.paid > 0
