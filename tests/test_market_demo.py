"""The market part of `memjit demo`, shortened to 8 requests: the trained models lead the
leaderboard, the loop and the liar are slashed at every trial, and the late liar's
registration prunes a weak worker. (The full `memjit demo` runs in test_cli_bench_demo.)"""

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
    ranked = sorted(worker, key=lambda name: -worker[name].usefulness)
    assert set(ranked[:2]) == {"small", "large"} and worker["small"].usefulness > 0
    assert (outcomes["loop"], outcomes["liar"]) == ({"fault"}, {"invalid"})
    assert worker["loop"].stake == worker["liar"].stake == STAKE - 100 - 90  # two trials each
    assert len(pruned) == 1 and pruned[0] in {worker[n].id for n in ("random", "constant", "loop")}
