"""A gateway's market views (memjit.node.state.ViewCache): read from the sequencer once per
validity, shared by the requests that arrive meanwhile, charged with the quotes the gateway
accepted, dropped when the market changes under it, and never the ground of a refusal."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from helpers import Clock
from memjit.errors import Rejected
from memjit.market.identity import load_or_create
from memjit.market.ledger import Worker
from memjit.market.pool import MarketConfig
from memjit.market.tasks import read_test_set
from memjit.node import client as messages
from memjit.node.gateway import Gateway
from memjit.node.replay import ReplayCache
from memjit.node.state import MarketView, OperatorRef, ViewCache
from memjit.node.wire import pack
from memjit.runtime.store import Store

IMAGES, _ = read_test_set()


def worker(name: str) -> Worker:
    return Worker(id=name * 32, owner=bytes(48), cid=f"cid-{name}", task="digits", vk=None,
                  stake=1000, usefulness=0, registered_at=0.0, last_used_at=None,
                  unbonding_amount=0, unbonding_at=None, status="active")


def view(workers: tuple[Worker, ...] = (), funds: int = 100, fee: int = 10) -> MarketView:
    return MarketView(workers, {w.id: 0 for w in workers}, {w.id: fee for w in workers},
                      {w.id: OperatorRef("http://127.0.0.1:9", bytes(48)) for w in workers},
                      funds, 0)


class Reads:
    """A sequencer's view, counted (and slow, when `wait_s`)."""

    def __init__(self, *views: MarketView, wait_s: float = 0.0) -> None:
        self.views = list(views)
        self.wait_s = wait_s
        self.count = 0

    def __call__(self, task: str, requester: bytes) -> MarketView:
        self.count += 1
        time.sleep(self.wait_s)
        return self.views[min(self.count, len(self.views)) - 1]


def test_a_view_is_read_once_per_validity_and_again_when_dropped() -> None:
    clock, reads = Clock(0.0), Reads(view(funds=1), view(funds=2), view(funds=3), view(funds=4))
    views = ViewCache(reads, ttl_s=2.0, clock=clock)
    assert views.get("digits", b"r").funds == 1
    clock.now = 1.9
    assert views.get("digits", b"r").funds == 1 and reads.count == 1
    assert views.get("digits", b"other").funds == 2  # another requester: its own view
    clock.now = 2.0
    assert views.get("digits", b"r").funds == 3 and reads.count == 3  # expired
    views.invalidate()
    assert views.get("digits", b"r").funds == 4 and reads.count == 4
    assert views.get("digits", b"r", fresh=True).funds == 4 and reads.count == 5
    assert ViewCache(reads, ttl_s=0.0).get("digits", b"r") is not None  # 0: no reuse


def test_requests_arriving_during_a_read_share_it() -> None:
    reads = Reads(view(funds=7), wait_s=0.2)
    views = ViewCache(reads)
    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(views.get("digits", b"r").funds))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [7] * 4 and reads.count == 1


def test_a_cached_view_is_charged_with_the_quotes_accepted() -> None:
    views = ViewCache(Reads(view(funds=100)))
    views.get("digits", b"r")
    views.charge("digits", b"r", 30)
    views.charge("digits", b"other", 50)  # nothing cached: nothing to charge
    assert views.get("digits", b"r").funds == 70


@pytest.fixture
def gateway_of(tmp_path: Path):
    def make(views: ViewCache, deliver=lambda frame: {}) -> Gateway:
        return Gateway(load_or_create(tmp_path, "gw"), Store(tmp_path), ReplayCache(None),
                       views, deliver, MarketConfig())
    return make


def request(home: Path, top_k: int = 1) -> dict:
    return messages.request(load_or_create(home, "requester"), "digits", IMAGES[0].tobytes(),
                            None, top_k).to_json()


def test_a_gateway_refuses_only_on_a_fresh_view(gateway_of, tmp_path: Path) -> None:
    """A cached view that says the requester cannot pay, or that no worker serves the task, is
    read again before the request is refused."""
    for cached in (view((worker("a"),), funds=5), view()):
        reads = Reads(cached, view())  # the sequencer's fresh answer: no worker at all
        gateway = gateway_of(ViewCache(reads))
        gateway.views.get("digits", load_or_create(tmp_path, "requester").public_key)
        with pytest.raises(Rejected, match="no active worker"):
            gateway.serve(request(tmp_path))
        assert reads.count == 2


def test_a_refused_settlement_drops_the_cached_views(gateway_of, tmp_path: Path) -> None:
    def refuse(frame: object) -> dict:
        raise Rejected("worker is not an active worker of task 'digits'")

    reads = Reads(view(funds=1), view(funds=2))
    gateway = gateway_of(ViewCache(reads), refuse)
    assert gateway.views.get("digits", b"r").funds == 1
    gateway._hand_over("ab" * 32, pack({"kind": "delivery"}, []))
    assert gateway.wait_settlement("ab" * 32, 30)["status"] == "refused"
    gateway.close()
    assert gateway.views.get("digits", b"r").funds == 2 and reads.count == 2
