"""The market part of `memjit demo`, shortened to 8 requests on held-out images 15..22, where
the trained models disagree (image 18 defeats the 64-16-10 model, image 22, an 8, is a 5 to the
64-32-10 one; the 64-256-10 model answers all eight): the largest model leads the leaderboard,
ahead of the 64-32-10 one, the loop and the liar are slashed at every trial, the late liar's
registration prunes a weak worker, every request is scored by its staked label, and the day's
emission period closes and its rewards are minted. (The full `memjit demo` runs in
test_cli_bench_demo.)"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from memjit.demo import MARKET_WORKERS, STAKE, run_market
from memjit.market.ledger import Ledger
from memjit.runtime.store import cid_of
from memjit.workers import WORKERS_DIR


def test_market_demo_ranks_the_largest_model_first_and_slashes_the_cheats(tmp_path: Path
                                                                          ) -> None:
    console = Console(record=True, width=160)
    run_market(tmp_path, console, requests=8, late_at=5, first=15)
    text = console.export_text()
    assert "Leaderboard" in text and "liar registers: the slots are full" in text
    with Ledger(tmp_path) as ledger, ledger.transaction() as db:
        by_cid = {w.cid: w for w in ledger.workers("digits")}
        worker = {name: by_cid[cid_of((WORKERS_DIR / f"digits_{name}.wasm").read_bytes())]
                  for name in (*MARKET_WORKERS, "liar")}
        outcomes = {name: {row[0] for row in db.execute(
            "SELECT outcome FROM calls WHERE worker = ?", (w.id,))} for name, w in worker.items()}
        right = {w: (n, ok) for w, n, ok in db.execute(
            "SELECT worker, count(*), sum(score > 0) FROM calls GROUP BY worker")}
        pruned = [row[0] for row in db.execute("SELECT worker FROM prunings")]
        bases = {row[0] for row in db.execute("SELECT basis FROM requests")}
        (paid, emission), = db.execute("SELECT sum(paid), sum(emission) FROM periods")
        earned = dict(db.execute("SELECT worker, sum(reward) FROM calls GROUP BY worker"))
        minted = db.execute("SELECT sum(minted) FROM balances").fetchone()[0]
        paid_for_wrong = db.execute("SELECT count(*) FROM calls WHERE score = 0 AND reward > 0"
                                    ).fetchone()[0]
    ranked = sorted(worker, key=lambda name: -worker[name].usefulness)
    assert ranked[:2] == ["xl_dot", "large_dot"], ranked  # the larger model errs less
    assert worker["xl_dot"].usefulness > worker["large_dot"].usefulness > 0
    calls, ok = right[worker["xl_dot"].id]
    assert outcomes["xl_dot"] == {"scored"} and ok == calls >= 6  # every answer right
    assert (outcomes["loop"], outcomes["liar"]) == ({"fault"}, {"invalid"})
    for name in ("loop", "liar"):  # two trials each; a pruned worker's stake is unbonding
        assert worker[name].stake + worker[name].unbonding_amount == STAKE - 100 - 90
    assert len(pruned) == 1 and pruned[0] in {worker[n].id for n in ("random", "constant", "loop")}
    assert bases == {"label"}  # the requester's validator stake makes its labels count
    assert 0 < paid <= emission and minted == paid == sum(earned.values())
    assert earned[worker["xl_dot"].id] > 0 and paid_for_wrong == 0  # a wrong answer earns nothing
    assert "emission period" in text and f"{minted} SWT minted" in text
