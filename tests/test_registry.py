"""Registry rules: signatures and proofs of possession, stake bonded from the free balance (and
range-checked), one worker per program whatever its bytes, the provable subset, unbonding
released after its period (injected clock), pruning the weakest non-immune worker when a task's
slots are full, and the CLI's worker commands and balance."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import blake3
import pytest
import wasmtime
from helpers import Clock, add_call, cli
from multiformats import CID

from memjit.errors import BadInput, Rejected, UnsupportedModule
from memjit.market.epoch import advance
from memjit.market.formulas import MAX_AMOUNT
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger, Worker
from memjit.market.registry import RegistryConfig, admit, register, sign_registration, unbond
from memjit.runtime.claims import vk_of
from memjit.runtime.store import Store, cid_of
from memjit.workers import WORKERS_DIR

SMALL = (WORKERS_DIR / "digits_small.wasm").read_bytes()
LARGE = (WORKERS_DIR / "digits_large.wasm").read_bytes()
CUSTOM = SMALL + b"\x00\x02\x01x"  # one more custom section, named "x": a new CID, same program
ALICE = Identity.from_seed("alice", b"\x01" * 32)
BOB = Identity.from_seed("bob", b"\x02" * 32)


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
    held = ledger.holdings(ALICE.public_key)  # the faucet's grant, less the stake bonded
    assert (held.free, held.bonded, held.unbonding) == (10_000 - 150, 150, 0)


def test_minimum_stake(market: tuple[Ledger, Store]) -> None:
    ledger, store = market
    with pytest.raises(Rejected, match="below the minimum stake 100"):
        register(ledger, store, ALICE, SMALL, 99)
    with pytest.raises(Rejected, match="minimum stake 500"):
        register(ledger, store, ALICE, SMALL, 499, config=RegistryConfig(min_stake=500))
    for stake in (0, -5, 1 << 63):  # outside the amounts a ledger holds: malformed, not low
        with pytest.raises(BadInput, match=r"stake must be an integer in 1\.\.9007199254740991"):
            register(ledger, store, ALICE, SMALL, stake)
    assert ledger.workers() == []


def test_stake_is_bonded_from_the_free_balance_and_range_checked(
        market: tuple[Ledger, Store]) -> None:
    """Issue 22, attack 1: a key with a zero balance bonded 10^15 SWT (and `--stake 2**63`
    crashed at the SQLite insert)."""
    ledger, store = market
    with pytest.raises(Rejected, match=r"stake 1000000000000000 SWT is above the free balance "
                                       r"of its owner \(0 SWT\)"):
        register(ledger, store, ALICE, SMALL, 10**15, faucet_grant=0)
    with pytest.raises(Rejected, match=r"above the free balance of its owner \(10000 SWT\)"):
        register(ledger, store, BOB, SMALL, 10**15)  # a new key gets the faucet's 10,000 only
    for stake in (2**63, MAX_AMOUNT + 1, -1, 1.5):
        with pytest.raises(BadInput, match=f"stake must be an integer in 1..{MAX_AMOUNT}"):
            register(ledger, store, BOB, SMALL, stake)
    assert ledger.workers() == [] and ledger.balance(ALICE.public_key) == (0, 0)
    whole = register(ledger, store, BOB, SMALL, 10_000)  # all of it: nothing left free
    assert whole.stake == 10_000 and ledger.balance(BOB.public_key) == (0, 0)
    with pytest.raises(Rejected, match=r"stake 100 SWT is above .* \(0 SWT\)"):
        register(ledger, store, BOB, LARGE, 100)
    with ledger.transaction() as db:
        granted = db.execute("SELECT owner, amount FROM grants").fetchall()
    assert granted == [(BOB.public_key, 10_000)]  # refused registrations leave no grant


def test_a_program_registers_once_whatever_its_bytes(market: tuple[Ledger, Store]) -> None:
    """Issue 22, attack 4: one more custom-section byte gave a new CID with the same VK, and the
    copy's operator handed in the original worker's claims."""
    ledger, store = market
    first = register(ledger, store, ALICE, SMALL, 100)
    assert cid_of(CUSTOM) != first.cid and vk_of(CUSTOM) == first.vk
    for who, module, words in [(BOB, SMALL, "module .* already registered by another owner"),
                               (ALICE, SMALL, "module .* already registered by you"),
                               (BOB, CUSTOM, "its program .* already registered by another "
                                             "owner .* a copy is refused"),
                               (ALICE, CUSTOM, "its program .* already registered by you")]:
        with pytest.raises(Rejected, match=words):
            register(ledger, store, who, module, 1_000)
    assert ledger.workers() == [first] and ledger.balance(BOB.public_key) == (0, 0)


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


def test_unbonding_is_released_after_its_period(market: tuple[Ledger, Store],
                                                clock: Clock) -> None:
    ledger, store = market
    config = RegistryConfig(min_stake=100, unbonding_s=3_600)
    worker = register(ledger, store, ALICE, SMALL, 150, config=config)
    with pytest.raises(Rejected, match="not owned by 'bob'"):
        unbond(ledger, BOB, worker.id, 10, config)
    with pytest.raises(Rejected, match="cannot unbond 151 SWT: 150 SWT is bonded"):
        unbond(ledger, ALICE, worker.id, 151, config)
    with pytest.raises(BadInput, match="the amount to unbond must be an integer in 1.."):
        unbond(ledger, ALICE, worker.id, 0, config)

    unbonding = unbond(ledger, ALICE, worker.id, 30, config)
    assert (unbonding.stake, unbonding.unbonding_amount, unbonding.status) == (120, 30, "active")
    assert unbonding.unbonding_at == 1_000.0 + 3_600
    clock.now += 1_800
    again = unbond(ledger, ALICE, worker.id, 20, config)  # adds up, and restarts the period
    assert (again.stake, again.unbonding_amount, again.unbonding_at) == (100, 50, 2_800.0 + 3_600)
    clock.now = 6_399.0
    assert advance(ledger).released == 0
    assert ledger.holdings(ALICE.public_key).unbonding == 50
    clock.now = 6_400.0
    assert advance(ledger).released == 50 and advance(ledger).released == 0  # paid once
    held = ledger.holdings(ALICE.public_key)
    assert (held.free, held.bonded, held.unbonding) == (10_000 - 100, 100, 0)

    below = unbond(ledger, ALICE, worker.id, 1, config)
    assert (below.stake, below.status) == (99, "inactive")  # below the minimum: out of the pool
    gone = unbond(ledger, ALICE, worker.id, config=config)  # all the rest by default
    assert (gone.stake, gone.unbonding_amount) == (0, 100)
    with pytest.raises(Rejected, match="no stake bonded"):
        unbond(ledger, ALICE, worker.id, config=config)
    kinds = [(e.kind, e.amount) for e in ledger.stake_events(worker.id)]
    assert kinds == [("bond", 150), ("unbond", 30), ("unbond", 20), ("release", 50),
                     ("unbond", 1), ("unbond", 99)]


def test_cli_worker_add_list_show_unbond_and_balance(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    home, small = str(tmp_path), str(WORKERS_DIR / "digits_small.wasm")
    custom = tmp_path / "custom.wasm"
    custom.write_bytes(CUSTOM)
    code, out, err = cli(capsys, monkeypatch, "--home", home, "worker", "add", small,
                         "--stake", "150", "--owner", "alice", "--json")
    assert (code, err) == (0, "")
    added = json.loads(out)
    assert (added["stake"], added["task"], added["cid"]) == (150, "digits", cid_of(SMALL))
    large = str(WORKERS_DIR / "digits_large.wasm")
    failures = [
        (("worker", "add", small, "--stake", "150", "--owner", "bob"), 1, "another owner"),
        (("worker", "add", str(custom), "--stake", "150", "--owner", "bob"), 1,
         "a copy is refused"),
        (("worker", "add", large, "--stake", "5"), 1, "minimum stake"),
        (("worker", "add", large, "--stake", str(10**15)), 1,
         "stake 1000000000000000 SWT is above the free balance of its owner (10000 SWT)"),
        (("worker", "add", large, "--stake", str(2**63)), 2, "stake must be an integer in 1.."),
        (("worker", "add", str(tmp_path / "missing.wasm"), "--stake", "150"), 2, "cannot read"),
        (("worker", "show", "nope"), 2, "bad worker id 'nope'"),
        (("worker", "show", "0" * 64), 2, f"no worker {'0' * 64}"),
        (("worker", "unbond", added["id"], "--owner", "nobody"), 2, "no owner key 'nobody'"),
        (("worker", "unbond", added["id"], "--owner", "default"), 1, "not owned by 'default'"),
        (("worker", "unbond", added["id"], "--owner", "alice", "--amount", "151"), 1,
         "cannot unbond 151 SWT: 150 SWT is bonded"),
        (("balance", "nobody"), 2, "no owner key 'nobody'"),
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
    code, out, _ = cli(capsys, monkeypatch, "--home", home, "worker", "unbond", added["id"],
                       "--owner", "alice", "--amount", "50")
    assert code == 0 and out.startswith(f"unbonding 50 SWT of worker {added['id'][:16]} until ")
    assert out.rstrip().endswith("100 SWT bonded (active)")
    code, out, _ = cli(capsys, monkeypatch, "--home", home, "balance", "alice", "--json")
    held = json.loads(out)
    assert code == 0 and {k: held[k] for k in ("free", "bonded", "unbonding", "earned")} == {
        "free": 10_000 - 150, "bonded": 100, "unbonding": 50, "earned": 0}
    code, out, _ = cli(capsys, monkeypatch, "--home", home, "balance", "alice")
    assert code == 0 and out.startswith("alice: free 9850, bonded 100, unbonding 50, earned 0 SWT")


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
            add_call(db, BOB.public_key, wid)
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
    assert advance(ledger).released == 300  # the pruned stake comes back
    assert ledger.balance(BOB.public_key) == (300, 0)


def test_full_slots_of_immune_workers_refuse_a_registration(market: tuple[Ledger, Store]) -> None:
    ledger, store = market
    config = RegistryConfig(max_workers=2, immunity_trials=3)
    _seat(ledger, "a", 0, 2, registered_at=1.0)
    _seat(ledger, "b", 0, 0, registered_at=2.0)
    with pytest.raises(Rejected, match="all 2 slots of task 'digits' are held by workers in "
                                       "their immunity period"):
        register(ledger, store, ALICE, SMALL, 150, config=config)
    assert ledger.worker_by_cid(cid_of(SMALL)) is None
