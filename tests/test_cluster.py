"""The Dask engine: segments proven on a LocalCluster (127.0.0.1) give the serial claim, and a
worker killed mid-segment does not stop the claim."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from concurrent.futures import Executor

import pytest

from memjit.cluster import DaskEngine
from memjit.errors import WorkerFault
from memjit.runtime.claims import prove_claim, vk_of
from memjit.workers import load as load_worker
from verifier import ProofParams
from verifier.claims import verify_claim

FAST = ProofParams(num_queries=8, grinding_bits=2)


@pytest.fixture(scope="module")
def engine():
    eng = DaskEngine(workers=2)
    try:
        yield eng
    finally:
        eng.close()


def test_cluster_claim_equals_the_serial_claim(engine):
    module = load_worker("fib")
    local = prove_claim(module, "fib", [7], FAST, segment_log=8)
    remote = prove_claim(module, "fib", [7], FAST, segment_log=8, engine=engine)
    assert remote.encode() == local.encode()
    assert verify_claim(remote.encode(), vk_of(module), min_security_bits=0).valid


def test_worker_killed_mid_segment_is_replaced(engine):
    module = load_worker("fib")
    pids = engine.worker_pids()
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            busy = [w for w, tasks in engine.client.processing().items() if tasks]
            if busy and busy[0] in pids:
                time.sleep(0.3)  # inside the segment's proof
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    try:
        claim = prove_claim(module, "fib", [8], FAST, segment_log=8, engine=engine)
    finally:
        killer.join(timeout=70)
    assert killed, "no worker was busy"
    assert verify_claim(claim.encode(), vk_of(module), min_security_bits=0).valid
    assert len(claim.segments) == 4


def test_cluster_executor_serves_the_market_pool(engine):
    """The pool takes any concurrent.futures Executor (request(..., executor=...)); the
    engine's runs a submitted operator on a worker process."""
    executor = engine.executor()
    assert isinstance(executor, Executor)
    pid = executor.submit(os.getpid).result(timeout=60)
    assert pid in engine.worker_pids().values() and pid != os.getpid()


def test_unreachable_cluster_is_a_worker_fault():
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = DaskEngine(f"tcp://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(WorkerFault, match="cannot reach the Dask cluster"):
        prove_claim(load_worker("fib"), "fib", [7], FAST, segment_log=8, engine=engine)
    engine.close()
