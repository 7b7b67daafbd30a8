"""Every node serves the explorer at `/` (memjit.node.explorer_source.NodeSource), in process
(FastAPI's TestClient): the sequencer's pages and JSON read its own ledger, beside the node's
API under /v1/. The other nodes (reading from their sequencer) are checked on real processes in
tests/test_node_network.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from memjit.explorer.source import ExplorerSource
from memjit.market.identity import Identity
from memjit.node import client as messages
from memjit.node.api import create_app
from memjit.node.explorer_source import NodeSource
from memjit.node.node import Node, NodeConfig
from memjit.workers import WORKERS_DIR

OWNERS = (("alice", "constant", 1000), ("carol", "random", 1500))


@pytest.fixture(scope="module")
def sequencer(tmp_path_factory: pytest.TempPathFactory):
    node = Node(NodeConfig(home=tmp_path_factory.mktemp("seq")), "http://testserver")
    with TestClient(create_app(node)) as api:
        me = api.get("/v1/status").json()
        for name, module, stake in OWNERS:
            wasm = (WORKERS_DIR / f"digits_{module}.wasm").read_bytes()
            owner = Identity.from_seed(name, name.encode() * 8)
            reg = messages.registration(owner, wasm, "digits", stake,
                                        {"url": me["url"], "key": me["key"]})
            answer = api.post("/v1/workers", json={"module": wasm.hex(),
                                                   "registration": reg.to_json()})
            assert answer.status_code == 200, answer.text
        yield node, api
    node.close()


def test_the_node_serves_the_leaderboard_at_its_root(sequencer) -> None:
    node, api = sequencer
    assert isinstance(NodeSource(node), ExplorerSource)
    page = api.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    board = api.get("/api/explorer/tasks/digits/leaderboard").json()
    assert [row["stake"] for row in board] == [1500, 1000]  # most useful, then most staked
    assert all(row["id"] in page.text for row in board)
    assert page.text.index(board[0]["id"]) < page.text.index(board[1]["id"])
    assert api.get("/v1/status").json()["workers"] == 2  # the API is still there
    network = api.get("/api/explorer/network").json()
    assert network["role"] == "sequencer, gateway, operator" and network["height"] == 0
    assert network["peers"] == []  # the only operator is this node
    assert "sequencer" in api.get("/network").text
    worker = api.get(f"/api/explorer/workers/{board[0]['id']}").json()
    assert worker["task"] == "digits" and worker["row"]["stake"] == 1500
    assert api.get("/api/explorer/workers/" + "ab" * 32).status_code == 404
    assert api.get("/api/explorer/batches").json() == []
