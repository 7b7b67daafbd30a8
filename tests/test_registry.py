"""Registry rules: signatures and proofs of possession, minimum stake, CID ownership, the
provable subset, the VK, stake withdrawal after the unbonding period (injected clock), and
pruning the weakest non-immune worker when a task's slots are full."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import blake3
import pytest
import wasmtime
from helpers import cli
from multiformats import CID

from memjit.runtime.claims import vk_of
from memjit.errors import BadInput, Rejected, UnsupportedModule
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger, Worker
from memjit.market.registry import (RegistryConfig, admit, register, release_withdrawal,
                             request_withdrawal, sign_registration)
from memjit.runtime.store import Store, cid_of
from memjit.workers import WORKERS_DIR

SMALL = (WORKERS_DIR / "digits_small.wasm").read_bytes()
LARGE = (WORKERS_DIR / "digits_large.wasm").read_bytes()
ALICE = Identity.from_seed("alice", b"\x01" * 32)
BOB = Identity.from_seed("bob", b"\x02" * 32)


class Clock:
    """A settable clock for the ledger."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def market(tmp_path: Path, clock: Clock) -> tuple[Ledger, Store]:
    with Ledger(tmp_path, clock=clock) as ledger:
        yield ledger, Store(tmp_path)


def test_register_records_the_worker(market: tuple[Ledger, Store]) -> None:
    ledger, store = market
    worker = register(ledger, store, ALICE, SMALL, 150)
    cid = cid_of(SMALL)
    assert worker.id == blake3.blake3(ALICE.public_key + bytes(CID.decode(cid))).hexdigest()
    assert ledger.worker(worker.id) == worker
    assert (worker.owner, worker.cid, worker.task, worker.stake) == (ALICE.public_key, cid,
                                                                     "digits", 150)
    assert (worker.usefulness, worker.status, worker.registered_at) == (0, "active", 1_000.0)
    assert worker.vk == vk_of(SMALL)
    assert store.get(cid) == SMALL
    assert [(e.kind, e.amount) for e in ledger.stake_events(worker.id)] == [("bond", 150)]


def test_minimum_stake(market: tuple[Ledger, Store]) -> None:
    ledger, store = market
    with pytest.raises(Rejected, match="below the minimum stake 100"):
        register(ledger, store, ALICE, SMALL, 99)
    with pytest.raises(Rejected, match="minimum stake 500"):
        register(ledger, store, ALICE, SMALL, 499, config=RegistryConfig(min_stake=500))
    for stake in (0, -5, 1 << 63):  # outside the amounts a ledger holds: malformed, not low
        with pytest.raises(BadInput, match=r"stake must be an integer in 1\.\.9223372036854775807"):
            register(ledger, store, ALICE, SMALL, stake)
    assert ledger.workers() == []


def test_first_registrant_owns_the_cid(market: tuple[Ledger, Store]) -> None:
    ledger, store = market
    first = register(ledger, store, ALICE, SMALL, 100)
    with pytest.raises(Rejected, match="already registered by another owner"):
        register(ledger, store, BOB, SMALL, 1_000)
    with pytest.raises(Rejected, match="already registered by you"):
        register(ledger, store, ALICE, SMALL, 100)
    assert ledger.workers() == [first]


def test_bad_signature_and_bad_pop_are_refused(market: tuple[Ledger, Store]) -> None:
    ledger, store = market
    good = sign_registration(ALICE, cid_of(SMALL), "digits", 100)
    with pytest.raises(Rejected, match="bad signature"):
        admit(ledger, store, SMALL, replace(good, stake=1_000))  # signed for 100 only
    with pytest.raises(Rejected, match="bad signature"):
        admit(ledger, store, SMALL, replace(good, signature=BOB.sign(b"anything")))
    with pytest.raises(Rejected, match="bad proof of possession"):
        admit(ledger, store, SMALL, replace(good, pop=BOB.pop()))
    with pytest.raises(Rejected, match="48-byte"):
        admit(ledger, store, SMALL, replace(good, public_key=bytes(300)))
    with pytest.raises(Rejected, match="not for this module"):
        admit(ledger, store, LARGE, good)
    assert ledger.workers() == []


def test_modules_outside_the_subset_or_the_task_are_refused(market: tuple[Ledger, Store]) -> None:
    ledger, store = market
    floats = wasmtime.wat2wasm('(module (func (export "classify") (result i32) '
                               'f32.const 1 i32.trunc_f32_s))')
    with pytest.raises(UnsupportedModule, match="f32"):
        register(ledger, store, ALICE, floats, 100)
    with pytest.raises(UnsupportedModule, match="needs an export classify"):
        register(ledger, store, ALICE, (WORKERS_DIR / "fib.wasm").read_bytes(), 100)
    no_input = wasmtime.wat2wasm('(module (func (export "classify") (result i32) i32.const 1))')
    with pytest.raises(UnsupportedModule, match="memjit_input"):
        register(ledger, store, ALICE, no_input, 100)
    unprovable = wasmtime.wat2wasm(  # valid, but its instantiation traps: it has no key
        '(module (memory (export "memory") 1) (global (export "memjit_input") i32 (i32.const 0))'
        ' (data (i32.const 65535) "ab") (func (export "classify") (result i32) i32.const 1))')
    with pytest.raises(UnsupportedModule, match="cannot be instantiated: data segment 0"):
        register(ledger, store, ALICE, unprovable, 100)
    with pytest.raises(BadInput, match="unknown task"):
        register(ledger, store, ALICE, SMALL, 100, task="chess")
    assert ledger.workers() == []


def test_a_worker_that_grows_its_memory_gets_the_tasks_cap_in_its_key(
        market: tuple[Ledger, Store]) -> None:
    ledger, store = market
    grows = wasmtime.wat2wasm(  # no declared maximum: the task's 16 MiB cap bounds it
        '(module (memory (export "memory") 1) (global (export "memjit_input") i32 (i32.const 0))'
        ' (func (export "classify") (result i32) i32.const 1 memory.grow))')
    worker = register(ledger, store, ALICE, grows, 100)
    assert worker.vk == vk_of(grows, 16) != vk_of(grows)  # the digits task: memory_mb=16


def test_withdrawal_waits_for_the_unbonding_period(market: tuple[Ledger, Store],
                                                  clock: Clock) -> None:
    ledger, store = market
    config = RegistryConfig(min_stake=100, unbonding_s=3_600)
    worker = register(ledger, store, ALICE, SMALL, 150, config=config)
    with pytest.raises(Rejected, match="not owned by 'bob'"):
        request_withdrawal(ledger, BOB, worker.id, 10, config)
    with pytest.raises(BadInput, match="withdrawal must be in 1..150"):
        request_withdrawal(ledger, ALICE, worker.id, 151, config)

    unbonding = request_withdrawal(ledger, ALICE, worker.id, 50, config)
    assert (unbonding.stake, unbonding.unbonding_amount, unbonding.status) == (100, 50, "active")
    assert unbonding.unbonding_at == 1_000.0 + 3_600
    with pytest.raises(Rejected, match="already has a withdrawal"):
        request_withdrawal(ledger, ALICE, worker.id, 10, config)
    clock.now += 3_599
    assert release_withdrawal(ledger, worker.id) == 0
    assert ledger.balance(ALICE.public_key) == (0, 0)
    clock.now += 1
    assert release_withdrawal(ledger, worker.id) == 50
    assert release_withdrawal(ledger, worker.id) == 0  # paid once
    assert ledger.balance(ALICE.public_key) == (50, 0)

    below = request_withdrawal(ledger, ALICE, worker.id, 1, config)
    assert (below.stake, below.status) == (99, "inactive")  # below the minimum: out of the pool
    kinds = [(e.kind, e.amount) for e in ledger.stake_events(worker.id)]
    assert kinds == [("bond", 150), ("unbond", 50), ("release", 50), ("unbond", 1)]


def test_cli_worker_add_list_show(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    home, small = str(tmp_path), str(WORKERS_DIR / "digits_small.wasm")
    code, out, err = cli(capsys, monkeypatch, "--home", home, "worker", "add", small,
                         "--stake", "150", "--owner", "alice", "--json")
    assert (code, err) == (0, "")
    added = json.loads(out)
    assert (added["stake"], added["task"], added["cid"]) == (150, "digits", cid_of(SMALL))
    failures = [
        (("worker", "add", small, "--stake", "150", "--owner", "bob"), 1, "another owner"),
        (("worker", "add", str(WORKERS_DIR / "digits_large.wasm"), "--stake", "5"), 1,
         "minimum stake"),
        (("worker", "add", str(tmp_path / "missing.wasm"), "--stake", "150"), 2, "cannot read"),
        (("worker", "show", "nope"), 2, "bad worker id 'nope'"),
        (("worker", "show", "0" * 64), 2, f"no worker {'0' * 64}"),
    ]
    for argv, want, words in failures:
        code, out, err = cli(capsys, monkeypatch, "--home", home, *argv)
        assert code == want and words in err and err.count("\n") == 1, (argv, code, err)
    code, out, _ = cli(capsys, monkeypatch, "--home", home, "worker", "list", "--json")
    assert code == 0 and [w["id"] for w in json.loads(out)["workers"]] == [added["id"]]
    code, out, _ = cli(capsys, monkeypatch, "--home", home, "worker", "show", added["id"], "--json")
    assert code == 0 and json.loads(out) == added
    code, out, _ = cli(capsys, monkeypatch, "--home", home, "worker", "list")
    assert code == 0 and added["id"][:16] in out


def _seat(ledger: Ledger, name: str, usefulness: int, calls: int, registered_at: float) -> str:
    """A worker row (fake CID) with `calls` calls on record: its id."""
    wid = blake3.blake3(name.encode()).hexdigest()
    with ledger.transaction() as db:
        ledger.add_owner(db, BOB.public_key)
        ledger.add_worker(db, Worker(id=wid, owner=BOB.public_key, cid=name, task="digits",
                                     vk=None, stake=300, usefulness=usefulness,
                                     registered_at=registered_at, last_used_at=None,
                                     unbonding_amount=0, unbonding_at=None, status="active"))
        for _ in range(calls):
            seq = db.execute("INSERT INTO requests (requester, task, input, at) "
                             "VALUES (?, 'digits', x'00', 0)", (BOB.public_key,)).lastrowid
            db.execute("INSERT INTO calls VALUES (?, ?, 'scored', 1, 0, 0, 0, 0, NULL, '', 0)",
                       (seq, wid))
    return wid


def test_full_slots_prune_the_weakest_worker_out_of_immunity(market: tuple[Ledger, Store],
                                                             clock: Clock) -> None:
    ledger, store = market
    config = RegistryConfig(max_workers=4, immunity_trials=3, unbonding_s=100)
    weak_old = _seat(ledger, "weak-old", 100_000, 3, registered_at=1.0)
    weak_new = _seat(ledger, "weak-new", 100_000, 5, registered_at=2.0)  # same usefulness
    _seat(ledger, "strong", 900_000, 3, registered_at=3.0)
    _seat(ledger, "newcomer", 0, 2, registered_at=4.0)  # the weakest, but still immune
    newcomer = register(ledger, store, ALICE, SMALL, 150, config=config)

    pruned = ledger.worker(weak_old)  # the lowest non-immune; a tie goes to the oldest
    assert (pruned.status, pruned.stake, pruned.unbonding_amount) == ("inactive", 0, 300)
    assert pruned.unbonding_at == clock.now + 100
    assert [(e.kind, e.amount) for e in ledger.stake_events(weak_old)] == [("unbond", 300)]
    assert ledger.worker(weak_new).status == "active"
    with ledger.transaction() as db:
        assert db.execute("SELECT worker, replaced_by FROM prunings").fetchall() == [
            (weak_old, newcomer.id)]
    clock.now += 100
    assert release_withdrawal(ledger, weak_old) == 300  # the pruned stake comes back


def test_full_slots_of_immune_workers_refuse_a_registration(market: tuple[Ledger, Store]) -> None:
    ledger, store = market
    config = RegistryConfig(max_workers=2, immunity_trials=3)
    _seat(ledger, "a", 0, 2, registered_at=1.0)
    _seat(ledger, "b", 0, 0, registered_at=2.0)
    with pytest.raises(Rejected, match="all 2 slots of task 'digits' are held by workers in "
                                       "their immunity period"):
        register(ledger, store, ALICE, SMALL, 150, config=config)
    assert ledger.worker_by_cid(cid_of(SMALL)) is None
