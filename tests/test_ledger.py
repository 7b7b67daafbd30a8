"""The ledger: schema migrations (an older ledger upgraded in place), amounts range-checked
before SQLite sees them, atomic transactions, and crash consistency under SIGKILL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memjit.errors import BadInput, Rejected
from memjit.market.formulas import MAX_AMOUNT
from memjit.market.facts import stake_fact_hash
from memjit.market.ledger import LEDGER_FILE, MIGRATIONS, Ledger, Worker, check_amount
from verifier.claims import vk_digest

OWNER = b"\x01" * 48


def _worker(wid: str = "w1", cid: str = "cid-1", stake: int = 500) -> Worker:
    return Worker(id=wid, owner=OWNER, cid=cid, task="digits", vk=None, stake=stake,
                  usefulness=0, registered_at=1.0, last_used_at=None, unbonding_amount=0,
                  unbonding_at=None, status="active")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    with Ledger(tmp_path) as led:
        with led.transaction() as db:
            led.add_owner(db, OWNER)
            led.add_worker(db, _worker())
        yield led


def test_schema_is_migrated_once_and_in_wal_mode(tmp_path: Path) -> None:
    with Ledger(tmp_path) as led:
        assert led.schema_version() == len(MIGRATIONS)
    with Ledger(tmp_path) as led:  # reopening applies nothing twice
        assert led.schema_version() == len(MIGRATIONS)
    db = sqlite3.connect(tmp_path / LEDGER_FILE)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1


def test_a_version_3_ledger_is_upgraded_and_a_copy_left_inactive(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / LEDGER_FILE)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (3)")
    for migration in MIGRATIONS[:3]:
        db.executescript(migration)
    db.execute("INSERT INTO owners VALUES (?, 0)", (OWNER,))
    for wid, cid, at in (("first", "cid-a", 1.0), ("copy", "cid-b", 2.0), ("alone", "cid-c", 3.0)):
        db.execute("INSERT INTO workers (id, owner, cid, task, vk, stake, registered_at, status) "
                   "VALUES (?, ?, ?, 'digits', ?, 100, ?, 'active')",
                   (wid, OWNER, cid, b"vk-c" if wid == "alone" else b"vk-ab", at))
    db.execute("INSERT INTO requests (requester, task, input, at) VALUES (?, 'digits', x'00', 0)",
               (OWNER,))
    db.execute("INSERT INTO calls VALUES (1, 'first', 'scored', 4, 1000000, 10, 7, 0, NULL, '', 0)")
    db.commit()
    db.close()
    with Ledger(tmp_path) as led:
        assert led.schema_version() == len(MIGRATIONS) == 8
        assert [(w.id, w.status) for w in led.workers()] == [
            ("first", "active"), ("copy", "inactive"), ("alone", "active")]
        assert led.worker_by_vk(vk_digest(b"vk-ab")).id == "first"
        assert led.worker_by_vk(vk_digest(b"vk-c")).id == "alone"
        row = led.db.execute("SELECT outcome, score, fee, reward, weight, period, statement "
                             "FROM calls").fetchone()
        assert row == ("scored", 1_000_000, 10, 7, 0, None, None)  # kept; no period to close
        assert led.holdings(OWNER).bonded == 300


def test_a_version_5_ledger_returns_its_header_v2_batches_to_pending(tmp_path: Path) -> None:
    """Header v3 roots are Poseidon2's: batches signed under v2 cannot be kept, so their facts
    and the SWT they minted go back to pending, to be committed again."""
    db = sqlite3.connect(tmp_path / LEDGER_FILE)  # the schema as version 5 left it
    db.create_function("blake3", 1, lambda data: None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (5)")
    for migration in MIGRATIONS[:5]:
        db.executescript(migration)
    db.execute("INSERT INTO owners VALUES (?, 0)", (OWNER,))
    db.execute("INSERT INTO balances (owner) VALUES (?)", (OWNER,))
    db.execute("INSERT INTO workers (id, owner, cid, task, stake, registered_at, status) "
               "VALUES ('w1', ?, 'cid-1', 'digits', 500, 1.0, 'active')", (OWNER,))
    db.execute("INSERT INTO batches VALUES (1, x'01', x'02', 'cid', 0, 0)")
    db.execute("INSERT INTO batch_proofs VALUES (1, 'cid', x'03', 0)")
    db.execute("INSERT INTO batch_diffs VALUES (1, 'w1', NULL, x'04')")
    for n, (reward, batch) in enumerate(((30, 1), (12, 1), (5, None))):
        db.execute("INSERT INTO batch_facts (hash, worker, vk_digest, statement_digest, "
                   "proof_digest, score, reward, recorded_at, batch) VALUES (?, 'w1', x'00', "
                   "?, x'00', 1, ?, 0, ?)", (bytes([n]), bytes([n]), reward, batch))
    db.execute("UPDATE balances SET pending = 5, minted = 42")
    db.commit()
    db.close()
    with Ledger(tmp_path) as led:
        assert led.schema_version() == len(MIGRATIONS) == 8
        assert led.db.execute("SELECT count(*) FROM batches").fetchone()[0] == 0
        assert led.db.execute("SELECT count(*) FROM batch_proofs").fetchone()[0] == 0
        assert led.db.execute("SELECT count(*) FROM batch_facts WHERE batch IS NULL"
                              ).fetchone()[0] == 4
        # migration 8: the facts are calls, and the worker's locked stake a pending bond fact
        rows = led.db.execute("SELECT kind, amount, hash, statement_digest FROM batch_facts "
                              "ORDER BY seq").fetchall()
        assert [r[:2] for r in rows] == [("call", 0)] * 3 + [("bond", 500)]
        assert rows[3][2] == stake_fact_hash("bond", "w1", 500) and rows[3][3] is None
        assert led.db.execute("SELECT pending, minted FROM balances").fetchone() == (47, 0)
        assert led.db.execute("SELECT name FROM sqlite_master WHERE name = 'batch_diffs'"
                              ).fetchone() is None


def test_amounts_are_range_checked_before_sqlite_sees_them(ledger: Ledger) -> None:
    assert check_amount(MAX_AMOUNT, "stake") == MAX_AMOUNT == 2**53 - 1
    for bad in (MAX_AMOUNT + 1, 2**63, -1, 1.0, True, "5"):
        with pytest.raises(BadInput, match=f"stake must be an integer in 0..{MAX_AMOUNT}"):
            check_amount(bad, "stake")
    with pytest.raises(BadInput, match="stake must be"), ledger.transaction() as db:
        ledger.add_worker(db, _worker("w2", "cid-2", stake=2**63))  # no OverflowError, no crash
    with ledger.transaction() as db:
        ledger.credit(db, OWNER, free=MAX_AMOUNT)
    for change, words in (({"free": 1}, "would leave"), ({"pending": -1}, "would leave"),
                          ({"free": -MAX_AMOUNT, "pending": -1}, "would leave"),
                          ({"free": 2**63}, "credit must be an integer")):
        with pytest.raises((Rejected, BadInput), match=words), ledger.transaction() as db:
            ledger.credit(db, OWNER, **change)
    with ledger.transaction() as db:
        ledger.credit(db, OWNER, free=-MAX_AMOUNT)
    with pytest.raises(Rejected, match="insufficient balance: 0 SWT free, 1 needed"), \
            ledger.transaction() as db:
        ledger.credit(db, OWNER, free=-1)
    assert ledger.balance(OWNER) == (0, 0)


def test_exception_mid_transaction_changes_nothing(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError):
        with ledger.transaction() as db:
            ledger.update_worker(db, "w1", stake=400)
            ledger.credit(db, OWNER, free=100)
            raise RuntimeError("crash between statements")
    assert ledger.worker("w1").stake == 500
    assert ledger.balance(OWNER) == (0, 0)


def test_refused_insert_rolls_back_the_whole_change(ledger: Ledger) -> None:
    with pytest.raises(Rejected, match="cannot register"):
        with ledger.transaction() as db:
            ledger.credit(db, OWNER, pending=7)
            ledger.add_worker(db, _worker("w2", cid="cid-1"))  # CID already taken
    assert ledger.balance(OWNER) == (0, 0)
    assert [w.id for w in ledger.workers()] == ["w1"]


_CHILD = textwrap.dedent("""
    import sys, time
    from memjit.market.ledger import Ledger
    led = Ledger(sys.argv[1])
    owner = b"\\x01" * 48
    if sys.argv[2] == "commit":
        with led.transaction() as db:
            led.update_worker(db, "w1", stake=400)
            led.credit(db, owner, free=100)
        print("committed", flush=True)
    else:
        with led.transaction() as db:
            led.update_worker(db, "w1", stake=400)
            print("half-way", flush=True)
            time.sleep(60)  # killed here, between the two statements of one change
            led.credit(db, owner, free=100)
    time.sleep(60)
""")


@pytest.mark.parametrize("mode", ["mid", "commit"])
def test_sigkill_leaves_the_ledger_consistent(ledger: Ledger, tmp_path: Path, mode: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), mode],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() in ("half-way", "committed")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    ledger.close()
    with Ledger(tmp_path) as reopened:
        stake, (free, _) = reopened.worker("w1").stake, reopened.balance(OWNER)
        assert stake + free == 500  # never a half-applied transfer
        assert (stake, free) == ((500, 0) if mode == "mid" else (400, 100))
    check = sqlite3.connect(tmp_path / LEDGER_FILE).execute("PRAGMA integrity_check")
    assert check.fetchone()[0] == "ok"


def test_update_refuses_unknown_columns_and_workers(ledger: Ledger) -> None:
    with ledger.transaction() as db:
        with pytest.raises(ValueError):
            ledger.update_worker(db, "w1", id="other")
    with pytest.raises(Exception, match="no worker"):
        ledger.worker("nope")
