"""The node's event log: one line per event on stderr, time-stamped (UTC)."""

from __future__ import annotations

import sys
import time


def log(line: str) -> None:
    """Write one event line."""
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    sys.stderr.write(f"{stamp} {line}\n")
    sys.stderr.flush()
