"""The market part of `memjit demo`, shortened to 8 requests: the trained models lead the
leaderboard, the loop and the liar are slashed at every trial, the late liar's registration
prunes a weak worker, every request is scored by its staked label, and the day's emission
period closes and its rewards are minted. (The full `memjit demo` runs in test_cli_bench_demo.)"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from memjit.demo import STAKE, run_market
from memjit.market.ledger import Ledger
from memjit.runtime.store import cid_of
from memjit.workers import WORKERS_DIR


def test_market_demo_ranks_the_trained_models_and_slashes_the_cheats(tmp_path: Path) -> None:
    console = Console(record=True, width=160)
    run_market(tmp_path, console, requests=8, late_at=5)
    text = console.export_text()
    assert "Leaderboard" in text and "liar registers: the slots are full" in text
    with Ledger(tmp_path) as ledger, ledger.transaction() as db:
        by_cid = {w.cid: w for w in ledger.workers("digits")}
        worker = {name: by_cid[cid_of((WORKERS_DIR / f"digits_{name}.wasm").read_bytes())]
                  for name in ("small", "large", "random", "constant", "loop", "liar")}
        outcomes = {name: {row[0] for row in db.execute(
            "SELECT outcome FROM calls WHERE worker = ?", (w.id,))} for name, w in worker.items()}
        pruned = [row[0] for row in db.execute("SELECT worker FROM prunings")]
        bases = {row[0] for row in db.execute("SELECT basis FROM requests")}
        (paid, emission), = db.execute("SELECT sum(paid), sum(emission) FROM periods")
        earned = dict(db.execute("SELECT worker, sum(reward) FROM calls GROUP BY worker"))
        minted = db.execute("SELECT sum(minted) FROM balances").fetchone()[0]
        paid_for_wrong = db.execute("SELECT count(*) FROM calls WHERE score = 0 AND reward > 0"
                                    ).fetchone()[0]
    ranked = sorted(worker, key=lambda name: -worker[name].usefulness)
    assert set(ranked[:2]) == {"small", "large"} and worker["small"].usefulness > 0
    assert (outcomes["loop"], outcomes["liar"]) == ({"fault"}, {"invalid"})
    for name in ("loop", "liar"):  # two trials each; a pruned worker's stake is unbonding
        assert worker[name].stake + worker[name].unbonding_amount == STAKE - 100 - 90
    assert len(pruned) == 1 and pruned[0] in {worker[n].id for n in ("random", "constant", "loop")}
    assert bases == {"label"}  # the requester's validator stake makes its labels count
    assert 0 < paid <= emission and minted == paid == sum(earned.values())
    assert earned[worker["small"].id] > 0 and paid_for_wrong == 0  # a wrong answer earns nothing
    assert "emission period" in text and f"{minted} SWT minted" in text
