"""A gateway's hand-over of deliveries to the sequencer (memjit.node.gateway): tried again while
the sequencer cannot be reached or does not answer, in order, until its answer settles or
refuses the delivery; a delivery given up on or left at close stays spooled and is handed over
at the next start. The node client's transport failures are typed apart from a node's answers
(a closed port, a listener that never answers: 127.0.0.1 only)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from memjit.errors import BadInput, InternalError, Rejected
from memjit.market.identity import load_or_create
from memjit.market.pool import MarketConfig
from memjit.node.client import NoAnswer, NodeClient, Unreachable
from memjit.node.gateway import MAX_SEQUENCER_ERRORS, RETRY_MAX_S, SPOOLED, Gateway
from memjit.node.replay import ReplayCache
from memjit.node.state import ViewCache
from memjit.node.wire import pack
from memjit.runtime.store import Store

DELIVERY = pack({"kind": "delivery"}, [])


class Sequencer:
    """A `deliver` that fails with the given errors first, then settles; every call kept."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, frame: object) -> dict:
        with self.lock:
            self.calls.append(time.monotonic())
            if self.failures:
                raise self.failures.pop(0)
        return {"settled": len(self.calls)}


class Waits(threading.Event):
    """The gateway's closing event, recording each delay it waits instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.delays.append(timeout)
        return self.is_set()


def gateway(home: Path, deliver, retry_s: float = 0.01) -> Gateway:
    return Gateway(load_or_create(home, "gw"), Store(home), ReplayCache(None),
                   ViewCache(lambda task, requester: None), deliver, MarketConfig(),
                   spool=home / "deliveries", retry_s=retry_s)


def spooled(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "deliveries").glob(f"*{SPOOLED}"))


def test_an_unreachable_or_silent_sequencer_is_tried_again_until_it_settles(tmp_path):
    seq = Sequencer(Unreachable("cannot reach node"), NoAnswer("did not answer in time"),
                    Unreachable("cannot reach node"))
    gw = gateway(tmp_path, seq, retry_s=0.5)
    gw._closing = Waits()
    gw._hand_over("aa" * 32, DELIVERY)
    gw._hand_over("bb" * 32, DELIVERY)  # queued behind: handed over after the first, in order
    first, second = gw.wait_settlement("aa" * 32, 30), gw.wait_settlement("bb" * 32, 30)
    gw.close()
    assert first == {"status": "settled", "settlement": {"settled": 4}, "error": None}
    assert second["settlement"] == {"settled": 5}
    assert gw._closing.delays == [0.5, 1.0, 2.0]  # doubling from retry_s
    assert spooled(tmp_path) == []


def test_the_delay_stops_doubling_at_its_cap(tmp_path):
    gw = gateway(tmp_path, Sequencer(*[Unreachable("cannot reach node")] * 4), retry_s=10.0)
    gw._closing = Waits()
    gw._hand_over("aa" * 32, DELIVERY)
    assert gw.wait_settlement("aa" * 32, 30)["status"] == "settled"
    gw.close()
    assert gw._closing.delays == [10.0, 20.0, RETRY_MAX_S, RETRY_MAX_S]


def test_a_refusal_ends_the_delivery_at_once(tmp_path):
    seq = Sequencer(Rejected("already settled (replay)"))
    gw = gateway(tmp_path, seq)
    gw._hand_over("aa" * 32, DELIVERY)
    assert gw.wait_settlement("aa" * 32, 30) == {
        "status": "refused", "settlement": None, "error": "already settled (replay)"}
    gw.close()
    assert len(seq.calls) == 1 and spooled(tmp_path) == []


def test_a_failing_sequencer_is_given_up_on_and_the_delivery_resumed_later(tmp_path):
    seq = Sequencer(*[InternalError("HTTP 500")] * MAX_SEQUENCER_ERRORS)
    gw = gateway(tmp_path, seq)
    gw._hand_over("aa" * 32, DELIVERY)
    deadline = time.monotonic() + 30
    while len(seq.calls) < MAX_SEQUENCER_ERRORS and time.monotonic() < deadline:
        time.sleep(0.01)
    gw.close()
    assert len(seq.calls) == MAX_SEQUENCER_ERRORS
    assert gw.settlement("aa" * 32) == {"status": "pending", "settlement": None,
                                       "error": "HTTP 500"}
    assert spooled(tmp_path) == ["aa" * 32 + SPOOLED]
    again = gateway(tmp_path, Sequencer())  # the next start: the sequencer is back
    assert again.resume() == 1
    assert again.wait_settlement("aa" * 32, 30)["status"] == "settled"
    again.close()
    assert spooled(tmp_path) == []


def test_closing_while_waiting_to_try_again_keeps_the_delivery(tmp_path):
    seq = Sequencer(*[Unreachable("cannot reach node")] * 100)
    gw = gateway(tmp_path, seq, retry_s=60.0)
    gw._hand_over("aa" * 32, DELIVERY)
    deadline = time.monotonic() + 30
    while not seq.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    gw.close()  # does not sit out the 60 s delay
    assert time.monotonic() - start < 10 and len(seq.calls) == 1
    assert gw.settlement("aa" * 32)["status"] == "pending"
    assert spooled(tmp_path) == ["aa" * 32 + SPOOLED]


def test_transport_failures_are_typed_apart_from_answers():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(Unreachable, match="cannot reach node"):
            NodeClient(f"127.0.0.1:{port}", timeout_s=5).get("/v1/status")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts (the kernel does), never answers
        with pytest.raises(NoAnswer, match="did not answer"):
            NodeClient(f"127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.3).get("/v1/status")
    # the CLI's exit codes are unchanged: 2 for an unreachable node, 1 for no answer
    assert issubclass(Unreachable, BadInput) and issubclass(NoAnswer, Rejected)
