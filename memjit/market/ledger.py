"""The ledger: all market state (owners, workers, stake, balances) in one SQLite database.

It lives at `<home>/ledger.sqlite` in WAL mode with `synchronous=FULL`, so a committed change
survives a crash and a process killed mid-change leaves no trace of it. Every state change runs
inside `Ledger.transaction()` (BEGIN IMMEDIATE ... COMMIT, rolled back on any exception): either
all of its statements land or none does. The schema is versioned: `schema_version` holds the
number of MIGRATIONS applied, and opening a ledger applies the missing ones, each atomically.

Amounts (stake, balances) are integer SWT units in 0..MAX_AMOUNT, range-checked here before
any reaches SQLite (`check_amount`); usefulness is an integer in 0..1_000_000 (parts per
million) so that the state is exact and hashes deterministically (issue 7's roots). This module
stores and reads; the rules are elsewhere (registry, bonds, validators, oracle, rewards).
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import blake3

from memjit.errors import BadInput, Rejected
from memjit.market.formulas import MAX_AMOUNT

LEDGER_FILE = "ledger.sqlite"

# Each entry upgrades the schema by one version; never edit an applied entry, append a new one.
# Statements are separated by ';' (so no ';' inside comments or literals).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE owners (
        pubkey        BLOB PRIMARY KEY,          -- 48-byte compressed BLS G1 public key
        registered_at REAL NOT NULL
    );
    CREATE TABLE workers (
        id               TEXT PRIMARY KEY,       -- hex blake3(owner pubkey || binary CID)
        owner            BLOB NOT NULL REFERENCES owners(pubkey),
        cid              TEXT NOT NULL UNIQUE,   -- first registrant of a CID owns it
        task             TEXT NOT NULL,
        vk               BLOB,                   -- NULL until the VM AIR derives one
        stake            INTEGER NOT NULL CHECK (stake >= 0),
        usefulness       INTEGER NOT NULL DEFAULT 0 CHECK (usefulness BETWEEN 0 AND 1000000),
        registered_at    REAL NOT NULL,
        last_used_at     REAL,
        unbonding_amount INTEGER NOT NULL DEFAULT 0 CHECK (unbonding_amount >= 0),
        unbonding_at     REAL,                   -- release time of the pending withdrawal
        status           TEXT NOT NULL CHECK (status IN ('active', 'inactive'))
    );
    CREATE INDEX workers_by_task ON workers(task, status);
    CREATE TABLE balances (
        owner   BLOB PRIMARY KEY REFERENCES owners(pubkey),
        free    INTEGER NOT NULL DEFAULT 0 CHECK (free >= 0),     -- released stake
        pending INTEGER NOT NULL DEFAULT 0 CHECK (pending >= 0)   -- SWT earned, not yet minted
    );
    CREATE TABLE stake_events (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        worker TEXT NOT NULL REFERENCES workers(id),
        kind   TEXT NOT NULL CHECK (kind IN ('bond', 'unbond', 'release', 'slash')),
        amount INTEGER NOT NULL CHECK (amount >= 0),
        at     REAL NOT NULL
    );
    """,
    # The market (memjit.market.pool, memjit.market.oracle, memjit.market.rewards): requests, the calls they made,
    # requesters' genesis grants, and workers pruned to free a task slot.
    """
    CREATE TABLE grants (
        owner  BLOB PRIMARY KEY REFERENCES owners(pubkey),  -- once per requester
        amount INTEGER NOT NULL CHECK (amount >= 0),
        at     REAL NOT NULL
    );
    CREATE TABLE requests (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        requester BLOB NOT NULL REFERENCES owners(pubkey),
        task      TEXT NOT NULL,
        input     BLOB NOT NULL,                  -- blake3 of the input bytes
        label     INTEGER,                        -- the requester's label, if given
        scored_against INTEGER,                   -- label or consensus (NULL: nothing verified)
        worker    TEXT REFERENCES workers(id),    -- whose verified result was returned
        result    INTEGER,
        at        REAL NOT NULL
    );
    CREATE TABLE calls (
        request INTEGER NOT NULL REFERENCES requests(seq),
        worker  TEXT NOT NULL REFERENCES workers(id),
        outcome TEXT NOT NULL CHECK (outcome IN ('scored', 'invalid', 'fault')),
        result  INTEGER,                          -- the verified result (scored calls only)
        score   INTEGER NOT NULL CHECK (score BETWEEN 0 AND 1000000),
        fee     INTEGER NOT NULL CHECK (fee >= 0),      -- paid by the requester to the owner
        reward  INTEGER NOT NULL CHECK (reward >= 0),   -- pending SWT, minted by a batch
        slashed INTEGER NOT NULL CHECK (slashed >= 0),  -- stake burned
        claim   TEXT,                             -- CID of the claim in the content store
        reason  TEXT NOT NULL,                    -- why an invalid or faulty call failed
        at      REAL NOT NULL,
        PRIMARY KEY (request, worker)
    );
    CREATE INDEX calls_by_worker ON calls(worker, at);
    CREATE TABLE prunings (
        worker      TEXT PRIMARY KEY REFERENCES workers(id),
        replaced_by TEXT NOT NULL REFERENCES workers(id),  -- the registration that took its slot
        at          REAL NOT NULL
    );
    """,
    # issue 7, the rollup batcher (memjit/rollup/batcher.py): facts, batches, state diffs, committee
    """
    ALTER TABLE balances ADD COLUMN
        minted INTEGER NOT NULL DEFAULT 0 CHECK (minted >= 0);  -- SWT minted by committed batches
    CREATE TABLE batches (
        number       INTEGER PRIMARY KEY CHECK (number >= 1),
        hash         BLOB NOT NULL UNIQUE,       -- blake3 of the header's signed part
        header       BLOB NOT NULL,              -- canonical encoding, signature included
        data_cid     TEXT NOT NULL,              -- the batch's facts and state diff (store)
        committed_at REAL NOT NULL,
        final_at     REAL NOT NULL               -- end of its challenge window
    );
    CREATE TABLE batch_facts (
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        hash             BLOB NOT NULL,          -- blake3 over vk, statement, proof and score
        worker           TEXT NOT NULL REFERENCES workers(id),
        vk_digest        BLOB NOT NULL,
        statement_digest BLOB NOT NULL,
        proof_digest     BLOB NOT NULL,
        score            INTEGER NOT NULL CHECK (score >= 0),
        reward           INTEGER NOT NULL CHECK (reward >= 0),  -- SWT minted when committed
        claim_cid        TEXT,                   -- the claim in the content store
        recorded_at      REAL NOT NULL,
        batch            INTEGER REFERENCES batches(number)     -- NULL while pending
    );
    CREATE INDEX batch_facts_by_batch ON batch_facts(batch, seq);
    CREATE TABLE batch_diffs (
        batch    INTEGER NOT NULL REFERENCES batches(number),
        worker   TEXT NOT NULL,                  -- account key: the worker id
        old_leaf BLOB,                           -- NULL: not in the tree before
        new_leaf BLOB NOT NULL,
        PRIMARY KEY (worker, batch)
    );
    CREATE TABLE committee (
        pubkey   BLOB PRIMARY KEY,               -- 48-byte BLS G1 key
        name     TEXT NOT NULL UNIQUE,           -- its key file under --home/keys
        pop      BLOB NOT NULL,                  -- proof of possession, checked when added
        added_at REAL NOT NULL
    );
    """,
    # issue 22, market integrity: programs register once (VK digest), requests carry the nonce
    # their claims answer and the basis they were scored on, validators bond stake behind their
    # labels, calls carry their share of an emission period and their claim's digests (a claim
    # is settled once), and each closed period records what it emitted. blake3() is the
    # connection's function (see Ledger); a copy registered before this rule is left inactive.
    """
    ALTER TABLE workers ADD COLUMN vk_digest BLOB;  -- blake3 of vk: one worker per program
    UPDATE workers SET vk_digest = blake3(vk) WHERE vk IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM workers first WHERE first.vk = workers.vk
        AND (first.registered_at, first.id) < (workers.registered_at, workers.id));
    UPDATE workers SET status = 'inactive' WHERE vk IS NOT NULL AND vk_digest IS NULL;
    CREATE UNIQUE INDEX workers_by_vk ON workers(vk_digest);
    ALTER TABLE requests ADD COLUMN nonce BLOB;     -- what every claim of the request answers
    ALTER TABLE requests ADD COLUMN basis TEXT;     -- label, consensus, contested (NULL: none)
    CREATE UNIQUE INDEX requests_by_nonce ON requests(nonce);
    CREATE TABLE validators (
        owner            BLOB PRIMARY KEY REFERENCES owners(pubkey),
        stake            INTEGER NOT NULL CHECK (stake >= 0),   -- bonded behind its labels
        unbonding_amount INTEGER NOT NULL DEFAULT 0 CHECK (unbonding_amount >= 0),
        unbonding_at     REAL,                                  -- release time
        bonded_at        REAL NOT NULL
    );
    CREATE TABLE validator_events (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        owner  BLOB NOT NULL REFERENCES validators(owner),
        kind   TEXT NOT NULL CHECK (kind IN ('bond', 'unbond', 'release', 'slash')),
        amount INTEGER NOT NULL CHECK (amount >= 0),
        at     REAL NOT NULL
    );
    CREATE TABLE periods (
        number    INTEGER PRIMARY KEY,                          -- time // period length
        emission  INTEGER NOT NULL CHECK (emission >= 0),       -- the cap
        weight    INTEGER NOT NULL CHECK (weight >= 0),         -- the calls' weights, summed
        paid      INTEGER NOT NULL CHECK (paid >= 0),           -- rewards assigned (<= emission)
        closed_at REAL NOT NULL
    );
    CREATE TABLE calls_v4 (
        request   INTEGER NOT NULL REFERENCES requests(seq),
        worker    TEXT NOT NULL REFERENCES workers(id),
        outcome   TEXT NOT NULL CHECK (outcome IN ('scored', 'unscored', 'invalid', 'fault')),
        result    INTEGER,                          -- the verified result (valid claims only)
        score     INTEGER NOT NULL CHECK (score BETWEEN 0 AND 1000000),
        fee       INTEGER NOT NULL CHECK (fee >= 0),      -- paid by the requester to the owner
        reward    INTEGER NOT NULL CHECK (reward >= 0),   -- assigned when its period closes
        slashed   INTEGER NOT NULL CHECK (slashed >= 0),  -- stake burned
        claim     TEXT,                             -- CID of the claim in the content store
        reason    TEXT NOT NULL,                    -- why an invalid or faulty call failed
        at        REAL NOT NULL,
        weight    INTEGER NOT NULL DEFAULT 0 CHECK (weight >= 0),  -- claim on the emission
        period    INTEGER,                          -- its emission period (scored calls)
        statement BLOB UNIQUE,                      -- blake3 of the valid claim's statement
        proof     BLOB,                             -- blake3 of its proof
        PRIMARY KEY (request, worker)
    );
    INSERT INTO calls_v4 (request, worker, outcome, result, score, fee, reward, slashed, claim,
                          reason, at)
        SELECT request, worker, outcome, result, score, fee, reward, slashed, claim, reason, at
        FROM calls;
    DROP TABLE calls;
    ALTER TABLE calls_v4 RENAME TO calls;
    CREATE INDEX calls_by_worker ON calls(worker, at);
    CREATE INDEX calls_by_period ON calls(period);
    CREATE INDEX batch_facts_by_statement ON batch_facts(statement_digest);
    """,
    # 5: commit, prove, execute. A committed batch is final once its STARK (a proof bundle in
    # the content store: memjit.rollup.proving) is recorded here, checked before it is.
    """
    CREATE TABLE batch_proofs (
        number     INTEGER PRIMARY KEY REFERENCES batches(number),
        bundle_cid TEXT NOT NULL,                -- header hash, statement and STARK (store)
        new_root   BLOB NOT NULL,                -- the Poseidon2 state root after the batch
        proven_at  REAL NOT NULL
    );
    """,
    # 6: header v3, whose state roots are the Poseidon2 tree's (memjit.rollup.zkstate): the
    # state follows from the facts, so the BLAKE3 state diffs go. Batches committed under
    # header v2 cannot be re-signed here: they are returned to pending (their facts and the SWT
    # they minted, exactly as a revert does) and the next `memjit batch commit` commits them
    # again under header v3.
    """
    UPDATE balances SET
        pending = pending + (SELECT coalesce(sum(f.reward), 0) FROM batch_facts f
                             JOIN workers w ON w.id = f.worker
                             WHERE f.batch IS NOT NULL AND w.owner = balances.owner),
        minted = minted - (SELECT coalesce(sum(f.reward), 0) FROM batch_facts f
                           JOIN workers w ON w.id = f.worker
                           WHERE f.batch IS NOT NULL AND w.owner = balances.owner);
    UPDATE batch_facts SET batch = NULL;
    DELETE FROM batch_proofs;
    DROP TABLE batch_diffs;
    DELETE FROM batches;
    """,
    # 7: the reward formula proven (issue 17): a scored call keeps what its weight was computed
    # from (the EMA rate applied, its usefulness before, the seconds since the worker's last
    # use), and its fact carries them with its period's total weight and emission (fact v2).
    # Facts recorded earlier stay version 1 (NULLs).
    """
    ALTER TABLE calls ADD COLUMN rate INTEGER NOT NULL DEFAULT 0 CHECK (rate >= 0);
    ALTER TABLE calls ADD COLUMN prior INTEGER NOT NULL DEFAULT 0 CHECK (prior >= 0);
    ALTER TABLE calls ADD COLUMN since INTEGER NOT NULL DEFAULT 0 CHECK (since >= 0);
    ALTER TABLE batch_facts ADD COLUMN rate INTEGER;
    ALTER TABLE batch_facts ADD COLUMN prior INTEGER;
    ALTER TABLE batch_facts ADD COLUMN since INTEGER;
    ALTER TABLE batch_facts ADD COLUMN weight INTEGER;
    ALTER TABLE batch_facts ADD COLUMN total_weight INTEGER;
    ALTER TABLE batch_facts ADD COLUMN emission INTEGER;
    """,
    # 8: stake proven (issue 17): a fact has a kind, a call (the claim digests, score and
    # reward as before) or a change of a worker's locked stake (bond, release, slash: its
    # amount, no claim; memjit.market.facts.record_stake_fact). The table is rebuilt because
    # a stake fact has no claim digests; existing facts are calls. Each worker's stake locked
    # before this migration (bonded plus unbonding) becomes a pending bond fact, so the state
    # tree's stake starts from the ledger's (its hash: fact v3, memjit.market.facts).
    """
    CREATE TABLE batch_facts_v8 (
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        hash             BLOB NOT NULL,          -- memjit.market.facts.Fact.hash
        worker           TEXT NOT NULL REFERENCES workers(id),
        vk_digest        BLOB,                   -- the call's claim (NULL: a stake fact)
        statement_digest BLOB,
        proof_digest     BLOB,
        score            INTEGER NOT NULL CHECK (score >= 0),
        reward           INTEGER NOT NULL CHECK (reward >= 0),  -- SWT minted when committed
        claim_cid        TEXT,                   -- the claim in the content store
        recorded_at      REAL NOT NULL,
        batch            INTEGER REFERENCES batches(number),    -- NULL while pending
        rate INTEGER, prior INTEGER, since INTEGER, weight INTEGER, total_weight INTEGER,
        emission INTEGER,
        kind             TEXT NOT NULL DEFAULT 'call'
                         CHECK (kind IN ('call', 'bond', 'release', 'slash')),
        amount           INTEGER NOT NULL DEFAULT 0 CHECK (amount >= 0),  -- stake moved
        CHECK ((kind = 'call') = (statement_digest IS NOT NULL))
    );
    INSERT INTO batch_facts_v8 (seq, hash, worker, vk_digest, statement_digest, proof_digest,
                                score, reward, claim_cid, recorded_at, batch, rate, prior,
                                since, weight, total_weight, emission)
        SELECT seq, hash, worker, vk_digest, statement_digest, proof_digest, score, reward,
               claim_cid, recorded_at, batch, rate, prior, since, weight, total_weight,
               emission FROM batch_facts;
    DROP TABLE batch_facts;
    ALTER TABLE batch_facts_v8 RENAME TO batch_facts;
    CREATE INDEX batch_facts_by_batch ON batch_facts(batch, seq);
    CREATE INDEX batch_facts_by_statement ON batch_facts(statement_digest);
    INSERT INTO batch_facts (hash, worker, score, reward, recorded_at, kind, amount)
        SELECT blake3(CAST('MJFACT' || char(3) || 'bond:' || id || ':'
                           || (stake + unbonding_amount) AS BLOB)),
               id, 0, 0, registered_at, 'bond', stake + unbonding_amount
        FROM workers WHERE stake + unbonding_amount > 0 ORDER BY registered_at, id
    """,
)


def check_amount(value: object, what: str, low: int = 0) -> int:
    """`value` if it is an integer amount in low..MAX_AMOUNT, else BadInput naming `what`."""
    if type(value) is not int or not low <= value <= MAX_AMOUNT:
        raise BadInput(f"{what} must be an integer in {low}..{MAX_AMOUNT} SWT units, "
                       f"got {value!r}")
    return value


WORKER_ID_BYTES = 32


def worker_key(worker_id: str) -> bytes:
    """The 32 bytes of a hex worker id (BadInput if it is not 64 hex digits)."""
    try:
        key = bytes.fromhex(worker_id)
    except ValueError:
        key = b""
    if len(key) != WORKER_ID_BYTES:
        raise BadInput(f"bad worker id {worker_id!r}: expected 64 hex digits")
    return key


@dataclass(frozen=True)
class Worker:
    """One registered worker, as the ledger holds it."""

    id: str
    owner: bytes
    cid: str
    task: str
    vk: bytes | None
    stake: int
    usefulness: int
    registered_at: float
    last_used_at: float | None
    unbonding_amount: int
    unbonding_at: float | None
    status: str


@dataclass(frozen=True)
class Validator:
    """An owner's validator bond: the stake behind its labels."""

    owner: bytes
    stake: int
    unbonding_amount: int
    unbonding_at: float | None
    bonded_at: float


@dataclass(frozen=True)
class Holdings:
    """What an owner has: free SWT, stake bonded and unbonding (workers and validator role), and
    rewards accruing in open periods (at most), pending (assigned, not yet minted) and minted."""

    free: int
    bonded: int
    unbonding: int
    accruing: int
    pending: int
    minted: int

    @property
    def earned(self) -> int:
        """Rewards assigned so far, minted or not."""
        return self.pending + self.minted


@dataclass(frozen=True)
class StakeEvent:
    """One change of a worker's stake: bond, unbond (request), release or slash."""

    seq: int
    worker: str
    kind: str
    amount: int
    at: float


_WORKER_COLUMNS = ", ".join(Worker.__dataclass_fields__)
_VALIDATOR_COLUMNS = ", ".join(Validator.__dataclass_fields__)


class Ledger:
    """The market state of one home directory; `clock` stamps every change (injectable).

    `readonly=True` opens it for reading only and writes nothing to the home: no directory,
    no database (a home without a ledger reads as an empty one, held in memory), SQLite's
    read-only mode, and in a home the process cannot write (a read-only mount, a shared copy)
    `immutable=1`, since there SQLite could not even create its WAL index. A read-only ledger
    must already have this memjit's schema: an older one is upgraded by any writing command.
    """

    def __init__(self, home: Path, clock: Callable[[], float] = time.time, *,
                 readonly: bool = False) -> None:
        self.path = Path(home) / LEDGER_FILE
        self.clock = clock
        try:
            fresh = not readonly or not self.path.exists()
            if readonly:
                self._db = self._open_readonly()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.create_function("blake3", 1, _blake3_or_null, deterministic=True)
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=10000")
            if fresh:
                self._migrate()  # a writable ledger, or the empty in-memory one of a new home
            elif self.schema_version() != len(MIGRATIONS):
                raise BadInput(f"ledger {self.path} has schema version {self.schema_version()}, "
                               f"this memjit reads version {len(MIGRATIONS)}; a command that "
                               "writes (e.g. `memjit batch commit`) upgrades an older one")
        except (OSError, sqlite3.DatabaseError) as exc:
            raise BadInput(f"cannot open ledger {self.path}: {exc}") from None

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection (see the class doc); in memory if there is no ledger yet."""
        if not self.path.exists():
            return sqlite3.connect(":memory:", isolation_level=None)
        if not self.path.is_file():
            raise BadInput(f"cannot open ledger {self.path}: not a file")
        immutable = "&immutable=1" if not os.access(self.path.parent, os.W_OK) else ""
        uri = f"{self.path.resolve().as_uri()}?mode=ro{immutable}"
        return sqlite3.connect(uri, uri=True, isolation_level=None)

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for reads; every write goes through :meth:`transaction`."""
        return self._db

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions and schema -------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic state change: commits on normal exit, rolls back on any exception."""
        if self._db.in_transaction:
            raise RuntimeError("ledger transactions do not nest")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def schema_version(self) -> int:
        """Number of MIGRATIONS applied to this database."""
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            if db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
                db.execute("INSERT INTO schema_version VALUES (0)")
        version = self.schema_version()
        if version > len(MIGRATIONS):
            raise BadInput(f"ledger {self.path} has schema version {version}, newer than this "
                           f"memjit ({len(MIGRATIONS)})")
        for number in range(version, len(MIGRATIONS)):
            with self.transaction() as db:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("UPDATE schema_version SET version = ?", (number + 1,))

    # --- writes (call inside a transaction) ---------------------------------------------------

    def add_owner(self, db: sqlite3.Connection, pubkey: bytes) -> None:
        """Record an owner (and its zero balance) if it is new."""
        db.execute("INSERT OR IGNORE INTO owners VALUES (?, ?)", (pubkey, self.clock()))
        db.execute("INSERT OR IGNORE INTO balances (owner) VALUES (?)", (pubkey,))

    def add_worker(self, db: sqlite3.Connection, worker: Worker) -> None:
        """Insert a new worker row (with its VK's digest); a taken CID, program or id is
        Rejected."""
        marks = ", ".join("?" * (len(Worker.__dataclass_fields__) + 1))
        digest = _blake3_or_null(worker.vk)  # verifier.claims.vk_digest, where there is a VK
        check_amount(worker.stake, "stake")
        try:
            db.execute(f"INSERT INTO workers ({_WORKER_COLUMNS}, vk_digest) VALUES ({marks})",
                       (*(getattr(worker, f) for f in Worker.__dataclass_fields__), digest))
        except sqlite3.IntegrityError as exc:
            raise Rejected(f"cannot register worker {worker.id}: {exc}") from None

    def update_worker(self, db: sqlite3.Connection, worker_id: str, **fields: object) -> None:
        """Set some columns of one existing worker."""
        bad = sorted(set(fields) - (set(Worker.__dataclass_fields__) - {"id"}))
        if bad:
            raise ValueError(f"cannot update worker columns {bad}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        cur = db.execute(f"UPDATE workers SET {assignments} WHERE id = ?",
                         (*fields.values(), worker_id))
        if cur.rowcount != 1:
            raise BadInput(f"no worker {worker_id}")

    def credit(self, db: sqlite3.Connection, owner: bytes, *, free: int = 0,
               pending: int = 0) -> None:
        """Add to (or, negative, take from) an owner's free balance and/or pending SWT; Rejected
        if either would leave 0..MAX_AMOUNT."""
        for delta, what in ((free, "credit"), (pending, "pending credit")):
            check_amount(abs(delta), what)
        row = db.execute("SELECT free, pending FROM balances WHERE owner = ?",
                         (owner,)).fetchone()
        if row is None:
            raise BadInput(f"no owner {owner.hex()[:16]}...")
        new_free, new_pending = row[0] + free, row[1] + pending
        if new_free < 0:
            raise Rejected(f"insufficient balance: {row[0]} SWT free, {-free} needed")
        if new_free > MAX_AMOUNT or not 0 <= new_pending <= MAX_AMOUNT:
            raise Rejected(f"balance of {owner.hex()[:16]}... would leave 0..{MAX_AMOUNT} SWT")
        db.execute("UPDATE balances SET free = ?, pending = ? WHERE owner = ?",
                   (new_free, new_pending, owner))

    # --- reads ---------------------------------------------------------------------------------

    def worker(self, worker_id: str) -> Worker:
        """The worker with this id (BadInput if there is none)."""
        row = self._db.execute(f"SELECT {_WORKER_COLUMNS} FROM workers WHERE id = ?",
                               (worker_id,)).fetchone()
        if row is None:
            raise BadInput(f"no worker {worker_id}")
        return Worker(*row)

    def worker_ids(self, prefix: str) -> list[str]:
        """The ids of the workers whose id starts with `prefix` (lowercase hex), sorted."""
        if not all(c in "0123456789abcdef" for c in prefix):
            return []
        rows = self._db.execute("SELECT id FROM workers WHERE substr(id, 1, ?) = ? ORDER BY id",
                                (len(prefix), prefix)).fetchall()
        return [row[0] for row in rows]

    def worker_by_cid(self, cid: str) -> Worker | None:
        """The worker registered for this CID, if any."""
        row = self._db.execute(f"SELECT {_WORKER_COLUMNS} FROM workers WHERE cid = ?",
                               (cid,)).fetchone()
        return None if row is None else Worker(*row)

    def worker_by_vk(self, digest: bytes) -> Worker | None:
        """The worker registered for the program with this VK digest, if any."""
        row = self._db.execute(f"SELECT {_WORKER_COLUMNS} FROM workers WHERE vk_digest = ?",
                               (digest,)).fetchone()
        return None if row is None else Worker(*row)

    def validator(self, owner: bytes) -> Validator | None:
        """An owner's validator bond, if it ever bonded one."""
        row = self._db.execute(f"SELECT {_VALIDATOR_COLUMNS} FROM validators WHERE owner = ?",
                               (owner,)).fetchone()
        return None if row is None else Validator(*row)

    def workers(self, task: str | None = None) -> list[Worker]:
        """All workers (of one task, if given), in registration order."""
        where, params = ("WHERE task = ?", (task,)) if task is not None else ("", ())
        rows = self._db.execute(f"SELECT {_WORKER_COLUMNS} FROM workers {where} "
                                "ORDER BY registered_at, id", params).fetchall()
        return [Worker(*row) for row in rows]

    def balance(self, owner: bytes) -> tuple[int, int]:
        """An owner's (free, pending) balance; (0, 0) for an unknown owner."""
        row = self._db.execute("SELECT free, pending FROM balances WHERE owner = ?",
                               (owner,)).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def holdings(self, owner: bytes) -> Holdings:
        """Everything an owner holds (all zero for an unknown owner)."""
        free, pending = self.balance(owner)
        row = self._db.execute("SELECT minted FROM balances WHERE owner = ?", (owner,)).fetchone()
        bonded, unbonding = self._db.execute(
            "SELECT coalesce(sum(stake), 0), coalesce(sum(unbonding_amount), 0) FROM ("
            "SELECT stake, unbonding_amount FROM workers WHERE owner = ? UNION ALL "
            "SELECT stake, unbonding_amount FROM validators WHERE owner = ?)",
            (owner, owner)).fetchone()
        accruing = self._db.execute(
            "SELECT coalesce(sum(c.weight), 0) FROM calls c JOIN workers w ON w.id = c.worker "
            "WHERE w.owner = ? AND c.period NOT IN (SELECT number FROM periods)",
            (owner,)).fetchone()[0]
        return Holdings(free, bonded, unbonding, accruing, pending,
                        0 if row is None else int(row[0]))

    def stake_events(self, worker_id: str) -> list[StakeEvent]:
        """The stake history of one worker, oldest first."""
        rows = self._db.execute("SELECT seq, worker, kind, amount, at FROM stake_events "
                                "WHERE worker = ? ORDER BY seq", (worker_id,)).fetchall()
        return [StakeEvent(*row) for row in rows]


def _blake3_or_null(data: bytes | None) -> bytes | None:
    """blake3 of a blob (a VK's digest; NULL stays NULL), also the connection's SQL blake3()."""
    return None if data is None else blake3.blake3(bytes(data)).digest()
