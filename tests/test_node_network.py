"""A market network of real node processes on 127.0.0.1 (free ports): a sequencer, three
operators (the honest one; the liar's owner running digits_liar's dishonest operator; one that
stalls, to be killed mid-request) and a gateway; every node but the sequencer is started with
the sequencer's libp2p multiaddr only (--bootstrap) and finds the sequencer and the operators
in the DHT. Requests go through HTTP, hostile messages are
refused, a killed operator is a fault, a killed sequencer loses nothing. Every process is
stopped by its PID at the end (the fixture's teardown)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from helpers import cli
from test_explorer_browser import browser, page  # noqa: F401 (the Playwright fixtures)
from memjit.market.identity import load_or_create
from memjit.market.tasks import read_test_set
from memjit.node import client as messages
from memjit.node.local import LocalNetwork, wait_until
from memjit.node.jobs import send_job
from memjit.node.membership import Membership
from memjit.node.messages import seal
from memjit.node.state import OperatorRef
from memjit.node.wire import unpack
from memjit.runtime.store import Store, cid_of
from memjit.workers import WORKERS_DIR

TESTS = Path(__file__).resolve().parent
IMAGES, LABELS = read_test_set()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("net")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", f"{TESTS}:{TESTS.parent}")
        net = LocalNetwork(root, job_timeout_s=600)
        try:
            net.start("seq")
            net.start_all({"honest": None, "liar": "memjit.workers.digits_liar",
                           "stall": "node_actors", "gw": None})
            yield net
        finally:
            net.stop()
            assert all(n.process.poll() is not None for n in net.nodes)


def node(net: LocalNetwork, name: str):
    return next(n for n in net.nodes if n.name == name)


def run(capsys, monkeypatch, home: Path, *argv: str) -> tuple[int, str, str]:
    return cli(capsys, monkeypatch, "--home", str(home), *argv)


def test_a_round_through_the_network(network, tmp_path_factory, capsys, monkeypatch) -> None:
    home = tmp_path_factory.getbasetemp() / "client"
    for owner, module, operator in (("alice", "constant", "honest"), ("mallory", "liar", "liar"),
                                    ("carol", "random", "stall")):
        code, out, err = run(capsys, monkeypatch, home, "worker", "add",
                             str(WORKERS_DIR / f"digits_{module}.wasm"), "--stake", "1000",
                             "--owner", owner, "--node", node(network, operator).url, "--json")
        assert code == 0, err
    code, _, err = run(capsys, monkeypatch, home, "worker", "add",
                       str(WORKERS_DIR / "digits_small.wasm"), "--stake", "20000", "--owner",
                       "bob", "--node", node(network, "honest").url)
    assert code == 1 and err.count("\n") == 1 and "above the free balance" in err
    image = home / "image.bin"
    image.write_bytes(IMAGES[0].tobytes())
    gw = node(network, "gw").url
    code, out, err = run(capsys, monkeypatch, home, "request", "--task", "digits", "--input",
                         str(image), "--top-k", "2", "--node", gw, "--json")
    assert code == 0, err
    answer = json.loads(out)
    verdicts = sorted(c["verdict"] for c in answer["calls"])
    assert verdicts == ["invalid", "valid"] and answer["answer"] is not None
    assert answer["settlement"]["seq"] == 1
    slashed = {c["worker"]: c["slashed"] for c in answer["settlement"]["calls"]}
    code, out, _ = run(capsys, monkeypatch, home, "worker", "list", "--json", "--node", gw)
    stakes = {w["id"]: w["stake"] for w in json.loads(out)["workers"]}
    assert sorted(slashed.values()) == [0, 100] and all(
        stakes[w] == 1000 - s for w, s in slashed.items())
    code, out, _ = run(capsys, monkeypatch, home, "balance", "alice", "--json", "--node", gw)
    assert code == 0 and json.loads(out)["bonded"] == 1000


def test_nodes_found_each_other_through_the_dht(network, capsys, monkeypatch,
                                                tmp_path_factory) -> None:
    home = tmp_path_factory.getbasetemp() / "client"
    seq = node(network, "seq")
    code, out, err = run(capsys, monkeypatch, home, "node", "status", "--json",
                         "--node", node(network, "gw").url)
    assert code == 0, err
    status = json.loads(out)
    assert status["sequencer"] == seq.url and status["p2p"] == node(network, "gw").p2p
    assert all(a.startswith("/ip4/127.0.0.1/tcp/") and a.endswith(f"/p2p/{status['peer_id']}")
               for a in status["p2p"]) and status["p2p"]
    assert "--bootstrap" in node(network, "gw").process.args \
        and "--sequencer" not in node(network, "gw").process.args
    # the round above: the gateway found all three operators through the DHT
    assert "operators of 3/3 digits workers found via the DHT" in \
        node(network, "gw").log.read_text()


def test_every_node_serves_the_explorer_at_its_root(network) -> None:
    seq, gw = node(network, "seq").url, node(network, "gw").url
    registered = {w["id"] for w in httpx.get(seq + "/v1/workers").json()["workers"]}
    board = httpx.get(seq + "/api/explorer/tasks/digits/leaderboard").json()
    assert {row["id"] for row in board} == registered and len(registered) == 3
    keys = [(-row["usefulness"], -row["stake"]) for row in board]
    assert keys == sorted(keys) and sum(row["slashed"] for row in board) == 100
    assert httpx.get(gw + "/api/explorer/tasks/digits/leaderboard").json() == board
    for url in (seq, gw):  # the leaderboard at /, in its order, on the sequencer and elsewhere
        page = httpx.get(url + "/", timeout=30)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        at = [page.text.index(row["id"]) for row in board]
        assert at == sorted(at)
    here = httpx.get(gw + "/api/explorer/network").json()
    assert here["role"] == "gateway, operator" and here["peers"][0]["role"] == "sequencer"
    assert here["peers"][0]["address"] == seq
    assert {p["address"] for p in here["peers"][1:]} == {
        node(network, name).url for name in ("honest", "liar", "stall")}
    call = httpx.get(gw + f"/api/explorer/workers/{board[0]['id']}/calls").json()
    assert httpx.get(gw + "/api/explorer/workers/" + "ab" * 32).status_code == 404
    claims = [c["claim"] for row in board for c in httpx.get(
        gw + f"/api/explorer/workers/{row['id']}/calls").json() if c["claim"]]
    assert call is not None and claims
    verdicts = [httpx.get(gw + f"/api/explorer/claims/{cid}", timeout=60).json()["valid"]
                for cid in claims]
    assert sorted(verdicts) == [False, True]  # the liar's claim is invalid, the honest valid


def test_a_browser_shows_a_nodes_leaderboard(network, page) -> None:
    gw = node(network, "gw").url
    board = httpx.get(gw + "/api/explorer/tasks/digits/leaderboard").json()
    page.goto(gw + "/")
    rows = page.locator("#leaderboard-digits tbody tr")
    assert [rows.nth(i).get_attribute("data-worker") for i in range(rows.count())] == [
        row["id"] for row in board]
    page.goto(gw + "/network")
    assert page.locator("#role").inner_text() == "gateway, operator"
    assert node(network, "seq").url in page.locator("#peers").inner_text()


def test_an_operator_killed_mid_request_is_a_fault(network, tmp_path_factory) -> None:
    home = tmp_path_factory.getbasetemp() / "client"
    requester = load_or_create(home, "requester")
    message = messages.request(requester, "digits", IMAGES[1].tobytes(), None, 3).to_json()
    (home / "request.json").write_text(json.dumps(message))
    answers: list[httpx.Response] = []
    asking = threading.Thread(target=lambda: answers.append(httpx.post(
        node(network, "gw").url + "/v1/requests", json=message, timeout=900)))
    asking.start()
    stall = node(network, "stall")
    assert wait_until(lambda: "received" in stall.log.read_text(), 60)
    stall.kill()
    asking.join(900)
    assert answers and answers[0].status_code == 200, answers
    answer = answers[0].json()
    verdicts = {c["verdict"] for c in answer["calls"]}
    assert verdicts == {"valid", "invalid", "fault"} and answer["answer"] is not None
    fault = next(c for c in answer["calls"] if c["verdict"] == "fault")
    assert "unreachable" in fault["reason"]
    assert answer["settlement"] == "pending"  # settled after the answer, in the background
    status = messages.NodeClient(node(network, "gw").url).settlement(answer["nonce"])
    assert status["status"] == "settled", status
    settled = status["settlement"]
    assert settled["seq"] == 2 and {c["outcome"] for c in settled["calls"]} == {
        "unscored", "invalid", "fault"}


def test_hostile_messages_between_nodes(network, tmp_path_factory) -> None:
    home = tmp_path_factory.getbasetemp() / "client"
    seen = json.loads((home / "request.json").read_text())
    gw, seq = node(network, "gw").url, node(network, "seq").url
    replayed = httpx.post(gw + "/v1/requests", json=seen, timeout=30)
    assert replayed.status_code == 403 and "replayed" in replayed.json()["error"]
    # a gateway re-delivering a settled request: the sequencer refuses the request's replay
    intruder = load_or_create(home, "intruder")
    delivery = seal(intruder, "delivery", {"request": seen, "nonce": "22" * 32,
                                           "workers": [], "claims": {}}).to_json()
    again = httpx.post(seq + "/v1/deliveries", json=delivery, timeout=30)
    assert again.status_code == 403 and "replayed" in again.json()["error"]
    forged = {**delivery, "body": {**delivery["body"], "workers": ["ab" * 32]}}
    refused = httpx.post(seq + "/v1/deliveries", json=forged, timeout=30)
    assert refused.status_code == 403 and "bad signature" in refused.json()["error"]
    honest = node(network, "honest").url
    wid = json.loads(httpx.get(honest + "/v1/status").text)["operated"][0]
    job = seal(intruder, "job", {"worker": wid, "task": "digits",
                                 "input": IMAGES[2].tobytes().hex(), "nonce": "33" * 32,
                                 "deadline": 2**40}).to_json()
    first = httpx.post(honest + "/v1/jobs", json=job, timeout=120)
    assert first.status_code == 200 and unpack(first.content, "claim").message["kind"] == "claim"
    second = httpx.post(honest + "/v1/jobs", json=job, timeout=30)
    assert second.status_code == 403 and "replayed" in second.json()["error"]
    assert "refused POST /v1/jobs" in node(network, "honest").log.read_text()


def test_the_explorer_sends_a_request_through_the_nodes_gateway(network) -> None:
    gw = node(network, "gw").url
    answer = httpx.post(gw + f"/api/explorer/tasks/digits/request?label={int(LABELS[3])}",
                        content=IMAGES[3].tobytes(), timeout=300)
    assert answer.status_code == 200, answer.text
    events = [json.loads(line) for line in answer.text.splitlines()]
    assert [e["event"] for e in events[:-1]] == ["answer"] * (len(events) - 1)
    settled = events[-1]
    assert settled["event"] == "settled" and settled["request"] == 3
    assert sorted(e["worker"] for e in events[:-1]) == sorted(c["worker"]
                                                              for c in settled["calls"])
    assert any(e["fault"] and "unreachable" in e["fault"] for e in events[:-1])  # stall died


def test_a_killed_sequencer_loses_nothing(network, tmp_path_factory) -> None:
    home = tmp_path_factory.getbasetemp() / "client"
    seq = node(network, "seq")
    before = httpx.get(seq.url + "/v1/status").json()
    seq.kill()
    seq = network.restart(seq)
    after = httpx.get(seq.url + "/v1/status").json()
    assert (after["workers"], after["requests"]) == (before["workers"], before["requests"]) \
        == (3, 3)
    seen = json.loads((home / "request.json").read_text())
    delivery = seal(load_or_create(home, "intruder"), "delivery",
                    {"request": seen, "nonce": "44" * 32, "workers": [], "claims": {}})
    refused = httpx.post(seq.url + "/v1/deliveries", json=delivery.to_json(), timeout=30)
    assert refused.status_code == 403 and "replayed" in refused.json()["error"]
    assert node(network, "gw").stop() == 0  # SIGTERM: a clean stop


def test_a_fault_a_gateway_forges_does_not_count(network, tmp_path_factory) -> None:
    """A rogue gateway (this test) reports faults of the honest worker; the sequencer asks
    the worker's operator itself and settles what the operator signed."""
    home = tmp_path_factory.getbasetemp() / "client"
    seq, honest = node(network, "seq"), node(network, "honest")
    wid = httpx.get(honest.url + "/v1/status").json()["operated"][0]
    stake = {w["id"]: w["stake"] for w in httpx.get(seq.url + "/v1/workers").json()["workers"]}
    rogue, payer = load_or_create(home, "rogue"), load_or_create(home, "payer")
    operator = OperatorRef(honest.url, bytes.fromhex(httpx.get(honest.url + "/v1/status")
                                                     .json()["key"]))

    def forged(image: int, claims: dict, sent: bytes | None = None) -> dict:
        request = messages.request(payer, "digits", IMAGES[image].tobytes(), None, 1)
        delivery = seal(rogue, "delivery", {"request": request.to_json(),
                                            "nonce": (sent or secrets.token_bytes(32)).hex(),
                                            "workers": [wid], "claims": {wid: claims}})
        answer = httpx.post(seq.url + "/v1/deliveries", json=delivery.to_json(), timeout=300)
        assert answer.status_code == 200, answer.text
        return answer.json()["calls"][0]

    # the job never sent: "the operator was unreachable"
    never = forged(4, {"fault": "operator unreachable: ConnectError"})
    # the job sent and answered, the claim kept back: "the operator missed the deadline"
    nonce = secrets.token_bytes(32)
    reply = send_job(rogue, operator, wid, "digits", IMAGES[5].tobytes(), nonce,
                     int(time.time()) + 300)
    assert "claim" in reply.entry and reply.attachments and reply.prove_s > 0
    kept = forged(5, {"fault": "DeadlineExceeded: operator missed the job deadline"}, nonce)
    # the operator's claim message with the claim's bytes left out of the frame
    nonce = secrets.token_bytes(32)
    reply = send_job(rogue, operator, wid, "digits", IMAGES[6].tobytes(), nonce,
                     int(time.time()) + 300)
    dropped = forged(6, reply.entry, nonce)
    for call in (never, kept, dropped):
        assert call["outcome"] in ("scored", "unscored") and call["slashed"] == 0, call
    after = {w["id"]: w["stake"] for w in httpx.get(seq.url + "/v1/workers").json()["workers"]}
    assert after[wid] == stake[wid]
    log = honest.log.read_text()
    assert log.count("answered already, same answer") >= 2  # proven once, not twice
    assert "the operator gave the sequencer a claim" in seq.log.read_text()


def test_the_sequencer_fetches_a_module_from_any_provider(network, tmp_path_factory) -> None:
    """The registration's operator is down; the module comes from another provider of its
    CID in the DHT, re-hashed: a provider serving wrong bytes is refused and banned."""
    home = tmp_path_factory.getbasetemp() / "client"
    seq, liar = node(network, "seq"), node(network, "liar")
    named = httpx.get(liar.url + "/v1/status").json()
    assert liar.stop() == 0  # the operator the registration names: down
    module = (WORKERS_DIR / "digits_small_dot.wasm").read_bytes()
    cid = cid_of(module)
    assert not Store(seq.home).has(cid)
    owner = load_or_create(home, "dora")
    with _mirror(home / "m1", seq.p2p, {cid: module[::-1]}):  # wrong bytes only
        refused = httpx.post(seq.url + "/v1/registrations", timeout=120, json=messages
                             .registration(owner, module, "digits", 1000, named).to_json())
        assert refused.status_code == 409 and "do not hash" in refused.json()["error"]
        with _mirror(home / "m2", seq.p2p, {cid: module}) as good:
            admitted = httpx.post(seq.url + "/v1/registrations", timeout=120, json=messages
                                  .registration(owner, module, "digits", 1000, named).to_json())
    assert admitted.status_code == 200, admitted.text
    assert admitted.json()["cid"] == cid and Store(seq.home).get(cid) == module
    assert f"fetched {cid[:20]} from {good}" in seq.log.read_text()


@contextmanager
def _mirror(home: Path, bootstrap: list[str], blocks: dict[str, bytes]):
    """A node of this process that serves `blocks` over HTTP and provides them in the DHT."""
    class Blocks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = blocks.get(self.path.rsplit("/", 1)[-1])
            self.send_response(200 if data is not None else 404)
            self.send_header("content-length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Blocks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    membership = Membership(home, load_or_create(home, "node"), role="operator")
    try:
        membership.start(url, bootstrap[:1], list(blocks))
        yield url
    finally:
        membership.close()
        server.shutdown()
        server.server_close()
