"""One node alone is a whole network: the sequencer is also the operator and the gateway. A
request it answers must be settled: its gateway admits the request's nonce and its sequencer
admits it again when it settles the delivery, in separate replay scopes (memjit.node.replay).
A worker registered through the node is asked at once (its gateway's cached market view is
dropped). A real node process on 127.0.0.1, stopped by its PID."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import cli
from memjit.market.tasks import read_test_set
from memjit.node.local import LocalNetwork
from memjit.workers import WORKERS_DIR


def test_a_lone_node_answers_and_settles_a_request(tmp_path: Path, capsys, monkeypatch) -> None:
    images, labels = read_test_set()
    image = tmp_path / "image.bin"
    image.write_bytes(images[0].tobytes())
    home = str(tmp_path / "client")
    with LocalNetwork(tmp_path / "net") as net:
        url = net.start("solo", "--provers", "1", "--view-ttl", "600").url
        code, _, err = cli(capsys, monkeypatch, "--home", home, "worker", "add",
                           str(WORKERS_DIR / "digits_small_dot.wasm"), "--stake", "100",
                           "--task", "digits", "--node", url)
        assert code == 0, err
        for seq in (1, 2):  # and a second request: the first one's nonces refuse nothing
            code, out, err = cli(capsys, monkeypatch, "--home", home, "request", "--task",
                                 "digits", "--input", str(image), "--top-k", "1", "--node",
                                 url, "--json")
            assert code == 0, err
            answer = json.loads(out)
            assert answer["answer"] == int(labels[0]), answer
            assert answer["settlement"]["seq"] == seq, answer["settlement"]
        # a worker registered through the node: its gateway drops the market view it reuses
        code, _, err = cli(capsys, monkeypatch, "--home", home, "worker", "add",
                           str(WORKERS_DIR / "digits_constant.wasm"), "--stake", "100",
                           "--task", "digits", "--node", url)
        assert code == 0, err
        code, out, err = cli(capsys, monkeypatch, "--home", home, "request", "--task", "digits",
                             "--input", str(image), "--top-k", "2", "--node", url, "--json")
        assert code == 0, err
        assert len(json.loads(out)["calls"]) == 2
    assert all(node.process.poll() is not None for node in net.nodes)
