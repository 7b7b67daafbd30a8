"""A test actor for node processes: the operator of digits_random that stalls (it never
answers in time), so that a test can kill or time out its node mid-request."""

from __future__ import annotations

import time

from memjit.runtime.sandbox import Limits
from memjit.runtime.store import cid_of
from memjit.workers import WORKERS_DIR

STALLED = WORKERS_DIR / "digits_random.wasm"


def stall(module: bytes, export: str, input_bytes: bytes, nonce: bytes, limits: Limits) -> bytes:
    """Never answer within a test's time (the node is killed first)."""
    time.sleep(60)
    raise TimeoutError("stalled")


def operators() -> dict:
    """The staller, by its worker's CID."""
    return {cid_of(STALLED.read_bytes()): stall}
