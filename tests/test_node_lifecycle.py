"""A node stopped by SIGTERM or SIGINT while it starts exits cleanly (exit 0: the node's
contract, docs/node.md), leaves no process of its own behind and loses nothing: real node
processes on 127.0.0.1, each stopped by its PID at the end."""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

import httpx
import pytest

from memjit.discovery import Discovery
from memjit.market.identity import load_or_create
from memjit.node import client as messages
from memjit.node.local import LocalNetwork, LocalNode, wait_until
from memjit.workers import WORKERS_DIR


def _left(group: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _stopped_cleanly(node: LocalNode, sig: int, when: str, times: int = 1) -> None:
    """Send `sig` once the node's log shows `when` (`times` times: the log of a home is
    appended to); it must exit 0 with all its processes."""
    assert wait_until(lambda: node.log.read_text().count(when) >= times, 120), \
        node.log.read_text()
    node.process.send_signal(sig)
    assert node.process.wait(60) == 0, node.log.read_text()
    assert wait_until(lambda: not _left(node.pid), 30), _left(node.pid)
    assert "Traceback" not in node.log.read_text() and "Error" not in node.log.read_text()


@pytest.fixture(scope="module")
def lone_peer():
    """A libp2p host that knows no network record: a node bootstrapping through it waits for
    its sequencer (30 s), in the middle of its start."""
    peer = Discovery(secrets.token_bytes(32), network="main")
    try:
        yield peer.start()[0]
    finally:
        peer.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_node_stopped_while_it_joins_the_network_exits_0(tmp_path: Path, lone_peer: str,
                                                            sig: int) -> None:
    net = LocalNetwork(tmp_path)
    try:
        node = net.launch("joining", "--bootstrap", lone_peer, sequencer=False)
        _stopped_cleanly(node, sig, "reading the sequencer from the network record")
        assert "stopped while starting" in node.log.read_text()
    finally:
        net.stop()


def test_a_node_stopped_while_its_provers_start_loses_nothing(tmp_path: Path) -> None:
    net = LocalNetwork(tmp_path)
    try:
        seq = net.start("seq", "--provers", "2")
        owner = load_or_create(tmp_path / "client", "alice")
        module = (WORKERS_DIR / "digits_constant.wasm").read_bytes()
        status = httpx.get(seq.url + "/v1/status", timeout=30).json()
        message = messages.registration(owner, module, "digits", 1000, status)
        added = httpx.post(seq.url + "/v1/workers", json={
            "module": module.hex(), "registration": message.to_json()}, timeout=300)
        assert added.status_code == 200, added.text
        # it starts its provers now: stop it while they start
        _stopped_cleanly(seq, signal.SIGTERM, "starting 2 prover process(es)")
        net.nodes.remove(seq)
        again = net.launch("seq", "--provers", "2", sequencer=False)
        _stopped_cleanly(again, signal.SIGINT, "starting 2 prover process(es)", 2)
        net.nodes.remove(again)
        last = net.launch("seq", sequencer=False)  # nothing lost: the worker, its operator
        net.ready(last)
        assert httpx.get(last.url + "/v1/status").json()["operated"] == [added.json()["id"]]
        assert [w["id"] for w in httpx.get(last.url + "/v1/workers").json()["workers"]] == [
            added.json()["id"]]
        assert last.stop() == 0
    finally:
        net.stop()
        for node in net.nodes:
            assert node.process.poll() is not None and not _left(node.pid)
    assert os.path.exists(tmp_path / "seq" / "ledger.sqlite")
