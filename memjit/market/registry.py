"""The worker registry: who may put which module into the market, with how much stake.

A registration is a message signed by the owner's BLS key, carrying a proof of possession of
that key; both are verified before anything is written. The rules:

- the module must be in the provable subset and serve its task (export, input buffer);
- the stake must be an amount of at least `min_stake` and is bonded from the owner's free
  balance (memjit.market.bonds): a stake above it is Rejected. A key new to the ledger first
  gets its one faucet grant (memjit.market.rewards.faucet);
- a worker's identity is its program: a module whose verification key is a registered worker's
  is a copy and is refused, whatever its bytes (a custom section changes the CID, not the VK);
  worker id = blake3(owner public key || binary CID), and a CID registers once too;
- unbonding moves stake out of the bond at once (a worker below `min_stake` turns inactive);
  it stays slashable until the unbonding period is over and is released to the free balance
  then (memjit.market.bonds);
- a task has `max_workers` slots (as a Bittensor subnet has): when they are all taken, a new
  registration prunes the active worker with the lowest usefulness that is out of its
  immunity (ties: the earliest registered), whose whole stake then unbonds. A worker is immune
  until it has had `immunity_trials` calls, so every newcomer gets its trials (the pool
  reserves exploration for immune workers) before it can be pruned; when every active worker
  is immune, the registration is refused.

The verification key is `memjit.runtime.claims.vk_of(module)`, after `check_supported` refused any
instruction the VM AIR cannot prove: every registered worker is provable.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass

import blake3
from multiformats import CID

from memjit.errors import BadInput, Rejected
from memjit.market import bonds
from memjit.market.identity import Identity, pop_verify, verify
from memjit.market.ledger import Ledger, Worker, check_amount
from memjit.market.rewards import FAUCET, faucet
from memjit.market.tasks import get_task
from memjit.runtime.claims import check_supported, vk_of
from memjit.runtime.store import Store, cid_of
from memjit.runtime.wasm import load
from verifier.claims import vk_digest

DOMAIN = b"memjit/register/v1\x00"
PUBLIC_KEY_BYTES = 48


@dataclass(frozen=True)
class RegistryConfig:
    """Registry parameters: minimum stake (SWT units), unbonding period (seconds), worker
    slots per task, and the calls a new worker gets before it can be pruned."""

    min_stake: int = 100
    unbonding_s: float = 7 * 24 * 3600
    max_workers: int = 64
    immunity_trials: int = 3


@dataclass(frozen=True)
class Registration:
    """A signed request to register module `cid` for `task` with `stake`."""

    public_key: bytes
    cid: str
    task: str
    stake: int
    signature: bytes
    pop: bytes


def worker_id(public_key: bytes, cid: str) -> str:
    """The worker id: hex blake3 of the owner's public key followed by the binary CID."""
    return blake3.blake3(bytes(public_key) + bytes(CID.decode(cid))).hexdigest()


def registration_message(public_key: bytes, cid: str, task: str, stake: int) -> bytes:
    """The canonical bytes an owner signs to register (domain-separated, lengths explicit)."""
    task_bytes = task.encode()
    if len(task_bytes) > 255:
        raise BadInput(f"task name of {len(task_bytes)} bytes: at most 255")
    check_amount(stake, "stake", low=1)
    cid_bytes = bytes(CID.decode(cid))
    return (DOMAIN + bytes([len(public_key)]) + bytes(public_key) + bytes([len(cid_bytes)])
            + cid_bytes + bytes([len(task_bytes)]) + task_bytes + struct.pack(">Q", stake))


def sign_registration(identity: Identity, cid: str, task: str, stake: int) -> Registration:
    """A registration signed by `identity`, with its proof of possession."""
    message = registration_message(identity.public_key, cid, task, stake)
    return Registration(identity.public_key, cid, task, stake, identity.sign(message),
                        identity.pop())


def vk_for(module_bytes: bytes, memory_mb: int) -> bytes:
    """The module's verification key under the task's memory cap (UnsupportedModule if the VM
    AIR cannot prove it or it cannot be instantiated)."""
    check_supported(load(module_bytes))
    return vk_of(module_bytes, memory_mb)


def trials(db: sqlite3.Connection, wid: str) -> int:
    """How many calls a worker has had (scored, invalid or faulty)."""
    return int(db.execute("SELECT count(*) FROM calls WHERE worker = ?", (wid,)).fetchone()[0])


def is_immune(db: sqlite3.Connection, wid: str, config: RegistryConfig) -> bool:
    """Whether a worker is still in its immunity period (fewer than `immunity_trials` calls)."""
    return trials(db, wid) < config.immunity_trials


def _make_room(ledger: Ledger, db: sqlite3.Connection, task: str,
               config: RegistryConfig) -> Worker | None:
    """Prune a worker if the task's slots are full (see the module doc); returns the victim."""
    active = [w for w in ledger.workers(task) if w.status == "active"]
    if len(active) < config.max_workers:
        return None
    candidates = [w for w in active if not is_immune(db, w.id, config)]
    if not candidates:
        raise Rejected(f"all {len(active)} slots of task {task!r} are held by workers in "
                       "their immunity period; try again later")
    victim = min(candidates, key=lambda w: (w.usefulness, w.registered_at, w.id))
    ledger.update_worker(db, victim.id, status="inactive")
    if victim.stake:
        bonds.unbond(ledger, db, bonds.WORKER, victim.id, victim.stake, config.unbonding_s)
    return victim


def admit(ledger: Ledger, store: Store, module_bytes: bytes, reg: Registration,
          config: RegistryConfig = RegistryConfig(), faucet_grant: int = FAUCET) -> Worker:
    """Check a signed registration against every rule, then record the worker and bond its
    stake atomically (a key new to the ledger first gets `faucet_grant`)."""
    check_amount(reg.stake, "stake", low=1)
    if reg.stake < config.min_stake:
        raise Rejected(f"stake {reg.stake} is below the minimum stake {config.min_stake}")
    if len(reg.public_key) != PUBLIC_KEY_BYTES:
        raise Rejected(f"owner key must be a {PUBLIC_KEY_BYTES}-byte compressed BLS key")
    module_bytes = bytes(module_bytes)
    if cid_of(module_bytes) != reg.cid:
        raise Rejected(f"registration is for {reg.cid}, not for this module")
    task = get_task(store, reg.task)
    load(module_bytes)  # UnsupportedModule naming the instruction, if outside the subset
    task.check_worker(module_bytes)
    vk = vk_for(module_bytes, task.limits.memory_mb)
    if not pop_verify(reg.public_key, reg.pop):
        raise Rejected("bad proof of possession for the owner key")
    message = registration_message(reg.public_key, reg.cid, reg.task, reg.stake)
    if not verify(reg.public_key, message, reg.signature):
        raise Rejected("bad signature on the registration")
    store.put(module_bytes)
    worker = Worker(id=worker_id(reg.public_key, reg.cid), owner=reg.public_key, cid=reg.cid,
                    task=reg.task, vk=vk, stake=reg.stake, usefulness=0,
                    registered_at=ledger.clock(), last_used_at=None, unbonding_amount=0,
                    unbonding_at=None, status="active")
    with ledger.transaction() as db:
        for taken, what in ((ledger.worker_by_cid(reg.cid), f"module {reg.cid}"),
                            (ledger.worker_by_vk(vk_digest(vk)),
                             f"its program (verification key {vk_digest(vk).hex()[:16]})")):
            if taken is not None:
                whose = "you" if taken.owner == reg.public_key else "another owner"
                raise Rejected(f"{what} is already registered by {whose} as worker "
                               f"{taken.id}: a copy is refused")
        faucet(ledger, db, reg.public_key, faucet_grant)
        bonds.release_due(ledger, db)
        bonds.debit(ledger, db, reg.public_key, reg.stake, "stake")
        victim = _make_room(ledger, db, reg.task, config)
        ledger.add_worker(db, worker)
        bonds.record(ledger, db, bonds.WORKER, worker.id, "bond", reg.stake)
        if victim is not None:
            db.execute("INSERT INTO prunings VALUES (?, ?, ?)",
                       (victim.id, worker.id, ledger.clock()))
    return worker


def register(ledger: Ledger, store: Store, identity: Identity, module_bytes: bytes,
             stake: int, task: str = "digits", config: RegistryConfig = RegistryConfig(),
             faucet_grant: int = FAUCET) -> Worker:
    """Register `module_bytes` for `task` under `identity` with `stake` (signs, then admits)."""
    reg = sign_registration(identity, cid_of(module_bytes), task, stake)
    return admit(ledger, store, module_bytes, reg, config, faucet_grant)


def unbond(ledger: Ledger, identity: Identity, wid: str, amount: int | None = None,
           config: RegistryConfig = RegistryConfig()) -> Worker:
    """Start unbonding `amount` of a worker's stake (all of it by default); it stays slashable
    and is released to the owner after `unbonding_s` (a further unbonding restarts the period).
    A worker left below the minimum stake turns inactive."""
    return unbond_by(ledger, identity.public_key, repr(identity.name), wid, amount, config)


def unbond_by(ledger: Ledger, owner: bytes, who: str, wid: str, amount: int | None = None,
              config: RegistryConfig = RegistryConfig()) -> Worker:
    """`unbond` for the owner key `owner` (`who` names it in errors): what a node applies
    for an owner's signed unbond message."""
    with ledger.transaction() as db:
        worker = ledger.worker(wid)
        if worker.owner != owner:
            raise Rejected(f"worker {worker.id} is not owned by {who}")
        if worker.stake == 0:
            raise Rejected(f"worker {worker.id} has no stake bonded")
        left = bonds.unbond(ledger, db, bonds.WORKER, worker.id,
                            worker.stake if amount is None else amount, config.unbonding_s)
        if left < config.min_stake:
            ledger.update_worker(db, worker.id, status="inactive")
    return ledger.worker(worker.id)
