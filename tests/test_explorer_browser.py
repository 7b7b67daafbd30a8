"""The explorer in a real browser (Playwright driving Debian's chromium), served by uvicorn on a
free loopback port, after a market round with real proofs: the leaderboard shows the workers in
the right order and sorts by a clicked column; a worker's page lists its calls with each claim
re-verified; the batches page shows the committed roots and a batch passes its audit; a digit
drawn on the 8x8 grid comes back as a verified answer, every proof's verdict shown.

Chromium missing is a failure, never a skip: `make test` installs it."""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest
import uvicorn

from memjit.explorer.local import LocalSource
from memjit.explorer.web import app
from memjit.market import validators
from memjit.market.epoch import advance
from memjit.market.identity import load_or_create
from memjit.market.ledger import Ledger
from memjit.market.oracle import OracleConfig
from memjit.market.pool import MarketConfig, request
from memjit.market.registry import register
from memjit.market.tasks import read_test_set
from memjit.rollup.batcher import commit_pending
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WORKERS = ("constant", "small", "loop")  # registration order; cheap to prove (or a fault)
MARKET = MarketConfig(oracle=OracleConfig(full_label_stake=500))  # labels at the full rate
PROOF_TIMEOUT_MS = 600_000  # a bound, not a target: proofs are slow on a busy 2-core machine


def build_market(home: Path, executor, rounds: int = 1) -> dict[str, str]:
    """A home with the constant, small and loop digits workers (owners named after them), a
    requester with validator stake sending `rounds` labelled requests from the held-out set to
    all three, and the emission period closed into committed batch 1; worker name -> id."""
    images, labels = read_test_set()
    with Ledger(home) as ledger:
        store = Store(home)
        ids = {name: register(ledger, store, load_or_create(home, name),
                              (WORKERS_DIR / f"digits_{name}.wasm").read_bytes(), 500).id
               for name in WORKERS}
        requester = load_or_create(home, "requester")
        validators.bond(ledger, requester, 500)
        for i in range(rounds):
            request(ledger, store, requester, "digits", images[i].tobytes(),
                    label=int(labels[i]), top_k=len(WORKERS), config=MARKET,
                    executor=executor)
        advance(ledger, close_now=True)
        commit_pending(ledger, store, home)
    return ids


class Served:
    """The explorer app served by uvicorn in a thread, on a socket bound to a free port."""

    def __init__(self, source: LocalSource) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app(source), log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> "Served":
        self.thread.start()
        for _ in range(200):  # up to 20 s
            if self.server.started:
                return self
            self.thread.join(0.1)
        raise RuntimeError("the explorer did not start within 20 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory, executor) -> dict:
    home = tmp_path_factory.mktemp("explorer-market")
    ids = build_market(home, executor)
    source = LocalSource(home, executor=executor)
    with Served(source) as served:
        yield {"home": home, "ids": ids, "url": served.url, "source": source}
    source.close()


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.fail(f"Debian's chromium is missing ({CHROMIUM}): the browser tests need it; "
                    "`make test` installs it (apt-get install -y chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], errors  # no script error on any page


def test_the_leaderboard_ranks_the_workers_and_sorts(market, page) -> None:
    ids = market["ids"]
    page.goto(market["url"] + "/")
    rows = page.locator("#leaderboard-digits tbody tr")
    order = [rows.nth(i).get_attribute("data-worker") for i in range(rows.count())]
    assert order == [ids["small"], ids["constant"], ids["loop"]]  # useful, then by stake
    small = page.locator(f'tr[data-worker="{ids["small"]}"]')
    assert small.locator("td.usefulness").inner_text() != "0.000"
    assert "small" in small.inner_text() and "active" in small.inner_text()
    page.locator("#leaderboard-digits th", has_text="usefulness").click()  # ascending
    assert rows.last.get_attribute("data-worker") == ids["small"]
    page.locator("#leaderboard-digits th", has_text="usefulness").click()  # descending
    assert rows.first.get_attribute("data-worker") == ids["small"]
    assert page.locator("svg.plot polyline").count() == len(WORKERS)


def test_a_worker_page_lists_its_calls_with_verified_claims(market, page) -> None:
    page.goto(market["url"] + "/")
    page.locator(f'a[href="/workers/{market["ids"]["small"]}"]').click()
    assert market["ids"]["small"] in page.locator("#worker-fields").inner_text()
    calls = page.locator("#calls tbody tr")
    assert calls.count() == 1 and "scored" in calls.first.inner_text()
    verdicts = page.locator("#calls td.verdict")
    verdicts.last.locator("xpath=self::*[contains(., 'bits')]").wait_for(timeout=60_000)
    assert all(v.startswith("valid, ") for v in verdicts.all_inner_texts())
    page.goto(market["url"] + f"/workers/{market['ids']['loop']}")
    assert "fault" in page.locator("#calls").inner_text()
    assert "OutOfFuel" in page.locator("#calls").inner_text()


def test_the_batches_page_shows_the_committed_roots(market, page) -> None:
    [batch] = market["source"].batches()
    page.goto(market["url"] + "/")
    page.get_by_role("link", name="Batches").click()
    row = page.locator('#batches tr[data-batch="1"]')
    assert row.locator("code.root").inner_text() == batch.state_root_after[:16]
    assert batch.state_root_before[:16] in row.inner_text()
    assert page.locator("svg.plot rect[fill]").count() >= 1  # minted per batch
    row.get_by_role("link", name="1").click()
    fields = page.locator("#batch-fields").inner_text()
    assert batch.state_root_after in fields and batch.facts_root in fields
    page.locator("#audit").click()
    page.locator("#audit-result", has_text="audit").wait_for(timeout=120_000)
    assert "audit passed" in page.locator("#audit-result").inner_text()


def test_a_drawn_digit_comes_back_verified(market, page) -> None:
    page.goto(market["url"] + "/try")
    pad = page.locator("#pad").bounding_box()
    cell = pad["width"] / 8
    page.mouse.move(pad["x"] + 4 * cell, pad["y"] + 1.5 * cell)  # a "1": a vertical stroke
    page.mouse.down()
    for row in range(2, 8):
        page.mouse.move(pad["x"] + 4 * cell, pad["y"] + (row + 0.5) * cell, steps=3)
    page.mouse.up()
    painted = page.evaluate("Array.from(document.getElementById('pad').getContext('2d')"
                            ".getImageData(4 * 32 + 16, 4 * 32 + 16, 1, 1).data)")
    assert painted[0] < 128  # the stroke is drawn dark
    page.locator("#send").click()
    page.locator("#result", has_text="Answer").wait_for(timeout=PROOF_TIMEOUT_MS)
    assert "(verified" in page.locator("#result").inner_text()
    table = page.locator("#verdicts")
    page.locator("#verdicts td.verdict.ok").first.wait_for(timeout=60_000)
    assert table.locator("tbody tr").count() == len(WORKERS)
    assert page.locator("#arrivals li").count() == len(WORKERS)  # each answer as it came
    text = table.inner_text()
    assert "valid, " in text and "fault" in text  # the loop is slashed, the others verify
