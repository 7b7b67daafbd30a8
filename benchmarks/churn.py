"""`memjit bench network --churn`: eight nodes on loopback lose three non-sequencer nodes
mid-run and get them back.

The network: a sequencer (emission periods of one second, a batch commit every second, so
that each labelled request becomes a fact and a batch), two operators (one worker each; the
first is also the gateway every request goes through) and five followers. `requests`
labelled requests are sent one after the other; after the first third, one operator and two
followers are stopped (SIGTERM, by PID); after the second third they are started again on
their homes. Reported: how many requests completed (a stopped operator's job is a fault, the
request completes with the other answer), their latencies, the time the restarted followers
took to catch up once restarted, and whether every follower ends at the sequencer's height
and state root.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx

from memjit.market.identity import load_or_create
from memjit.market.tasks import read_test_set
from memjit.node import client as messages
from memjit.node.client import NodeClient
from memjit.node.local import LocalNetwork, wait_until
from memjit.workers import WORKERS_DIR

WORKERS = ("constant", "small")
FOLLOWERS = 5
CATCH_UP_TIMEOUT_S = 600.0


def bench_churn(requests: int = 6) -> dict:
    """Run the churn scenario (see the module doc); its numbers."""
    images, labels = read_test_set()
    with tempfile.TemporaryDirectory(prefix="memjit-churn-") as tmp:
        root = Path(tmp)
        client = root / "client"
        with LocalNetwork(root / "net", job_timeout_s=600) as net:
            net.start("seq", "--period", "1", "--batch-interval", "1")
            ops = net.start_all({f"op{i}": None for i in range(len(WORKERS))})
            followers = net.start_all({f"f{i}": None for i in range(FOLLOWERS)}, "--follow")
            for i, (name, op) in enumerate(zip(WORKERS, ops)):
                module = (WORKERS_DIR / f"digits_{name}.wasm").read_bytes()
                node = NodeClient(op.url, 120.0)
                message = messages.registration(load_or_create(client, f"owner{i}"), module,
                                                "digits", 1000, node.get("/v1/status"))
                node.post("/v1/workers", {"module": module.hex(),
                                          "registration": message.to_json()}, 120.0)
            requester = load_or_create(client, "requester")
            gateway = NodeClient(ops[0].url, 600.0)
            gateway.post("/v1/validators", messages.stake(requester, "bond", 5000).to_json())
            churned = [ops[1], followers[0], followers[1]]
            latencies, answered, restarted_at = [], 0, None
            for i in range(requests):
                if i == requests // 3:
                    for node in churned:
                        node.stop()
                if i == 2 * requests // 3:
                    churned = [net.restart(node) for node in churned]
                    restarted_at = time.perf_counter()
                t = time.perf_counter()
                try:
                    out = gateway.post("/v1/requests", messages.request(
                        requester, "digits", images[i].tobytes(), int(labels[i]),
                        len(WORKERS)).to_json(), 600.0)
                    answered += out["answer"] is not None
                except Exception as exc:  # a failed request is counted, not fatal
                    print(f"request {i} failed: {exc}")
                latencies.append(time.perf_counter() - t)
            if restarted_at is None:
                churned = [net.restart(node) for node in churned]
                restarted_at = time.perf_counter()
            seq_url = net.sequencer.url
            everyone = [n for n in net.nodes if n.name.startswith("f")]
            settled = wait_until(lambda: _settled(seq_url), CATCH_UP_TIMEOUT_S, 1.0)
            agree = wait_until(lambda: _agree(seq_url, [n.url for n in everyone]),
                               CATCH_UP_TIMEOUT_S, 0.5)
            catch_up_s = time.perf_counter() - restarted_at
            seq = _status(seq_url)
        return {"nodes": 1 + len(WORKERS) + FOLLOWERS, "requests": requests,
                "answered": answered, "stopped_and_restarted": 3,
                "latency_max_s": round(max(latencies), 2),
                "latency_mean_s": round(sum(latencies) / len(latencies), 2),
                "height": seq.get("height"), "proven": seq.get("proven"),
                "all_settled_and_proven": settled, "roots_agree": agree,
                "restarted_catch_up_s": round(catch_up_s, 1)}


def _status(url: str) -> dict:
    try:
        return httpx.get(url + "/v1/status", timeout=30).json()
    except (httpx.HTTPError, ValueError):
        return {}


def _settled(seq: str) -> bool:
    """Every settled call committed and proven: the sequencer's last batch is proven and no
    more come (two reads a few seconds apart agree)."""
    first = _status(seq)
    time.sleep(3)
    second = _status(seq)
    return bool(first) and first.get("height") == second.get("height") == second.get("proven")


def _agree(seq: str, followers: list[str]) -> bool:
    want = _status(seq)
    return all((s.get("height"), s.get("state_root")) == (want.get("height"),
                                                         want.get("state_root"))
               for s in map(_status, followers))
