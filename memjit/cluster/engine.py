"""Proving segments on Dask distributed: a LocalCluster by default, or a running scheduler.

The client traces and builds each segment's witness (memjit.runtime.segments); a task carries
the witness to a worker, which proves it and returns the proof bytes. The task holds its own
data (no scattered futures), so when a worker dies mid-segment the scheduler runs the task
again on another worker; a task lost anyway (the scheduler gave up on it, the connection
dropped) is submitted again from the client, which still has the job. At most ``window`` jobs
are in flight: the client never holds more witnesses than the workers can use.

Dask rather than Ray: a LocalCluster starts in about 1.8 s and idles at about 200 MB, Ray in
about 5 s and 620 MB over nine processes; Dask also needs no daemon for a single machine and
its scheduler protocol (tcp://host:8786) is the same for a real cluster.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor

from memjit.errors import WorkerFault
from memjit.runtime.segments import SegmentJob, prove_segment

RESUBMITS = 3  # client-side resubmissions of a task the cluster lost


class DaskEngine:
    """A segment engine on a Dask cluster: ``address`` (tcp://HOST:8786) or, without one, a
    LocalCluster of ``workers`` single-threaded worker processes on 127.0.0.1 (one Dask
    thread and one numba thread each: the workers share the cores, not oversubscribe them). Nothing starts
    until the first segment is submitted (a run that fits one trace never starts a cluster)."""

    def __init__(self, address: str | None = None, workers: int = 2, timeout_s: float = 30.0,
                 task: Callable[[SegmentJob], bytes] = prove_segment) -> None:
        self.address, self.workers, self.timeout_s = address, workers, timeout_s
        self.task = task  # what a worker runs on a job (tests wrap it to stop mid-segment)
        self.cluster = self._client = None

    @property
    def client(self):
        """The Dask client, connected (and the LocalCluster started) on first use."""
        if self._client is None:
            self._connect()
        return self._client

    def _connect(self) -> None:
        from distributed import Client, LocalCluster

        address, workers, timeout_s = self.address, self.workers, self.timeout_s
        try:
            if address is None:
                self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                            processes=True, host="127.0.0.1", scheduler_port=0,
                                            dashboard_address=None, memory_limit=0,
                                            env={"NUMBA_NUM_THREADS": "1"},
                                            silence_logs=logging.ERROR)
                self._client = Client(self.cluster, timeout=timeout_s)
            else:
                self._client = Client(address, timeout=timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:
            self.close()
            raise WorkerFault(f"cannot reach the Dask cluster {address or '(local)'}: {exc}") \
                from None

    @property
    def window(self) -> int:
        """Jobs in flight: one per worker thread, plus one being prepared."""
        threads = sum(self.client.nthreads().values())
        return max(threads, 1) + 1

    def executor(self) -> Executor:
        """A concurrent.futures executor on the cluster. The market's pool proves requests
        with any executor (``memjit.market.pool.request(..., executor=engine.executor())``):
        each operator's claim is then proven on a cluster worker."""
        return self.client.get_executor(pure=False)

    def worker_pids(self) -> dict[str, int]:
        """Each worker's address and process id (tests kill one)."""
        import os

        return self.client.run(os.getpid)

    def prove_all(self, jobs: Iterable[SegmentJob]) -> Iterator[bytes]:
        pending: deque = deque()
        for job in jobs:
            pending.append((job, self._submit(job)))
            while len(pending) >= self.window:
                yield self._result(*pending.popleft())
        while pending:
            yield self._result(*pending.popleft())

    def _submit(self, job: SegmentJob):
        with warnings.catch_warnings():  # a task carries its witness on purpose (see above)
            warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
            return self.client.submit(self.task, job, pure=False)

    def _result(self, job: SegmentJob, future) -> bytes:
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError
        from distributed.comm import CommClosedError

        lost = 0
        while True:
            try:
                return future.result()
            except (KilledWorker, CommClosedError, FutureCancelledError) as exc:
                lost += 1
                if lost > RESUBMITS:
                    raise WorkerFault(f"segment {job.segment.index} was lost {lost} times on "
                                      f"the cluster: {exc}") from None
                future = self._submit(job)

    def close(self) -> None:
        """Disconnect, and stop the LocalCluster this engine started."""
        if self._client is not None:
            self._client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.cluster = self._client = None

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
