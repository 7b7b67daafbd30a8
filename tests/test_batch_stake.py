"""Stake proven on a real ledger: workers register with stake (bond facts), are called (call
facts), a cheater is slashed while part of its stake unbonds (a slash fact taking from both),
an unbonding completes (a release fact); the batches are proven, `memjit batch verify` accepts
them, and every account's leaf holds the ledger's locked stake and slashed total. The market's
amounts end at the leaf's bound: a stake of 2^53 - 1 is proven, one more SWT changes nothing.
The audit checks each stake fact against the ledger's stake events."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from helpers import Clock, add_call, cli

from circuits.rollup import leaf
from memjit.errors import BadInput
from memjit.market import formulas, oracle, registry
from memjit.market.epoch import advance
from memjit.market.facts import KINDS, Fact, Weighing, record_stake_fact, stake_fact_hash
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger
from memjit.market.registry import RegistryConfig
from memjit.market.rewards import RewardConfig, open_period
from memjit.rollup.batcher import DATA_MAGIC, BatchData, Batcher, decode_data
from memjit.rollup.header import BatchFormatError
from memjit.rollup.committee import add_local
from memjit.rollup.proving import BatchProver
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR

ALICE = Identity.from_seed("alice", b"\x0a" * 32)  # an honest worker's owner
MALLORY = Identity.from_seed("mallory", b"\x0c" * 32)  # a cheater's
REWARDS = RewardConfig()  # the CLI checks statements against the default market
REGISTRY = RegistryConfig()


def _market(tmp_path: Path) -> tuple[Path, Clock, Ledger, Store]:
    """A fresh home (its ledger on a test clock, its store), this node the committee."""
    home, clock = tmp_path / "home", Clock(1_000_000.0)
    ledger, store = Ledger(home, clock=clock), Store(home)
    add_local(ledger, home, "node")
    return home, clock, ledger, store


def _honest_and_cheat(ledger: Ledger, store: Store) -> tuple[str, str]:
    """Register an honest worker (Alice's, 300 SWT) and a liar (Mallory's, 1,000 SWT)."""
    small, liar = ((WORKERS_DIR / f"digits_{n}.wasm").read_bytes() for n in ("small", "liar"))
    return (registry.register(ledger, store, ALICE, small, 300, "digits", REGISTRY).id,
            registry.register(ledger, store, MALLORY, liar, 1_000, "digits", REGISTRY).id)


def _call(ledger: Ledger, wid: str, outcome: str, tag: int) -> None:
    """Settle one judged call as the pool does (a valid one scored 800,000 by consensus)."""
    with ledger.transaction() as db:
        w = ledger.worker(wid)
        awarded = 800_000 if outcome == "valid" else None
        done = oracle.settle(ledger, db, w, oracle.Check(outcome), awarded, 200_000, own=False,
                             config=oracle.OracleConfig(), registry=REGISTRY, rewards=REWARDS)
        if outcome == "valid":
            add_call(db, MALLORY.public_key, wid, ledger.clock(), score=awarded,
                     weight=done.weight, period=open_period(db, ledger.clock(), REWARDS),
                     statement=bytes([tag]) * 32, proof=bytes([tag]) * 32, rate=done.rate,
                     prior=done.prior, since=done.since)


def _assert_leaves_are_the_ledgers(ledger: Ledger, batcher: Batcher, wids: list[str]) -> None:
    state = batcher.state()
    for wid in wids:
        w, leaf = ledger.worker(wid), state.leaf(wid)
        slashed = sum(e.amount for e in ledger.stake_events(wid) if e.kind == "slash")
        assert (leaf.stake, leaf.slashed) == (w.stake + w.unbonding_amount, slashed)


def test_stake_bonds_slashes_and_releases_are_proven(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    home, clock, ledger, store = _market(tmp_path)
    honest, cheat = _honest_and_cheat(ledger, store)
    _call(ledger, honest, "valid", 1)
    registry.unbond(ledger, MALLORY, cheat, 400, REGISTRY)  # 600 bonded, 400 unbonding
    _call(ledger, cheat, "fault", 0)  # slashed: 10% of both
    clock.now += 3_600
    _call(ledger, honest, "valid", 2)
    advance(ledger, REWARDS, close_now=True)  # the calls' period closes: call facts
    batcher = Batcher(ledger, store, home)
    assert len(batcher.commit_pending(force=True)) == 1
    _assert_leaves_are_the_ledgers(ledger, batcher, [honest, cheat])
    assert batcher.state().leaf(honest).usefulness == ledger.worker(honest).usefulness > 0

    clock.now += REGISTRY.unbonding_s + 1  # the cheater's unbonding completes
    assert advance(ledger, REWARDS).released == 360
    registry.unbond(ledger, ALICE, honest, 100, REGISTRY)  # not a fact: the stake stays locked
    assert len(batcher.commit_pending(force=True)) == 1
    kinds = [(f.kind, f.amount) for n in (1, 2) for f in batcher.facts(n) if f.kind != "call"]
    assert kinds == [("bond", 300), ("bond", 1_000), ("slash", 100), ("release", 360)]
    assert {f.kind for f in batcher.facts(1)} == set(KINDS) - {"release"}
    _assert_leaves_are_the_ledgers(ledger, batcher, [honest, cheat])
    assert batcher.state().leaf(cheat).stake == 540 and batcher.state().leaf(honest).stake == 300

    assert BatchProver(batcher, rewards=REWARDS).prove_pending() == [1, 2]
    ledger.close()
    for number, facts in ((1, 5), (2, 1)):
        code, out, _ = cli(capsys, monkeypatch, "--home", str(home), "batch", "verify",
                           str(number), "--json")
        verified = json.loads(out)
        assert code == 0 and verified["valid"], verified["reason"]
        assert verified["facts"] == facts and verified["security_bits"] >= 100


def _dump(ledger: Ledger) -> list[list[tuple]]:
    """Every row a bond touches: balances, grants, workers, stake events, facts."""
    return [ledger.db.execute(f"SELECT * FROM {table}").fetchall()
            for table in ("balances", "grants", "workers", "stake_events", "batch_facts")]


def test_a_stake_at_the_leafs_bound_is_proven_and_one_above_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The market's amounts end where the leaf's do: a worker locking 2^53 - 1 SWT (an owner
    granted that much) is proven; one more SWT is refused before anything changes."""
    assert formulas.MAX_AMOUNT == leaf.MAX_AMOUNT == 2**53 - 1
    top = leaf.MAX_AMOUNT
    home, clock, ledger, store = _market(tmp_path)
    small = (WORKERS_DIR / "digits_small.wasm").read_bytes()
    before = _dump(ledger)
    with pytest.raises(BadInput, match=f"stake must be an integer in 1..{top} SWT units, "
                                       f"got {top + 1}"):
        registry.register(ledger, store, ALICE, small, top + 1, "digits", REGISTRY,
                          faucet_grant=top)
    assert _dump(ledger) == before
    wid = registry.register(ledger, store, ALICE, small, top, "digits", REGISTRY,
                            faucet_grant=top).id
    assert ledger.worker(wid).stake == top and ledger.balance(ALICE.public_key) == (0, 0)
    for kind, amount in (("slash", top + 1), ("bond", 2**63), ("release", 0), ("bond", True)):
        with pytest.raises(BadInput, match=rf"a {kind} fact's amount must be an integer in "
                                           rf"1..{top} SWT units, got {amount!r}"):
            with ledger.transaction() as db:
                record_stake_fact(db, worker_id=wid, kind=kind, amount=amount, now=clock())
    registry.unbond(ledger, ALICE, wid, top // 2, REGISTRY)
    _call(ledger, wid, "fault", 0)  # slashed: 10% of the bonded and of the unbonding stake
    slashed = -(-(top - top // 2) // 10) + -(-(top // 2) // 10)
    facts = [(f.kind, f.amount) for _, f in Batcher(ledger, store, home).pending()]
    assert facts == [("bond", top), ("slash", slashed)]
    batcher = Batcher(ledger, store, home)
    assert len(batcher.commit_pending(force=True)) == 1
    _assert_leaves_are_the_ledgers(ledger, batcher, [wid])
    assert BatchProver(batcher, rewards=REWARDS).prove_pending() == [1]
    ledger.close()
    code, out, _ = cli(capsys, monkeypatch, "--home", str(home), "batch", "verify", "1",
                       "--json")
    assert code == 0 and json.loads(out)["valid"], out


def test_audit_checks_stake_facts_against_the_ledgers_events(tmp_path: Path) -> None:
    """`memjit batch audit` passes bonds, a slash and a release the ledger recorded, and flags
    a stake fact without its event (stake the market never moved) and one whose event says
    otherwise."""
    home, clock, ledger, store = _market(tmp_path)
    honest, cheat = _honest_and_cheat(ledger, store)
    registry.unbond(ledger, MALLORY, cheat, 400, REGISTRY)
    _call(ledger, cheat, "fault", 0)  # slashed: 60 bonded + 40 unbonding
    batcher = Batcher(ledger, store, home)
    batcher.commit_pending(force=True)
    clock.now += REGISTRY.unbonding_s + 1
    assert advance(ledger, REWARDS).released == 360
    batcher.commit_pending(force=True)
    for number, rows in ((1, ["bond 300 SWT", "bond 1000 SWT", "slash 100 SWT"]),
                         (2, ["release 360 SWT"])):
        report = batcher.audit(number)
        assert report.ok and [r["call"] for r in report.facts] == rows, report.problems
        assert all(r["ok"] for r in report.facts)

    with ledger.transaction() as db:  # a batch moving stake the ledger did not: no bond event
        record_stake_fact(db, worker_id=honest, kind="bond", amount=10**6, now=clock())
    batcher.commit_pending(force=True)
    report = batcher.audit(3)
    assert report.problems == [f"1 of 1 facts fail: the ledger has no stake event for this "
                               f"bond of 1000000 SWT: worker {honest[:16]}'s events leave 1 "
                               "stake fact(s)"]
    with ledger.transaction() as db:  # the ledger's record of the slash altered
        db.execute("UPDATE stake_events SET amount = 99 WHERE kind = 'slash'")
    report = batcher.audit(1)
    assert [r["ok"] for r in report.facts] == [True, True, False]
    assert report.problems == [f"1 of 3 facts fail: the ledger's stake event is a slash of 99 "
                               f"SWT, not a slash of 100 SWT (worker {cheat[:16]})"]
    assert batcher.audit(2).ok  # the release after it still matches its own event


def test_audit_reads_a_migrated_workers_events_as_its_one_bond(tmp_path: Path) -> None:
    """Ledger migration 8 recorded the stake locked before it as one bond fact: the worker's
    earlier events (bond, unbond, slash) audit as that bond, the later ones one by one."""
    home, clock, ledger, store = _market(tmp_path)
    liar = (WORKERS_DIR / "digits_liar.wasm").read_bytes()
    cheat = registry.register(ledger, store, MALLORY, liar, 1_000, "digits", REGISTRY).id
    registry.unbond(ledger, MALLORY, cheat, 400, REGISTRY)
    _call(ledger, cheat, "fault", 0)  # slashed 100: 900 left locked
    with ledger.transaction() as db:  # the facts as migration 8 would have left them
        db.execute("DELETE FROM batch_facts WHERE worker = ?", (cheat,))
        record_stake_fact(db, worker_id=cheat, kind="bond", amount=900, now=clock())
    batcher = Batcher(ledger, store, home)
    batcher.commit_pending(force=True)
    clock.now += REGISTRY.unbonding_s + 1
    _call(ledger, cheat, "fault", 1)  # slashed 54 + 36 after it, then 324 released
    assert advance(ledger, REWARDS).released == 324
    batcher.commit_pending(force=True)
    assert [r["call"] for r in batcher.audit(1).facts] == ["bond 900 SWT"]
    assert [r["call"] for r in batcher.audit(2).facts] == ["slash 90 SWT", "release 324 SWT"]
    assert batcher.audit(1).ok and batcher.audit(2).ok


def test_batch_data_carries_stake_facts_and_reads_version_3() -> None:
    call = Fact("aa" * 32, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 700_000, 40, None,
                Weighing(200_000, 1, 2, 3, 4, 5))
    facts = (Fact.stake("bb" * 32, "bond", 2**53 - 1), call, Fact.stake("bb" * 32, "slash", 7),
             Fact.stake("aa" * 32, "release", 1))
    data = BatchData(4, facts)
    assert decode_data(data.encode()) == data
    assert facts[0].hash == stake_fact_hash("bond", "bb" * 32, 2**53 - 1) != \
        Fact.stake("bb" * 32, "release", 2**53 - 1).hash
    # data version 3 (calls only, the fact version after the claim CID) is still read
    v3 = DATA_MAGIC + bytes([3]) + struct.pack(">QI", 4, 1) + bytes.fromhex(call.worker) \
        + call.vk_digest + call.statement_digest + call.proof_digest \
        + struct.pack(">QQB", call.score, call.reward, 0) + b"\x02" + call.weighing.encode()
    assert decode_data(v3) == BatchData(4, (call,))
    bad = bytearray(data.encode())
    bad[len(DATA_MAGIC) + 1 + 12 + 32 + 1] = 4  # the first stake fact's kind
    with pytest.raises(BatchFormatError, match="unknown stake fact kind 4"):
        decode_data(bytes(bad))
