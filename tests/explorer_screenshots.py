"""Screenshots of the explorer's pages for the README (docs/img/explorer-*.png).

    .venv/bin/python tests/explorer_screenshots.py [OUTPUT_DIR]

Builds a market in a temporary home over four simulated days (five digits workers, the shipped
liar among them; a requester with validator stake sends labelled requests; each day's emission
period closes into a committed batch), serves it as the browser tests do, and photographs each
page with Debian's chromium, "try it" after a drawn digit came back verified.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from test_explorer_browser import (CHROMIUM, CHROMIUM_ARGS, MARKET, PROOF_TIMEOUT_MS,
                                   Served)

from memjit.explorer.local import LocalSource
from memjit.market import validators
from memjit.market.epoch import advance
from memjit.market.formulas import DAY_S
from memjit.market.identity import load_or_create
from memjit.market.ledger import Ledger
from memjit.market.pool import prover_pool, request
from memjit.market.registry import register
from memjit.market.tasks import read_test_set
from memjit.rollup.batcher import commit_pending
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR, digits_liar

WORKERS = ("small", "random", "constant", "loop", "liar")
DAYS, PER_DAY = 4, 2
ROOT = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def build(home: Path, executor) -> dict[str, str]:
    """The market of the module doc, its days ending yesterday; worker name -> id."""
    images, labels = read_test_set()
    clock = Clock((time.time() // DAY_S - DAYS) * DAY_S + 3600)
    with Ledger(home, clock=clock) as ledger:
        store = Store(home)
        ids = {}
        for name in WORKERS:
            ids[name] = register(ledger, store, load_or_create(home, name),
                                 (WORKERS_DIR / f"digits_{name}.wasm").read_bytes(), 500).id
            clock.now += 60
        requester = load_or_create(home, "requester")
        validators.bond(ledger, requester, 500)
        for day in range(DAYS):
            for i in range(PER_DAY):
                k = day * PER_DAY + i
                clock.now += 3 * 3600
                request(ledger, store, requester, "digits", images[k].tobytes(),
                        label=int(labels[k]), top_k=4, config=MARKET, executor=executor,
                        operators=digits_liar.operators())
            clock.now = (clock.now // DAY_S + 1) * DAY_S + 600  # the next day: its period closes
            advance(ledger)
            commit_pending(ledger, store, home)
    return ids


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, prover_pool(2) as executor:
        home = Path(tmp)
        ids = build(home, executor)
        source = LocalSource(home, executor=executor, operators=digits_liar.operators())
        with Served(source) as served, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for name, url in [("leaderboard", "/"), ("worker", f"/workers/{ids['small']}"),
                              ("batches", "/batches"), ("batch", "/batches/1")]:
                page.goto(served.url + url)
                if name == "worker":
                    page.locator("td.verdict.pending").first.wait_for(state="detached",
                                                                      timeout=120_000)
                if name == "batch":
                    page.locator("#audit").click()
                    page.locator("#audit-result", has_text="audit").wait_for(timeout=120_000)
                page.screenshot(path=str(out / f"explorer-{name}.png"), full_page=True)
            page.goto(served.url + "/try")
            page.locator("#sample").click()
            page.locator("#status", has_text="sample").wait_for()
            page.locator("#send").click()
            page.locator("#result", has_text="Answer").wait_for(timeout=PROOF_TIMEOUT_MS)
            page.locator("#verdicts td.verdict.pending").first.wait_for(state="detached",
                                                                       timeout=120_000)
            page.screenshot(path=str(out / "explorer-try.png"), full_page=True)
            browser.close()
        source.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img")
