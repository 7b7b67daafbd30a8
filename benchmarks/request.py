"""`memjit bench request`: a one-worker `memjit request` as a user types it in a shell, timed
from outside (a subprocess per run, its wall time), on both paths:

- **node**: `memjit request --node URL --top-k 1` against the gateway of a running local network
  (memjit.node.local: a sequencer, an operator node with one warm prover process, a gateway;
  127.0.0.1). The client signs and sends the request and waits until the answer is verified
  and the delivery settled (and, timed apart, with --no-wait: until the verified answer); the
  operator proves in its warm process.
- **local**: `memjit request --top-k 1` on a --home where this process is the node: it imports
  the prover, proves (in-process: one worker needs no pool), verifies and settles.

Each path runs once unmeasured first (the operator's first job, numba's on-disk cache), then
`runs` times; the median, min and max wall times are reported, with the gateway's own timings
of one extra run (--json) on the node path.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memjit.errors import InternalError
from memjit.market.identity import load_or_create
from memjit.market.ledger import Ledger
from memjit.market.registry import register
from memjit.market.tasks import read_test_set
from memjit.node import client as messages
from memjit.node.client import NodeClient
from memjit.node.local import LocalNetwork
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR

STAKE = 1_000
COMMAND_TIMEOUT_S = 600.0


def bench_request(runs: int = 5, worker: str = "large_dot") -> dict:
    """Time `runs` one-worker requests of digits_<worker> from the shell on each path."""
    image = read_test_set()[0][0].tobytes()
    module = (WORKERS_DIR / f"digits_{worker}.wasm").read_bytes()
    with tempfile.TemporaryDirectory(prefix="memjit-bench-request-") as tmp:
        root = Path(tmp)
        (root / "image.bin").write_bytes(image)
        node = _bench_node(root, module, runs)
        local = _bench_local(root, module, runs)
    return {"worker": f"digits_{worker}", "runs": runs, "node": node, "local": local}


def _request(root: Path, *argv: str) -> tuple[float, str]:
    """Run `memjit request --task digits --input IMAGE --top-k 1 ARGV` in a fresh process;
    its wall time and stdout (InternalError if it fails)."""
    command = [sys.executable, "-m", "memjit.cli", "request", "--task", "digits", "--input",
               str(root / "image.bin"), "--top-k", "1", *argv]
    env = {k: v for k, v in os.environ.items() if k not in ("MEMJIT_NODE", "MEMJIT_HOME")}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=COMMAND_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise InternalError(f"memjit request exited {done.returncode}: {done.stderr.strip()}")
    return elapsed, done.stdout


def _summary(times: list[float]) -> dict:
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "times_s": [round(t, 3) for t in times]}


def _bench_node(root: Path, module: bytes, runs: int) -> dict:
    client = root / "client"
    with LocalNetwork(root / "net") as net:
        net.start("sequencer")
        operator = net.start("operator", "--provers", "1")
        gateway = net.start("gateway")
        node = NodeClient(operator.url, 120.0)
        message = messages.registration(load_or_create(client, "owner"), module, "digits",
                                        STAKE, node.get("/v1/status"))
        node.post("/v1/workers", {"module": module.hex(), "registration": message.to_json()},
                  120.0)
        ask = ("--home", str(client), "--node", gateway.url)
        _request(root, *ask)  # warm-up: the operator's first job, the gateway's DHT lookup
        times = [_request(root, *ask)[0] for _ in range(runs)]
        answered = [_request(root, *ask, "--no-wait")[0] for _ in range(runs)]
        _, out = _request(root, *ask, "--json")
    return {**_summary(times), "no_wait": _summary(answered),
            "gateway": json.loads(out)["timings"]}


def _bench_local(root: Path, module: bytes, runs: int) -> dict:
    home = root / "local"
    with Ledger(home) as ledger:
        register(ledger, Store(home), load_or_create(home, "owner"), module, STAKE)
    _request(root, "--home", str(home))  # warm-up: numba's on-disk cache
    return _summary([_request(root, "--home", str(home))[0] for _ in range(runs)])


def print_report(result: dict) -> None:
    """The benchmark as a few lines."""
    print(f"one-worker `memjit request` of {result['worker']}, wall time from the shell, "
          f"{result['runs']} runs each (after a warm-up)")
    for path in ("node", "local"):
        r = result[path]
        line = (f"{path:>6}: median {r['median_s']:.2f} s (min {r['min_s']:.2f}, max "
                f"{r['max_s']:.2f})")
        if path == "node":
            g = r["gateway"]
            line += (f"; with --no-wait (the verified answer, no settlement) median "
                     f"{r['no_wait']['median_s']:.2f} s (min {r['no_wait']['min_s']:.2f})"
                     f"; at the gateway {g['total_s']:.2f} s, of which waiting for the claim "
                     f"{g['jobs_s']:.2f} s, verifying {g['verify_s']:.2f} s, signing "
                     f"{g['sign_s']:.2f} s")
        print(line)
