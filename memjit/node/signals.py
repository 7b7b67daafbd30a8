"""Stopping a node while it starts: SIGTERM and SIGINT end a node cleanly (exit 0) whenever
they come, before its server runs too (loading its modules, joining the DHT, learning the
sequencer, starting its provers).

`stopping()` is entered as the `node start` command begins (before the heavy imports): the
first SIGTERM/SIGINT raises `Stopped` in the main thread, wherever the start is waiting;
later ones are only logged. uvicorn's own handlers take over while the server runs.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from memjit.node.log import log

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class Stopped(Exception):
    """A SIGTERM or SIGINT while the node starts."""


@contextmanager
def handling(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Within: `handler` answers SIGTERM and SIGINT; the previous handlers are restored after."""
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def stopping() -> Iterator[None]:
    """Within: the first SIGTERM/SIGINT raises Stopped, later ones are logged; the previous
    handlers are restored after."""
    raised = False

    def stop(sig: int, frame: object) -> None:
        nonlocal raised
        log(f"{signal.Signals(sig).name}: stopping" + (" (already)" if raised else ""))
        if not raised:
            raised = True
            raise Stopped(signal.Signals(sig).name)

    with handling(stop):
        yield


def only_log() -> None:
    """From now on a SIGTERM/SIGINT is only logged (the node is stopping already)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda sig, frame: log(f"{signal.Signals(sig).name}: stopping "
                                                  "(already)"))
