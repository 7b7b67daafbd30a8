"""A node's membership in its network's DHT (memjit.discovery): its libp2p host, its signed
node record, the sequencer it learns from the network record, and where workers' operators are.

Every node runs a `Discovery` host on 127.0.0.1 with a peer seed kept in its home (the peer ID
survives restarts), publishes its node record (role, HTTP endpoint, the node key as owner) and
republishes it every TTL/2; the sequencer also publishes the network record. An operator
provides the CID of every worker it runs (the module it serves). A gateway locates a worker's
operator by CID (`find_providers`, else `find_owner`), keeping only records owned by the
operator key the worker's registration names: nothing but the bootstrap addresses is static.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from memjit.discovery import Discovery, NodeRecord
from memjit.errors import MemjitError
from memjit.market.identity import Identity
from memjit.node.log import log
from memjit.node.state import MarketView, OperatorRef

NETWORK = "main"
SEED_FILE = "keys/node.p2p"
RECORD_TTL_S = 3600
SEQUENCER_WAIT_S = 30.0
LOCATE_CACHE_S = 60.0


def peer_seed(home: Path) -> bytes:
    """The 32-byte libp2p seed kept in `home` (created once, mode 0600)."""
    path = Path(home) / SEED_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as sink:
            sink.write(secrets.token_bytes(32))
    return path.read_bytes()


class Membership:
    """The node's Discovery host, the records it keeps published and the CIDs it provides."""

    def __init__(self, home: Path, identity: Identity, *, role: str, port: int = 0,
                 network: str = NETWORK) -> None:
        self.identity = identity
        self.role = role
        self.discovery = Discovery(peer_seed(home), network=network, port=port)
        self.provided: set[str] = set()
        self._endpoint = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._located: dict[tuple[str, bytes], tuple[float, str]] = {}

    @property
    def addrs(self) -> list[str]:
        """The host's multiaddrs (…/p2p/<peer ID>)."""
        return self.discovery.addrs

    @property
    def peer_id(self) -> str:
        """The host's libp2p peer ID."""
        return self.discovery.peer_id

    def start(self, endpoint: str, bootstrap: Sequence[str],
              provide: Sequence[str] = ()) -> None:
        """Join through `bootstrap` (none: a new network), publish this node's records and
        provide `provide`; then republish every TTL/2 in a thread until `close`."""
        self._endpoint = endpoint
        self.discovery.start(bootstrap)
        self.provided.update(provide)
        self.publish()
        self._thread = threading.Thread(target=self._republish, daemon=True,
                                        name="memjit-republish")
        self._thread.start()

    def publish(self) -> None:
        """Sign and publish a fresh node record (and the network record, at the sequencer);
        provide every CID this node serves."""
        record = self.discovery.sign_record(self.identity, role=self.role,
                                            endpoint=self._endpoint, ttl=RECORD_TTL_S)
        self.discovery.publish_node(record)
        if self.role == "sequencer":
            self.discovery.publish_network(record)
        for cid in sorted(self.provided):
            self.discovery.provide(cid)

    def provide(self, cid: str) -> None:
        """Announce that this node serves `cid` (and keep announcing it; before `start`, only
        remember it)."""
        self.provided.add(cid)
        if self._thread is not None:
            self.discovery.provide(cid)

    def provide_all(self, cids: Sequence[str]) -> None:
        """Provide several CIDs at once (each a DHT operation of its own)."""
        def one(cid: str) -> None:
            try:
                self.provide(cid)
            except (MemjitError, TimeoutError) as exc:  # kept: the republish retries it
                log(f"providing {cid} failed: {exc}")

        with ThreadPoolExecutor(min(8, max(1, len(cids)))) as pool:
            list(pool.map(one, cids))

    def peers(self) -> list[str]:
        """The peer IDs in the host's routing table (none while the host is not running)."""
        try:
            return self.discovery.peers()
        except MemjitError:
            return []

    def sequencer(self, wait_s: float = SEQUENCER_WAIT_S) -> NodeRecord | None:
        """The network record's sequencer, polled (bounded) until it is published."""
        end = time.monotonic() + wait_s
        while True:
            record = self.discovery.sequencer()
            if record is not None or time.monotonic() >= end:
                return record
            time.sleep(0.5)

    def locate(self, cid: str, key: bytes) -> str | None:
        """The HTTP endpoint of the node owned by `key` that serves worker module `cid`: a
        provider of the CID whose record `key` signed, else `key`'s newest node record."""
        now = time.monotonic()
        with self._lock:
            hit = self._located.get((cid, key))
        if hit is not None and now - hit[0] < LOCATE_CACHE_S:
            return hit[1]
        found = next((r for r in self.discovery.find_providers(cid) if r.owner == key), None) \
            or self.discovery.find_owner(key)
        if found is None:
            return None
        with self._lock:
            self._located[(cid, key)] = (now, found.endpoint)
        return found.endpoint

    def providers(self, cid: str) -> list[str]:
        """The HTTP endpoints of the nodes that provide `cid` in the DHT (their signed node
        records' endpoints; not this node)."""
        return [r.endpoint for r in self.discovery.find_providers(cid)
                if r.endpoint.rstrip("/") != self._endpoint.rstrip("/")]

    def located_view(self, view: Callable[[str, bytes], MarketView]
                     ) -> Callable[[str, bytes], MarketView]:
        """`view`, its operators replaced by the endpoints found in the DHT (a worker whose
        operator is not found has none: its job is a fault)."""
        def located(task: str, requester: bytes) -> MarketView:
            seen = view(task, requester)
            cids = {w.id: w.cid for w in seen.workers}
            refs = list(seen.operators.items())
            with ThreadPoolExecutor(max(1, len(refs))) as pool:
                urls = list(pool.map(lambda item: self.locate(cids[item[0]], item[1].key),
                                     refs))
            operators = {wid: OperatorRef(url, ref.key)
                         for (wid, ref), url in zip(refs, urls) if url is not None}
            log(f"operators of {len(operators)}/{len(refs)} {task} workers found via the DHT")
            return MarketView(seen.workers, seen.trials, seen.fees, operators, seen.funds,
                              seen.labeller_stake)
        return located

    def close(self) -> None:
        """Stop republishing and leave the network (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        self.discovery.close()

    def _republish(self) -> None:
        while not self._stop.wait(RECORD_TTL_S / 2):
            try:
                self.publish()
            except MemjitError as exc:
                log(f"republishing the node record failed: {exc}")
