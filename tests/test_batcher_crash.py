"""Crash safety of a batch commit: a child process is SIGKILLed at every step of a commit; the
reopened ledger holds either the old or the new state root, never a mix, and every fact is
either pending or included exactly once with its reward minted exactly once."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memjit.rollup.committee import add_local
from memjit.rollup.batcher import COMMIT_STEPS, Batcher
from memjit.rollup.header import root_bytes
from memjit.market.facts import record_fact
from memjit.market.ledger import LEDGER_FILE, Ledger, Worker
from memjit.runtime.store import Store

OWNERS = [bytes([i]) * 48 for i in (1, 2)]
WORKERS = [(f"{i:02x}" * 32, OWNERS[i % 2]) for i in range(1, 4)]
REWARDS = [10, 20, 30, 40, 50]

_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import memjit.rollup.batcher as batcher
    from memjit.market.ledger import Ledger
    from memjit.runtime.store import Store

    home, step = Path(sys.argv[1]), sys.argv[2]

    def crash(name):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    batcher.CRASH_HOOK = crash
    with Ledger(home) as ledger:
        batcher.Batcher(ledger, Store(home), home).commit_pending(force=True)
    print("not killed", flush=True)
""")


def _record(ledger: Ledger, i: int) -> None:
    wid, owner = WORKERS[i % len(WORKERS)]
    with ledger.transaction() as db:
        record_fact(db, worker_id=wid, vk_digest=bytes([i]) * 32,
                    statement_digest=bytes([i]) * 32,  # a claim per fact: facts are unique
                    proof_digest=bytes(32), score=1000 * i, reward=REWARDS[i], claim_cid=None,
                    now=ledger.clock())
        ledger.credit(db, owner, pending=REWARDS[i])


def _state(home: Path) -> dict:
    """Everything a commit changes, read back after reopening (also checks the tree's root)."""
    with Ledger(home) as ledger:
        batcher = Batcher(ledger, Store(home), home)
        db = ledger.db
        last = batcher.last()
        facts = db.execute("SELECT seq, batch, reward FROM batch_facts ORDER BY seq").fetchall()
        return {"number": last.header.number, "root": root_bytes(batcher.state().root),
                "header_root": last.header.state_root_after,
                "facts": [(seq, batch) for seq, batch, _ in facts],
                "included_rewards": sum(r for _, b, r in facts if b is not None),
                "minted": db.execute("SELECT sum(minted) FROM balances").fetchone()[0],
                "pending": db.execute("SELECT sum(pending) FROM balances").fetchone()[0],
                "counted": {n: c for n, c in db.execute(
                    "SELECT batch, count(*) FROM batch_facts WHERE batch IS NOT NULL "
                    "GROUP BY batch")},
                "fact_counts": {r.header.number: r.header.fact_count for r in batcher.records()},
                "integrity": sqlite3.connect(home / LEDGER_FILE).execute(
                    "PRAGMA integrity_check").fetchone()[0]}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Batch 1 committed (two facts); three more facts pending and a stake changed."""
    home = tmp_path_factory.mktemp("crash-template")
    with Ledger(home) as ledger:
        with ledger.transaction() as db:
            for owner in OWNERS:
                ledger.add_owner(db, owner)
            for n, (wid, owner) in enumerate(WORKERS):
                ledger.add_worker(db, Worker(wid, owner, f"cid-{n}", "digits", None, 500, 0,
                                             1.0, None, 0, None, "active"))
        add_local(ledger, home, "node")
        for i in range(2):
            _record(ledger, i)
        Batcher(ledger, Store(home), home).commit_pending(force=True)
        for i in range(2, 5):
            _record(ledger, i)
        with ledger.transaction() as db:
            ledger.update_worker(db, WORKERS[0][0], stake=450)
    return home


def test_sigkill_at_every_commit_step(template: Path, tmp_path: Path) -> None:
    old = _state(template)
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    with Ledger(reference) as ledger:
        Batcher(ledger, Store(reference), reference).commit_pending(force=True)
    new = _state(reference)
    assert old["number"] == 1 and new["number"] == 2 and old["root"] != new["root"]
    children = {}
    for step in COMMIT_STEPS:  # all children at once: each kills itself at its own step
        home = tmp_path / step
        shutil.copytree(template, home)
        children[step] = subprocess.Popen([sys.executable, "-c", _CHILD, str(home), step],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True)
    for step, child in children.items():
        out, err = child.communicate(timeout=300)
        assert child.returncode == -signal.SIGKILL, (step, out, err)
        home = tmp_path / step
        state = _state(home)
        expected = new if step == "committed" else old
        assert state["integrity"] == "ok"
        assert state["root"] == state["header_root"] == expected["root"], step
        assert state["facts"] == expected["facts"], step  # none lost, none in two batches
        assert state["counted"] == state["fact_counts"], step
        assert state["minted"] == state["included_rewards"] == expected["minted"], step
        assert state["minted"] + state["pending"] == sum(REWARDS), step
        # the node recovers by committing again: every fact included once, minted once
        with Ledger(home) as ledger:
            Batcher(ledger, Store(home), home).commit_pending(force=True)
        after = _state(home)
        assert after["root"] == new["root"] and after["minted"] == sum(REWARDS), step
        assert after["pending"] == 0 and all(batch for _, batch in after["facts"]), step
