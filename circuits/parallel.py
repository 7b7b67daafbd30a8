"""Thread control for the numba kernels."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from numba import get_num_threads, set_num_threads


@contextmanager
def one_thread_if_small(work: int, threshold: int) -> Iterator[None]:
    """Run a parallel kernel on the calling thread alone when `work` < `threshold`.

    Waking numba's worker pool costs more than small jobs (the top Merkle levels, small NTTs),
    and a worker descheduled by another process would stall every parallel region.
    set_num_threads only affects the calling thread, and is restored afterwards.
    """
    if work >= threshold:
        yield
        return
    threads = get_num_threads()
    set_num_threads(1)
    try:
        yield
    finally:
        set_num_threads(threads)
