"""The explorer's JSON API and pages over a local --home, in-process (TestClient): readable
units (usefulness 0.834, not 834000; owners by name), the leaderboard's order, a worker's calls
and its claim re-verified (a tampered claim is invalid), committed batches and their audit,
and bad input: unknown worker, task, batch or claim (404), a malformed CID (400), an upload
larger than the task's input (413) or of the wrong size (400), changing nothing. `memjit
explorer` serves a home, logs each request and stops cleanly on SIGTERM or SIGINT. Any path
parameter (hypothesis) is an answer, never a server error. Over another source (a node's), a
request's answers stream as they arrive and the requests in flight are bounded (429). The pages in a
real browser, with real proofs: tests/test_explorer_browser.py."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import wasmtime
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import Clock, add_call, cli, ledger_dump

from memjit.explorer.local import LocalSource
from memjit.explorer.source import (Answer, CallOutcome, ExplorerSource, NetworkInfo, NotFound,
                                    Peer, RequestOutcome, TaskInfo)
from memjit.explorer.web import MAX_REQUESTS_IN_FLIGHT, app, router
from memjit.market.epoch import advance
from memjit.market.facts import claim_digests
from memjit.market.identity import load_or_create
from memjit.market.ledger import Ledger, Worker
from memjit.market import formulas
from memjit.market.rewards import RewardConfig, open_period
from memjit.rollup.batcher import commit_pending
from memjit.runtime.claims import prove_claim, vk_of
from memjit.runtime.store import Store

NOW = 1_780_000_000.0  # 2026-05-28 UTC
EARNED = formulas.weight(formulas.ema(0, 900_000, 200_000), 1000, 540, 200_000, 200_000, 900_000)
"""good's call: weighed as the market does (the batch proof checks it), below the cap: paid."""
SQUARE = wasmtime.wat2wasm('(module (func (export "sq") (param i32) (result i32) '
                           '(i32.mul (local.get 0) (local.get 0))))')


def _worker(ledger: Ledger, db, name: str, owner: bytes, vk: bytes, usefulness: int,
            stake: int, status: str = "active") -> str:
    wid = bytes([len(ledger.workers()) + 1]).hex() * 32
    ledger.add_worker(db, Worker(id=wid, owner=owner, cid=f"cid-{name}", task="digits", vk=vk,
                                 stake=stake, usefulness=usefulness, registered_at=NOW - 600,
                                 last_used_at=None, unbonding_amount=0, unbonding_at=None,
                                 status=status))
    return wid


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home with three digits workers of named owners (alice: 'good', the square program's
    VK; bob: 'weak' and the inactive 'idle'), good's scored call with its real claim stored,
    a call of weak with a tampered claim, and one committed batch minting good's reward."""
    home = tmp_path_factory.mktemp("explorer-home")
    alice, bob = (load_or_create(home, n).public_key for n in ("alice", "bob"))
    claim = prove_claim(SQUARE, "sq", [12]).encode()
    store = Store(home)
    good_claim = store.put(claim)
    bad_claim = store.put(claim[:-1] + bytes([claim[-1] ^ 1]))
    clock = Clock(NOW)
    with Ledger(home, clock=clock) as ledger:
        with ledger.transaction() as db:
            for owner in (alice, bob):
                ledger.add_owner(db, owner)
            good = _worker(ledger, db, "good", alice, vk_of(SQUARE), 834_000, 700)
            weak = _worker(ledger, db, "weak", bob, b"another program", 120_000, 900)
            idle = _worker(ledger, db, "idle", bob, b"a third program", 0, 100, "inactive")
            period = open_period(db, NOW, RewardConfig())
            _, statement, proof = claim_digests(claim)
            add_call(db, bob, good, at=NOW - 60, score=900_000, fee=10, weight=EARNED,
                     period=period, claim=good_claim, statement=statement, proof=proof,
                     rate=200_000, prior=0, since=540)
            add_call(db, alice, weak, at=NOW - 30, outcome="invalid", score=0, slashed=50,
                     claim=bad_claim, reason="invalid claim: the proof does not verify")
        advance(ledger, close_now=True)
        commit_pending(ledger, store, home)
    return {"home": home, "good": good, "weak": weak, "idle": idle, "good_claim": good_claim,
            "bad_claim": bad_claim}


@pytest.fixture(scope="module")
def client(market: dict) -> TestClient:
    source = LocalSource(market["home"])
    assert isinstance(source, ExplorerSource)
    with TestClient(app(source)) as c:
        yield c
    source.close()


def test_the_leaderboard_in_readable_units_most_useful_first(client, market) -> None:
    rows = client.get("/api/explorer/tasks/digits/leaderboard").json()
    assert [r["id"] for r in rows] == [market["good"], market["weak"], market["idle"]]
    good = rows[0]
    assert (good["owner"], good["usefulness"], good["stake"], good["calls"], good["fees"],
            good["earned"], good["status"]) == ("alice", 0.834, 700, 1, 10, EARNED, "active")
    assert [r["owner"] for r in rows[1:]] == ["bob", "bob"]
    page = client.get("/").text
    assert "0.834" in page and "834000" not in page and "alice" in page
    assert "<svg" in page and "usefulness of the digits workers" in page
    assert client.get("/api/explorer/tasks").json()[0] | {"workers": 3, "active": 2} == \
        client.get("/api/explorer/tasks").json()[0]


def test_a_worker_its_calls_and_its_claims_reverified(client, market) -> None:
    worker = client.get(f"/api/explorer/workers/{market['good']}").json()
    assert worker["row"]["owner"] == "alice" and len(worker["vk_digest"]) == 64
    [call] = client.get(f"/api/explorer/workers/{market['good']}/calls").json()
    assert (call["outcome"], call["score"], call["fee"], call["reward"], call["claim"]) == (
        "scored", 0.9, 10, EARNED, market["good_claim"])
    verdict = client.get(f"/api/explorer/claims/{market['good_claim']}").json()
    assert (verdict["valid"], verdict["worker"], verdict["export"], verdict["result"]) == (
        True, market["good"], "sq", 144)
    assert verdict["security_bits"] >= 80
    tampered = client.get(f"/api/explorer/claims/{market['bad_claim']}").json()
    assert not tampered["valid"] and tampered["security_bits"] == 0 and tampered["reason"]
    page = client.get(f"/workers/{market['good']}").text
    assert market["good_claim"] in page and "2026-05-28" in page and "0.900" in page


def test_batches_their_roots_and_audit(client, market) -> None:
    [batch] = client.get("/api/explorer/batches").json()
    assert (batch["number"], batch["fact_count"], batch["minted"], batch["status"]) == (
        1, 1, EARNED, "final")  # committed in 2026 with a one-hour challenge window
    assert "node" in batch["committee"]
    network = client.get("/api/explorer/network").json()
    assert network == {"role": "local", "height": 1, "state_root": batch["state_root_after"],
                       "pending_facts": 0, "peers": []}
    detail = client.get("/api/explorer/batches/1").json()
    assert [(f["worker"], f["owner"], f["reward"]) for f in detail["facts"]] == [
        (market["good"], "alice", EARNED)]
    audit = client.get("/api/explorer/batches/1/audit").json()
    assert (audit["ok"], audit["facts"], audit["problems"]) == (True, 1, [])
    page = client.get("/batches").text
    assert batch["state_root_after"][:16] in page and "SWT minted per batch" in page
    assert batch["state_root_after"] in client.get("/batches/1").text
    assert "no peers" in client.get("/network").text


@pytest.mark.parametrize("url", [
    "/api/explorer/workers/" + "ab" * 32, "/api/explorer/workers/nothex",
    "/api/explorer/workers/" + "ab" * 32 + "/calls", "/api/explorer/tasks/chess/leaderboard",
    "/api/explorer/batches/2", "/api/explorer/batches/2/audit",
    "/api/explorer/claims/bafkr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "/workers/" + "ab" * 32, "/batches/7", "/tasks/chess", "/explorer/static/nothing.css",
])
def test_unknown_things_are_404(client, url) -> None:
    response = client.get(url)
    assert response.status_code == 404, response.text


def test_bad_input_is_refused_and_changes_nothing(client, market) -> None:
    home = market["home"]
    before = ledger_dump(home), sorted(p.name for p in (home / "keys").iterdir())
    assert client.get("/api/explorer/claims/not-a-cid").status_code == 400
    assert client.get("/api/explorer/batches/x").status_code == 422
    url = "/api/explorer/tasks/digits/request"
    big = client.post(url, content=bytes(65))
    assert big.status_code == 413 and "64 bytes" in big.json()["error"]
    assert client.post(url, content=bytes(64 << 10)).status_code == 413
    short = client.post(url, content=bytes(63))
    assert short.status_code == 400 and "64 bytes, got 63" in short.json()["error"]
    assert client.post(url, content=b"\x11" * 64).status_code == 400  # pixels are 0..16
    assert client.post(url + "?label=10", content=bytes(64)).status_code == 400
    assert client.post("/api/explorer/tasks/chess/request", content=bytes(64)).status_code == 404
    assert (ledger_dump(home), sorted(p.name for p in (home / "keys").iterdir())) == before


def test_the_pages_fetch_nothing_from_elsewhere(client) -> None:
    for url in ("/", "/try", "/batches", "/network"):
        page = client.get(url).text
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), url
    for name in ("explorer.js", "explorer.css"):
        asset = client.get(f"/explorer/static/{name}")
        assert asset.status_code == 200 and "http" not in asset.text


def test_a_home_without_a_ledger_reads_as_empty(tmp_path: Path) -> None:
    source = LocalSource(tmp_path / "nothing")
    with TestClient(app(source)) as c:
        assert c.get("/api/explorer/tasks/digits/leaderboard").json() == []
        assert c.get("/api/explorer/batches").json() == []
        assert "no worker serves this task yet" in c.get("/").text
        assert "no data yet" in c.get("/").text and "no data yet" in c.get("/batches").text
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_serves_logs_each_request_and_stops_on_a_signal(market, stop) -> None:
    home = market["home"]
    before = ledger_dump(home), sorted(p.name for p in home.rglob("*"))
    proc = subprocess.Popen([sys.executable, "-m", "memjit.cli", "--home", str(market["home"]),
                             "explorer", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()

    def wait_for(pattern: str) -> re.Match:
        for _ in range(200):  # at most 200 lines, 60 s each
            match = re.search(pattern, lines.get(timeout=60))
            if match:
                return match
        raise AssertionError(f"no log line matches {pattern!r}")

    try:
        url = wait_for(r"running on (http://127\.0\.0\.1:\d+)").group(1)
        assert httpx.get(url + "/batches", timeout=60).status_code == 200
        wait_for(r'"GET /batches HTTP/1\.1" 200')
        os.kill(proc.pid, stop)
        assert proc.wait(timeout=60) == 0
        assert (ledger_dump(home), sorted(p.name for p in home.rglob("*"))) == before
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_cli_refuses_a_bad_listen_address(capsys, monkeypatch, tmp_path: Path) -> None:
    for listen in ("nowhere", "127.0.0.1:http", "127.0.0.1:70000", ":8700"):
        code, out, err = cli(capsys, monkeypatch, "--home", str(tmp_path), "explorer",
                             "--listen", listen)
        assert code == 2 and "bad --listen" in err and len(err.strip().splitlines()) == 1, err


@settings(max_examples=30)
@given(text=st.text(max_size=80) | st.binary(max_size=40).map(bytes.hex),
       kind=st.sampled_from(["workers", "claims", "batches", "tasks"]))
def test_any_path_parameter_is_an_answer_not_a_crash(client, text: str, kind: str) -> None:
    response = client.get(f"/api/explorer/{kind}/{quote(text, safe='')}")
    assert response.status_code in (200, 400, 404, 405, 422), (text, response.text)
    assert response.headers["content-type"].startswith("application/json") or \
        response.status_code in (404, 405)


def test_a_node_mounts_it_under_a_prefix_beside_its_own_routes(market) -> None:
    node = FastAPI()
    node.get("/")(lambda: {"node": "root"})
    node.include_router(router(LocalSource(market["home"]), prefix="/explorer"))
    with TestClient(node) as c:
        assert c.get("/").json() == {"node": "root"}
        page = c.get("/explorer/").text
        assert 'href="/explorer/workers/' in page and 'href="/explorer/batches"' in page
        assert 'data-api="/explorer/api/explorer"' in page
        assert c.get("/explorer/explorer/static/explorer.js").status_code == 200
        assert c.get("/explorer/api/explorer/batches").json()[0]["number"] == 1
        assert c.get(f"/explorer/workers/{market['good']}").status_code == 200
    with pytest.raises(ValueError, match="prefix"):
        router(LocalSource(market["home"]), prefix="explorer/")


class BlockingSource:
    """An ExplorerSource whose requests each announce two answers, then wait to be released
    (a node's requests take as long as their proofs)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def network(self) -> NetworkInfo:
        return NetworkInfo("validator", 7, "00" * 32, 0,
                           (Peer("p1", "10.0.0.2:7000", "prover", 7),))

    def tasks(self) -> list[TaskInfo]:
        return [TaskInfo("echo", "run", 2, 255, 4, 2, 2)]

    def request(self, task, input_bytes, label=None, on_answer=None) -> RequestOutcome:
        for worker in ("w1", "w2"):
            on_answer(Answer(worker, "ann", None if worker == "w1" else "OutOfFuel"))
        self.started.release()
        assert self.release.wait(60)
        return RequestOutcome(1, label, "label" if label is not None else None, input_bytes[0],
                              "w1", (CallOutcome("w1", "ann", "scored", input_bytes[0], 1.0, 10,
                                                 0, None, ""),))

    def __getattr__(self, name: str):  # every other read: nothing there
        def missing(*args, **kwargs):
            raise NotFound(f"no {name}")
        return missing


def test_answers_stream_as_they_arrive_and_requests_in_flight_are_bounded() -> None:
    source = BlockingSource()
    with TestClient(app(source)) as c:
        assert "10.0.0.2:7000" in c.get("/network").text and "validator" in c.get("/").text
        answers: list[list[dict]] = []

        def ask() -> None:
            with c.stream("POST", "/api/explorer/tasks/echo/request?label=3",
                          content=b"\x05\x06") as response:
                assert response.headers["content-type"] == "application/x-ndjson"
                answers.append([json.loads(line) for line in response.iter_lines() if line])

        askers = [threading.Thread(target=ask) for _ in range(MAX_REQUESTS_IN_FLIGHT)]
        for t in askers:
            t.start()
        for _ in askers:
            assert source.started.acquire(timeout=60)
        busy = c.post("/api/explorer/tasks/echo/request", content=b"\x01\x02")
        assert busy.status_code == 429 and "in flight" in busy.json()["error"]
        source.release.set()
        for t in askers:
            t.join(60)
        assert len(answers) == MAX_REQUESTS_IN_FLIGHT
        for events in answers:
            assert [e["event"] for e in events] == ["answer", "answer", "settled"]
            assert events[1]["fault"] == "OutOfFuel"
            assert (events[2]["result"], events[2]["scored_against"]) == (5, 3)
        assert c.post("/api/explorer/tasks/echo/request", content=b"\x01\x02").status_code == 200
        assert c.get("/api/explorer/workers/w1").status_code == 404
