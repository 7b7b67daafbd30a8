"""The market state as the nodes share it: the operator directory (which node runs which
worker, under which key) and the market view a gateway selects from.

The sequencer holds the ledger; every other node reads a *view* of it over HTTP
(`GET /v1/state/market`): the task's active workers with their VKs, calls so far and current
fees, their operators, and the requester's funds and validator stake: everything
memjit.market.pool's selection rules and fee quote need, so that a gateway ranks exactly as
the in-process pool does (memjit.market.pool.rank). A gateway keeps the views it read for a
short while (ViewCache): a request need not wait for the sequencer's round trip.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from memjit.errors import BadInput
from memjit.market import validators
from memjit.market.ledger import Ledger, Worker
from memjit.market.pool import MarketConfig
from memjit.market.registry import trials
from memjit.market.rewards import fee, granted, recent_calls

DIRECTORY_FILE = "directory.sqlite"
VIEW_TTL_S = 2.0
"""How long a gateway serves a market view it read (ViewCache)."""
MAX_READING = 4096
"""The per-view read locks a ViewCache keeps before it starts over."""


@dataclass(frozen=True)
class OperatorRef:
    """Where a worker's jobs go: its operator node's URL and the key that signs its claims."""

    url: str
    key: bytes


class Directory:
    """The sequencer's record of each worker's operator (owner-signed at registration)."""

    def __init__(self, home: Path) -> None:
        self._db = sqlite3.connect(str(Path(home) / DIRECTORY_FILE), isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS operators (worker TEXT PRIMARY KEY, "
                         "url TEXT NOT NULL, key BLOB NOT NULL)")
        self._lock = threading.Lock()

    def set(self, worker_id: str, ref: OperatorRef) -> None:
        """Record (or move) a worker's operator."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO operators VALUES (?, ?, ?)",
                             (worker_id, ref.url, ref.key))

    def get(self, worker_id: str) -> OperatorRef | None:
        """A worker's operator, if it has one."""
        with self._lock:
            row = self._db.execute("SELECT url, key FROM operators WHERE worker = ?",
                                   (worker_id,)).fetchone()
        return None if row is None else OperatorRef(row[0], bytes(row[1]))

    def operators(self) -> list[OperatorRef]:
        """Every operator node a worker names, once each."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT url, key FROM operators ORDER BY url")
            return [OperatorRef(url, bytes(key)) for url, key in rows]


def worker_json(worker: Worker, *, vk: bool = False) -> dict:
    """A worker as JSON (binary fields in hex; the full VK only with `vk`)."""
    from verifier.claims import vk_digest

    fields = asdict(worker)
    fields["owner"] = worker.owner.hex()
    fields["vk"] = None if worker.vk is None else (worker.vk.hex() if vk
                                                   else vk_digest(worker.vk).hex())
    return fields


def worker_from_json(obj: dict) -> Worker:
    """The Worker of `worker_json(..., vk=True)` (BadInput if malformed)."""
    try:
        fields = dict(obj)
        fields["owner"] = bytes.fromhex(fields["owner"])
        fields["vk"] = None if fields["vk"] is None else bytes.fromhex(fields["vk"])
        return Worker(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"malformed worker in the market view: {exc}") from None


@dataclass(frozen=True)
class MarketView:
    """What a gateway needs to serve one request: the task's active workers, each one's calls
    so far, current fee and operator, and the requester's funds and validator stake."""

    workers: tuple[Worker, ...]
    trials: dict[str, int]
    fees: dict[str, int]
    operators: dict[str, OperatorRef]
    funds: int
    labeller_stake: int

    def to_json(self) -> dict:
        """The view as JSON."""
        return {"workers": [worker_json(w, vk=True) for w in self.workers],
                "trials": self.trials, "fees": self.fees,
                "operators": {k: {"url": r.url, "key": r.key.hex()}
                              for k, r in self.operators.items()},
                "funds": self.funds, "labeller_stake": self.labeller_stake}

    @classmethod
    def from_json(cls, obj: dict) -> "MarketView":
        """The view of `to_json` (BadInput if malformed)."""
        try:
            return cls(tuple(worker_from_json(w) for w in obj["workers"]),
                       {k: int(v) for k, v in obj["trials"].items()},
                       {k: int(v) for k, v in obj["fees"].items()},
                       {k: OperatorRef(str(r["url"]), bytes.fromhex(r["key"]))
                        for k, r in obj["operators"].items()},
                       int(obj["funds"]), int(obj["labeller_stake"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadInput(f"malformed market view: {exc}") from None


def market_view(ledger: Ledger, directory: Directory, task: str, requester: bytes,
                config: MarketConfig) -> MarketView:
    """The market view of `task` for `requester`, read from the ledger in one transaction."""
    with ledger.transaction() as db:
        now = ledger.clock()
        active = [w for w in ledger.workers(task) if w.status == "active"]
        calls = {w.id: trials(db, w.id) for w in active}
        fees = {w.id: fee(recent_calls(db, w.id, now, config.rewards), config.rewards)
                for w in active}
        funds = ledger.balance(requester)[0] + (0 if granted(db, requester)
                                                else config.rewards.faucet)
        stake = validators.bonded(ledger, requester)
    operators = {w.id: ref for w in active if (ref := directory.get(w.id)) is not None}
    return MarketView(tuple(active), calls, fees, operators, funds, stake)


class ViewCache:
    """A gateway's market views, by task and requester, each served for `ttl_s` after it was
    read (`read(task, requester)`: the sequencer's view), the requester's funds less what this
    gateway quoted it since (`charge`). The sequencer plans every delivery again on its own
    ledger before it settles it, so a view a little old never settles anything wrongly: it may
    miss a worker registered or a stake bonded through another node for `ttl_s`, and its fees
    and trial counts may lag as concurrent requests' do. A gateway refuses nothing on a cached
    view (it reads a `fresh` one first); `invalidate` drops every view (this node forwarded a
    registration, unbond or stake change; the sequencer refused a delivery)."""

    def __init__(self, read: Callable[[str, bytes], MarketView], ttl_s: float = VIEW_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.read = read
        self.ttl_s = ttl_s
        self._clock = clock
        self._views: dict[tuple[str, bytes], tuple[float, MarketView]] = {}
        self._reading: dict[tuple[str, bytes], threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, task: str, requester: bytes, fresh: bool = False) -> MarketView:
        """The view of `task` for `requester`: the cached one while it is valid (unless
        `fresh`), else read now (and cached; requests arriving meanwhile wait for this read
        rather than read again)."""
        key = (task, requester)
        asked = self._clock()
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:
            with self._lock:
                hit = self._views.get(key)
            now = self._clock()
            if hit is not None and now - hit[0] < self.ttl_s and not (fresh and hit[0] <= asked):
                return hit[1]
            view = self.read(task, requester)
            with self._lock:
                self._views = {k: v for k, v in self._views.items() if now - v[0] < self.ttl_s}
                self._views[key] = (now, view)
                if len(self._reading) > MAX_READING:
                    self._reading.clear()
            return view

    def charge(self, task: str, requester: bytes, amount: int) -> None:
        """Take `amount` (a quote this gateway accepted) off the requester's cached funds."""
        with self._lock:
            hit = self._views.get((task, requester))
            if hit is not None:
                self._views[(task, requester)] = (hit[0], replace(hit[1],
                                                                 funds=hit[1].funds - amount))

    def invalidate(self) -> None:
        """Drop every cached view."""
        with self._lock:
            self._views.clear()
