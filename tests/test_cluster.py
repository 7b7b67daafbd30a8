"""The Dask engine: segments proven on a LocalCluster (127.0.0.1) give the serial claim, and a
worker killed mid-segment does not stop the claim."""

from __future__ import annotations

import functools
import os
import signal
import socket
import threading
import time
from concurrent.futures import Executor

import pytest

from memjit.cluster import DaskEngine
from memjit.errors import WorkerFault
from memjit.market import validators
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger
from memjit.market.pool import request
from memjit.market.registry import register
from memjit.market.tasks import read_test_set
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR
from memjit.runtime.claims import prove_claim, vk_of
from memjit.runtime.segments import prove_segment
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


def stalled_prove(job, marks: str) -> bytes:
    """A segment task that, until the test has killed a worker, announces its worker's PID
    and stalls inside the segment (so the kill lands mid-segment, whatever the load)."""
    if job.segment.index == 1 and not os.path.exists(os.path.join(marks, "killed")):
        with open(os.path.join(marks, f"busy-{os.getpid()}"), "w"):
            pass
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # killed here
            time.sleep(0.05)
    return prove_segment(job)


def test_worker_killed_mid_segment_is_reproven_elsewhere(tmp_path):
    """A Dask worker process killed (SIGKILL, by its PID) while it proves a segment: the
    segment is proven again on another worker and the claim completes, equal to the serial
    claim."""
    module = load_worker("fib")
    serial = prove_claim(module, "fib", [8], FAST, segment_log=8)
    killed: list[int] = []
    with DaskEngine(workers=2, task=functools.partial(stalled_prove, marks=str(tmp_path))) \
            as engine:
        pids = set(engine.worker_pids().values())

        def kill_the_stalled_worker() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                busy = list(tmp_path.glob("busy-*"))
                if busy:
                    pid = int(busy[0].name.split("-")[1])
                    (tmp_path / "killed").touch()
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                time.sleep(0.05)

        killer = threading.Thread(target=kill_the_stalled_worker)
        killer.start()
        try:
            claim = prove_claim(module, "fib", [8], FAST, segment_log=8, engine=engine)
        finally:
            killed.append(0)  # stops the killer if the claim failed first
            killer.join(timeout=130)
    assert killed[0] in pids, "the stalled segment's worker was not killed"
    assert len(claim.segments) == 4 and claim.encode() == serial.encode()
    assert verify_claim(claim.encode(), vk_of(module), min_security_bits=0).valid


def test_cluster_executor_serves_the_market_pool(engine, tmp_path):
    """The pool takes any concurrent.futures Executor (request(..., executor=...)), and so does
    an operator node (`node start --cluster`): a market request proven on the cluster's
    workers settles its verified answers as one proven in local processes would."""
    executor = engine.executor()
    assert isinstance(executor, Executor)
    pid = executor.submit(os.getpid).result(timeout=60)
    assert pid in engine.worker_pids().values() and pid != os.getpid()
    with Ledger(tmp_path) as ledger:
        store = Store(tmp_path)
        ids = {name: register(ledger, store, Identity.from_seed(name, bytes([i + 1]) * 32),
                              (WORKERS_DIR / f"digits_{name}.wasm").read_bytes(), 100,
                              faucet_grant=1_000).id
               for i, name in enumerate(("small_dot", "constant"))}
        image, label = read_test_set()[0][0].tobytes(), int(read_test_set()[1][0])
        asker = Identity.from_seed("asker", b"\x09" * 32)
        validators.bond(ledger, asker, 500, faucet_grant=1_000)  # its label scores the answers
        result = request(ledger, store, asker, "digits", image, label=label, top_k=2,
                         executor=executor)
    outcomes = {c.worker: c.outcome for c in result.calls}
    assert outcomes == {ids["small_dot"]: "scored", ids["constant"]: "scored"}
    assert (result.best.worker, result.best.result) == (ids["small_dot"], label)


def test_unreachable_cluster_is_a_worker_fault():
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = DaskEngine(f"tcp://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(WorkerFault, match="cannot reach the Dask cluster"):
        prove_claim(load_worker("fib"), "fib", [7], FAST, segment_log=8, engine=engine)
    engine.close()
