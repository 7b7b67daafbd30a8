"""`memjit bench node`: requests through a gateway of a local network vs the same requests
served in-process (memjit.market.pool.request), on the same workers.

Reports requests/s and p50/p95 latency of each path, the claims verified per second at the
gateway, and the share of a request's time the gateway spends signing and checking messages
(BLS on milagro; the target is under 10 %). The network is memjit.node.local's: a sequencer,
one operator per worker (with a prover process per request in flight) and a gateway, all on
127.0.0.1, stopped at the end. A first request on each path warms the prover processes up and
is not counted. The gateway answers before the sequencer settles (in the background): the
latency is the requester's.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from memjit.market.identity import load_or_create
from memjit.market.ledger import Ledger
from memjit.market.pool import prover_pool, request
from memjit.market.registry import register
from memjit.market.tasks import read_test_set
from memjit.node import client as messages
from memjit.node.client import NodeClient
from memjit.node.local import LocalNetwork
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR

STAKE = 1_000


def _percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {"p50_s": statistics.median(ordered),
            "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]}


def bench_node(requests: int = 8, concurrency: int = 2, workers: tuple[str, ...] = ("constant",)
               ) -> dict:
    """Serve `requests` digits requests (at most `concurrency` at once) through a gateway,
    then in-process; the numbers of both paths."""
    images, _ = read_test_set()
    inputs = [images[i % len(images)].tobytes() for i in range(requests + 1)]
    modules = [(WORKERS_DIR / f"digits_{name}.wasm").read_bytes() for name in workers]
    with tempfile.TemporaryDirectory(prefix="memjit-bench-node-") as tmp:
        root = Path(tmp)
        network = _bench_network(root, modules, inputs, concurrency)
        local = _bench_in_process(root / "local", modules, inputs)
    return {"requests": requests, "concurrency": concurrency, "workers": list(workers),
            "network": network, "in_process": local}


def _bench_network(root: Path, modules: list[bytes], inputs: list[bytes],
                   concurrency: int) -> dict:
    client_home = root / "client"
    with LocalNetwork(root / "net") as net:
        net.start("sequencer")
        operators = [net.launch(f"operator{i}", "--provers", str(concurrency))
                     for i in range(len(modules))]  # a prover per request in flight
        for operator in operators:
            net.ready(operator)
        gateway = net.start("gateway")
        for i, (module, operator) in enumerate(zip(modules, operators)):
            node = NodeClient(operator.url, 120.0)
            owner = load_or_create(client_home, f"owner{i}")
            message = messages.registration(owner, module, "digits", STAKE,
                                            node.get("/v1/status"))
            node.post("/v1/workers", {"module": module.hex(),
                                      "registration": message.to_json()}, 120.0)
        requester = load_or_create(client_home, "requester")
        gw = NodeClient(gateway.url, 600.0)

        def ask(input_bytes: bytes) -> tuple[float, dict]:
            start = time.perf_counter()
            out = gw.post("/v1/requests", messages.request(
                requester, "digits", input_bytes, None, len(modules)).to_json(), 600.0)
            return time.perf_counter() - start, out

        ask(inputs[0])  # warm-up: prover processes start, kernels compile
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            done = list(pool.map(ask, inputs[1:]))
        elapsed = time.perf_counter() - start
    latencies = [d[0] for d in done]
    timings = [d[1]["timings"] for d in done]
    verified = sum(c["verdict"] in ("valid", "invalid") for d in done for c in d[1]["calls"])
    verify_s = sum(t["verify_s"] for t in timings)
    return {"requests_per_s": len(done) / elapsed, **_percentiles(latencies),
            "gateway_verifications_per_s": verified / verify_s if verify_s else None,
            "signing_share": sum(t["sign_s"] for t in timings) / sum(t["total_s"]
                                                                      for t in timings),
            "jobs_share": sum(t["jobs_s"] for t in timings) / sum(t["total_s"] for t in timings),
            "verify_share": verify_s / sum(t["total_s"] for t in timings),
            "answered": sum(d[1]["answer"] is not None for d in done)}


def _bench_in_process(home: Path, modules: list[bytes], inputs: list[bytes]) -> dict:
    store = Store(home)
    with Ledger(home) as ledger, prover_pool(len(modules)) as executor:
        for i, module in enumerate(modules):
            register(ledger, store, load_or_create(home, f"owner{i}"), module, STAKE)
        requester = load_or_create(home, "requester")
        latencies = []
        for n, input_bytes in enumerate(inputs):
            start = time.perf_counter()
            request(ledger, store, requester, "digits", input_bytes, top_k=len(modules),
                    executor=executor)
            if n:  # the first one warms up
                latencies.append(time.perf_counter() - start)
    return {"requests_per_s": len(latencies) / sum(latencies), **_percentiles(latencies)}


def print_report(result: dict) -> None:
    """The benchmark as a few lines."""
    print(f"{result['requests']} requests, {result['concurrency']} at once, workers "
          f"{', '.join(result['workers'])}")
    for path in ("network", "in_process"):
        r = result[path]
        line = (f"{path:>10}: {r['requests_per_s']:.2f} requests/s, p50 {r['p50_s']:.2f} s, "
                f"p95 {r['p95_s']:.2f} s")
        if path == "network":
            rate = r["gateway_verifications_per_s"]
            line += (f", gateway {rate:.1f} claim checks/s" if rate else "") + \
                f", signing {100 * r['signing_share']:.1f} %, waiting for the claims " \
                f"{100 * r['jobs_share']:.0f} %, verifying {100 * r['verify_share']:.0f} % " \
                "of the gateway's time"
        print(line)
