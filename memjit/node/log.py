"""The node's event log: one line per event on stderr, time-stamped (UTC), and the phase
timings some lines carry."""

from __future__ import annotations

import sys
import time


def log(line: str) -> None:
    """Write one event line."""
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    sys.stderr.write(f"{stamp} {line}\n")
    sys.stderr.flush()


def since(t: float) -> tuple[float, float]:
    """The seconds since `t` (a time.perf_counter() value), and now: a phase's timing."""
    now = time.perf_counter()
    return now - t, now
