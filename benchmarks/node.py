"""`memjit bench node`: requests through a gateway of a local network vs the same requests
served in-process (memjit.market.pool.request), on the same workers.

Both paths serve the same requests at the same concurrency with the same number of warm prover
processes (one per request in flight), back to back in one run (the machine is shared: only
numbers of one run compare). Reports requests/s and p50/p95 latency of each path, the claims
verified per second at the gateway, and where a request's time goes: at the gateway
(memjit.node.gateway.Timings: admitting the request, the market view, waiting for the claims,
of which the operator's proving and handling (its Server-Timing header), checking the claim
messages, verifying, spooling the delivery; `sign` sums the BLS work), on the job's HTTP hop,
at the client, and at the sequencer settling it (opening, planning, witnessing, judging,
settling). The network is
memjit.node.local's: a sequencer, one operator per worker and a gateway, all on 127.0.0.1,
stopped at the end. `concurrency` warm-up requests on each path are not counted (on the
network, their settlements are awaited: the sequencer's verifier process loads its kernels).
The gateway answers before the sequencer settles (in the background): the latency is the
requester's; the settlements are awaited before the network stops. On Linux it also reports
the CPU seconds each role spends per request (each node is a process group of its own; the
benchmark's own group is the client, and in-process the market with its provers): on a
machine whose cores every role shares, extra CPU anywhere is latency.
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from circuits.wasm_vm.statement import NONCE_BYTES

from memjit.market.identity import load_or_create
from memjit.market.ledger import Ledger
from memjit.market.pool import (RequestResult, answer, judge, plan, prover_pool, settle,
                                stop_pool, warm_pool)
from memjit.market.registry import register
from memjit.market.tasks import read_test_set
from memjit.node import client as messages
from memjit.node.client import NodeClient
from memjit.node.local import LocalNetwork
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR

STAKE = 1_000
T = TypeVar("T")


def _cpu_by_group() -> dict[tuple[int, bool], float]:
    """CPU seconds (user + system) of every process on this machine, by (process group,
    whether the process leads it): a node started by memjit.node.local leads a group of its
    own, with its prover or verifier processes in it. Linux (/proc); empty elsewhere."""
    found: dict[tuple[int, bool], float] = {}
    if not os.path.isdir("/proc"):
        return found
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        key = (int(fields[2]), int(pid) == int(fields[2]))
        found[key] = found.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


def _cpu_per_request(before: dict, after: dict, groups: dict[str, int], requests: int
                     ) -> dict[str, float]:
    """CPU seconds per request of each named process group between two `_cpu_by_group`
    readings: `NAME` for a node (its group's leader), `NAME+` for the rest of its group (its
    provers, the sequencer's verifier), and the whole group of this process (`own`) as one."""
    own = os.getpgid(0)
    spent = {}
    for name, group in groups.items():
        for leads, suffix in ((True, ""), (False, "+")):
            key = (group, leads)
            label = name if group == own else name + suffix
            if key in after:
                spent[label] = spent.get(label, 0.0) + (after[key] - before.get(key, 0.0)) \
                    / requests
    return spent


def _percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {"p50_s": statistics.median(ordered),
            "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]}


def bench_node(requests: int = 8, concurrency: int = 2, workers: tuple[str, ...] = ("constant",)
               ) -> dict:
    """Serve `requests` digits requests (`concurrency` at once) through a gateway, then the
    same requests in-process at the same concurrency, back to back; the numbers of both."""
    images, _ = read_test_set()
    warm = [images[-1 - i].tobytes() for i in range(concurrency)]
    inputs = [images[i % len(images)].tobytes() for i in range(requests)]
    modules = [(WORKERS_DIR / f"digits_{name}.wasm").read_bytes() for name in workers]
    with tempfile.TemporaryDirectory(prefix="memjit-bench-node-") as tmp:
        root = Path(tmp)
        network = _bench_network(root, modules, warm, inputs, concurrency)
        local = _bench_in_process(root / "local", modules, warm, inputs, concurrency)
    overhead = network["p50_s"] / local["p50_s"] - 1
    return {"requests": requests, "concurrency": concurrency, "workers": list(workers),
            "network": network, "in_process": local, "p50_overhead": overhead}


def _run(ask: Callable[[bytes], T], warm: list[bytes], inputs: list[bytes], concurrency: int,
         warmed: Callable[[T], object] = lambda _: None
         ) -> tuple[float, list[tuple[float, T]], dict, dict]:
    """Run `ask` on the warm-up inputs (all at once, not counted; `warmed` sees each result),
    then on `inputs`, `concurrency` at a time; the wall time, each request's (latency,
    result), and the machine's CPU readings (`_cpu_by_group`) before and after `inputs`."""
    def timed(input_bytes: bytes) -> tuple[float, T]:
        start = time.perf_counter()
        out = ask(input_bytes)
        return time.perf_counter() - start, out

    with ThreadPoolExecutor(concurrency) as pool:
        for out in pool.map(ask, warm):
            warmed(out)
        cpu = _cpu_by_group()
        start = time.perf_counter()
        done = list(pool.map(timed, inputs))
        elapsed = time.perf_counter() - start
    return elapsed, done, cpu, _cpu_by_group()


def _bench_network(root: Path, modules: list[bytes], warm: list[bytes], inputs: list[bytes],
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

        def ask(input_bytes: bytes) -> dict:
            return gw.post("/v1/requests", messages.request(
                requester, "digits", input_bytes, None, len(modules)).to_json(), 600.0)

        def settled(answer: dict) -> dict:
            return gw.settlement(answer["nonce"], 600.0)

        # the warm-up's settlements too (the sequencer's verifier process loads its kernels)
        elapsed, done, cpu, answered = _run(ask, warm, inputs, concurrency, settled)
        settlements = [settled(answer)["settlement"]["timings"] for _, answer in done]
        groups = {"client": os.getpgid(0), "sequencer": net.sequencer.pid, "gateway": gateway.pid,
                  **{f"operator{i}": operator.pid for i, operator in enumerate(operators)}}
        cpu_s = _cpu_per_request(cpu, answered, groups, len(inputs))
        cpu_settled_s = _cpu_per_request(cpu, _cpu_by_group(), groups, len(inputs))
    latencies = [d[0] for d in done]
    timings = [d[1]["timings"] for d in done]
    verified = sum(c["verdict"] in ("valid", "invalid") for d in done for c in d[1]["calls"])
    verify_s = sum(t["verify_s"] for t in timings)
    gateway = {k.removesuffix("_s"): statistics.mean(t[k] for t in timings) for k in timings[0]}
    return {"requests_per_s": len(done) / elapsed, **_percentiles(latencies),
            "gateway_verifications_per_s": verified / verify_s if verify_s else None,
            "gateway_s": gateway,
            "job_hop_s": statistics.mean(t["jobs_s"] - t["operator_s"] for t in timings),
            "client_s": statistics.mean(d[0] - d[1]["timings"]["total_s"] for d in done),
            "sequencer_s": {k.removesuffix("_s"): statistics.mean(t[k] for t in settlements)
                            for k in settlements[0]},
            "answered": sum(d[1]["answer"] is not None for d in done),
            "cpu_s": cpu_s, "cpu_settled_s": cpu_settled_s}


def _bench_in_process(home: Path, modules: list[bytes], warm: list[bytes],
                      inputs: list[bytes], concurrency: int) -> dict:
    """The in-process market's stages (memjit.market.pool: plan, answer, judge, settle, as
    `pool.request` runs them), `concurrency` requests at once: the ledger stages on one thread
    (SQLite connections stay on their thread: the sequencer's rule), proofs on a pool of
    `concurrency` warm prover processes (the operators' --provers)."""
    store = Store(home)
    ledger_thread = ThreadPoolExecutor(1, thread_name_prefix="ledger")
    ledger = ledger_thread.submit(Ledger, home).result()
    executor = prover_pool(concurrency, warm=True)
    try:
        warm_pool(executor, concurrency)
        for i, module in enumerate(modules):
            owner = load_or_create(home, f"owner{i}")
            ledger_thread.submit(register, ledger, store, owner, module, STAKE).result()
        requester = load_or_create(home, "requester").public_key

        def ask(input_bytes: bytes) -> RequestResult:
            planned = ledger_thread.submit(plan, ledger, store, requester, "digits",
                                           input_bytes, top_k=len(modules)).result()
            nonce = secrets.token_bytes(NONCE_BYTES)
            judged = judge(store, planned, nonce, answer(
                store, planned.task, list(planned.picked), input_bytes, nonce, executor))
            return ledger_thread.submit(settle, ledger, store, planned, nonce, judged).result()

        elapsed, done, cpu, answered = _run(ask, warm, inputs, concurrency)
    finally:
        stop_pool(executor)
        ledger_thread.submit(ledger.close).result()
        ledger_thread.shutdown()
    latencies = [d[0] for d in done]
    return {"requests_per_s": len(done) / elapsed, **_percentiles(latencies),
            "cpu_s": _cpu_per_request(cpu, answered, {"in-process": os.getpgid(0)},
                                      len(inputs)).get("in-process")}


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
            line += (f", gateway {rate:.1f} claim checks/s" if rate else "")
        print(line)
    net = result["network"]
    print(f"  network p50 overhead: {100 * result['p50_overhead']:+.0f} % of in-process")
    print("  gateway, mean s per request: " + ", ".join(
        f"{k} {v:.3f}" for k, v in net["gateway_s"].items()))
    print(f"  job HTTP hop (both ways, beside the operator's own time) {net['job_hop_s']:.3f} s,"
          f" client (signing, request hop) {net['client_s']:.3f} s")
    print("  sequencer (settling, off the answer's path), mean s: " + ", ".join(
        f"{k} {v:.3f}" for k, v in net["sequencer_s"].items()))
    if net["cpu_s"]:
        print("  CPU s per request while answering (NAME+: its provers, the sequencer's "
              "verifier): " + ", ".join(f"{k} {v:.3f}" for k, v in net["cpu_s"].items() if v)
              + f"; until settled: sequencer {net['cpu_settled_s']['sequencer']:.3f} + "
              f"{net['cpu_settled_s'].get('sequencer+', 0.0):.3f}; in-process, the whole "
              f"request {result['in_process']['cpu_s']:.3f}")
