"""Followers on real node processes (127.0.0.1, free ports): a sequencer whose emission
periods last a second (so that a labelled request becomes a fact and a batch at once: batch 1
holds the worker's registration bond, batch 2 the first request's facts, batch 3 the second's), an
honest operator, two followers (`--follow`, joined with --bootstrap only) and a malicious peer
(tests/batch_forger.py) that claims every batch in the DHT and serves each one tampered with
(batch 1: a header re-signed by another committee; batch 2: a fact's score changed). Every
follower refuses the forgeries, reaches the sequencer's root from an honest provider, and a
follower stopped and restarted catches up. Every process is stopped by its PID."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from helpers import cli
from memjit.market.tasks import read_test_set
from memjit.node.local import LocalNetwork, wait_until
from memjit.workers import WORKERS_DIR

TESTS = Path(__file__).resolve().parent
IMAGES, LABELS = read_test_set()
WAIT_S = 300.0  # bounds every wait (a loaded 2-core machine proves a batch in ~10 s)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("followers")
    forger = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", f"{TESTS}:{TESTS.parent}")
        net = LocalNetwork(root, job_timeout_s=600)
        try:
            net.start("seq", "--period", "1", "--batch-interval", "1")
            forger = subprocess.Popen([sys.executable, str(TESTS / "batch_forger.py"),
                                       net.sequencer.p2p[0], "header,data"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
            line: list[str] = []
            reader = threading.Thread(target=lambda: line.append(
                forger.stdout.readline().decode().strip()), daemon=True)
            reader.start()
            net.start_all({"op": None})
            net.start_all({"f1": None, "f2": None}, "--follow")
            reader.join(60)
            assert line and line[0].startswith("listening on "), line
            net.forger = line[0].removeprefix("listening on ")
            yield net
        finally:
            if forger is not None:
                forger.terminate()
                try:
                    forger.wait(15)
                except subprocess.TimeoutExpired:
                    forger.kill()
                    forger.wait(15)
            net.stop()
            assert all(n.process.poll() is not None for n in net.nodes)


def node(net: LocalNetwork, name: str):
    return next(n for n in net.nodes if n.name == name)


def status(url: str) -> dict:
    return httpx.get(url + "/v1/status", timeout=60).json()


def labelled_request(capsys, monkeypatch, home: Path, net: LocalNetwork, i: int) -> None:
    image = home / f"image{i}.bin"
    image.write_bytes(IMAGES[i].tobytes())
    code, _, err = cli(capsys, monkeypatch, "--home", str(home), "request", "--task", "digits",
                       "--input", str(image), "--label", str(int(LABELS[i])), "--top-k", "1",
                       "--node", node(net, "op").url)
    assert code == 0, err


def caught_up(net: LocalNetwork, names: list[str], height: int) -> bool:
    """Whether the sequencer has proven `height` and every named follower is there, at the
    sequencer's root."""
    seq = status(net.sequencer.url)
    if seq["proven"] < height:
        return False
    return all((s["height"], s["state_root"]) == (seq["height"], seq["state_root"])
               for s in (status(node(net, n).url) for n in names))


def test_followers_reach_the_sequencers_root_and_refuse_a_forger(
        network, tmp_path_factory, capsys, monkeypatch) -> None:
    home = tmp_path_factory.getbasetemp() / "client"
    code, _, err = cli(capsys, monkeypatch, "--home", str(home), "worker", "add",
                       str(WORKERS_DIR / "digits_constant.wasm"), "--stake", "1000", "--owner",
                       "alice", "--node", node(network, "op").url)
    assert code == 0, err
    # the registration bond is committed before any request: batch 1 holds it alone whatever
    # the machine's load (the commit loop ticks every second)
    assert wait_until(lambda: status(network.sequencer.url)["height"] >= 1, WAIT_S, 0.5)
    code, _, err = cli(capsys, monkeypatch, "--home", str(home), "validator", "bond", "--stake",
                       "5000", "--node", node(network, "op").url)
    assert code == 0, err
    labelled_request(capsys, monkeypatch, home, network, 0)
    assert wait_until(lambda: caught_up(network, ["f1", "f2"], 2), WAIT_S, 1.0)
    logs = "".join(node(network, n).log.read_text() for n in ("f1", "f2"))
    assert f"refused batch 1 from {network.forger}: batch 1 is not signed by the genesis " \
           "committee" in logs
    assert "applied batch 1 from " + network.sequencer.url in logs


def test_node_status_shows_height_root_and_peers(network, capsys, monkeypatch,
                                                 tmp_path_factory) -> None:
    home = tmp_path_factory.getbasetemp() / "client"
    seq = status(network.sequencer.url)
    for name in ("seq", "op", "f1"):
        code, out, err = cli(capsys, monkeypatch, "--home", str(home), "node", "status",
                             "--json", "--node", node(network, name).url)
        assert code == 0, err
        fields = json.loads(out)
        assert (fields["height"], fields["state_root"]) == (seq["height"], seq["state_root"])
        assert len(fields["peers"]) >= 2 and all(p.startswith("12D3KooW")
                                                 for p in fields["peers"])
    assert "follower" in status(node(network, "f1").url)["roles"]
    genesis = httpx.get(node(network, "f1").url + "/v1/genesis", timeout=30).json()
    assert genesis == httpx.get(network.sequencer.url + "/v1/genesis", timeout=30).json()
    assert genesis["sequencer"] == seq["key"] == genesis["committee"][0]


def test_a_follower_stopped_and_restarted_catches_up(network, tmp_path_factory, capsys,
                                                     monkeypatch) -> None:
    home = tmp_path_factory.getbasetemp() / "client"
    f2 = node(network, "f2")
    assert f2.stop() == 0
    labelled_request(capsys, monkeypatch, home, network, 1)
    assert wait_until(lambda: caught_up(network, ["f1"], 3), WAIT_S, 1.0)
    f2 = network.restart(f2)
    assert wait_until(lambda: caught_up(network, ["f1", "f2"], 3), WAIT_S, 1.0)
    restarted = f2.log.read_text().rsplit("SIGTERM: stopping", 1)[1]
    assert "applied batch 3 from " in restarted and "applied batch 2" not in restarted
    logs = "".join(node(network, n).log.read_text() for n in ("f1", "f2"))
    assert f"refused batch 2 from {network.forger}: batch 2: " in logs
    listing = httpx.get(node(network, "f1").url + "/v1/batches", timeout=30).json()
    assert [b["number"] for b in listing["batches"]] == [1, 2, 3] and listing["height"] == 3
