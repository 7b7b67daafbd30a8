"""The worker registry: who may put which module into the market, with how much stake.

A registration is a message signed by the owner's BLS key, carrying a proof of possession of
that key; both are verified before anything is written. The rules:

- the module must be in the provable subset and serve its task (export, input buffer);
- the stake must be at least `min_stake` (Sybil resistance);
- worker id = blake3(owner public key || binary CID); the first registrant of a CID owns it,
  so a copy of someone else's module under another key is refused;
- a withdrawal moves stake out of the bond at once (a worker below `min_stake` turns
  inactive) but releases it to the owner's free balance only after `unbonding_s`;
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

from memjit.runtime.claims import check_supported, vk_of
from memjit.errors import BadInput, Rejected
from memjit.market.identity import Identity, pop_verify, verify
from memjit.market.ledger import Ledger, Worker
from memjit.runtime.store import Store, cid_of
from memjit.market.tasks import get_task
from memjit.runtime.wasm import load

DOMAIN = b"memjit/register/v1\x00"
PUBLIC_KEY_BYTES = 48
MAX_STAKE = (1 << 63) - 1
"""Largest stake: the ledger's amounts are signed 64-bit SQLite integers. A stake outside
1..MAX_STAKE is malformed (BadInput, exit 2); one below the minimum is Rejected (exit 1)."""


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
    if type(stake) is not int or not 0 < stake <= MAX_STAKE:
        raise BadInput(f"stake must be an integer in 1..{MAX_STAKE} SWT units, got {stake!r}")
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
    ledger.update_worker(db, victim.id, stake=0, status="inactive",
                         unbonding_amount=victim.unbonding_amount + victim.stake,
                         unbonding_at=ledger.clock() + config.unbonding_s)
    ledger.add_stake_event(db, victim.id, "unbond", victim.stake)
    return victim


def admit(ledger: Ledger, store: Store, module_bytes: bytes, reg: Registration,
          config: RegistryConfig = RegistryConfig()) -> Worker:
    """Check a signed registration against every rule, then record the worker atomically."""
    if type(reg.stake) is not int or not 0 < reg.stake <= MAX_STAKE:
        raise BadInput(f"stake must be an integer in 1..{MAX_STAKE} SWT units, got {reg.stake!r}")
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
        taken = ledger.worker_by_cid(reg.cid)
        if taken is not None:
            whose = "you" if taken.owner == reg.public_key else "another owner"
            raise Rejected(f"module {reg.cid} is already registered by {whose} "
                           f"as worker {taken.id}")
        ledger.add_owner(db, reg.public_key)
        victim = _make_room(ledger, db, reg.task, config)
        ledger.add_worker(db, worker)
        ledger.add_stake_event(db, worker.id, "bond", reg.stake)
        if victim is not None:
            db.execute("INSERT INTO prunings VALUES (?, ?, ?)",
                       (victim.id, worker.id, ledger.clock()))
    return worker


def register(ledger: Ledger, store: Store, identity: Identity, module_bytes: bytes,
             stake: int, task: str = "digits",
             config: RegistryConfig = RegistryConfig()) -> Worker:
    """Register `module_bytes` for `task` under `identity` with `stake` (signs, then admits)."""
    reg = sign_registration(identity, cid_of(module_bytes), task, stake)
    return admit(ledger, store, module_bytes, reg, config)


def request_withdrawal(ledger: Ledger, identity: Identity, wid: str, amount: int,
                       config: RegistryConfig = RegistryConfig()) -> Worker:
    """Start unbonding `amount` of a worker's stake; it is released after `unbonding_s`."""
    with ledger.transaction() as db:
        worker = ledger.worker(wid)
        if worker.owner != identity.public_key:
            raise Rejected(f"worker {worker.id} is not owned by {identity.name!r}")
        if worker.unbonding_at is not None:
            raise Rejected(f"worker {worker.id} already has a withdrawal unbonding")
        if type(amount) is not int or not 0 < amount <= worker.stake:
            raise BadInput(f"withdrawal must be in 1..{worker.stake}, got {amount!r}")
        stake = worker.stake - amount
        ledger.update_worker(db, worker.id, stake=stake, unbonding_amount=amount,
                             unbonding_at=ledger.clock() + config.unbonding_s,
                             status="active" if stake >= config.min_stake else "inactive")
        ledger.add_stake_event(db, worker.id, "unbond", amount)
    return ledger.worker(worker.id)


def release_withdrawal(ledger: Ledger, wid: str) -> int:
    """Pay out a worker's unbonded stake to its owner if the period is over; returns the amount
    released (0 if nothing is due yet)."""
    with ledger.transaction() as db:
        worker = ledger.worker(wid)
        if worker.unbonding_at is None or ledger.clock() < worker.unbonding_at:
            return 0
        ledger.credit(db, worker.owner, free=worker.unbonding_amount)
        ledger.update_worker(db, worker.id, unbonding_amount=0, unbonding_at=None)
        ledger.add_stake_event(db, worker.id, "release", worker.unbonding_amount)
    return worker.unbonding_amount
