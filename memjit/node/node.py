"""One node: its key, content store, replay cache and roles, configured per node.

Every node serves its store by CID, verifies claims (the embedded verifier), reads the market
view, operates the workers its owners registered with it and serves requests as a gateway. A
node started with neither a sequencer URL nor bootstrap addresses is the sequencer of a new
network (the ledger's single writer); every other node forwards registrations, unbonds and
deliveries to its sequencer, which it learns from the DHT's network record (membership.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from memjit.discovery.host import NetworkUnavailable
from memjit.market.identity import load_or_create
from memjit.market.pool import MarketConfig
from memjit.market.pool import Operator as ProveFn
from memjit.market.rewards import RewardConfig
from memjit.node.client import NodeClient
from memjit.node.content import Fetcher
from memjit.node.gateway import Gateway
from memjit.node.log import log
from memjit.node.operator import OperatorRole
from memjit.node.replay import ReplayCache
from memjit.node.membership import Membership
from memjit.node.providers import Providers
from memjit.node.sequencer import Sequencer, registration_of, result_json
from memjit.node.state import MarketView, worker_json
from memjit.node.wire import Frame, pack
from memjit.runtime.store import Store

NODE_KEY = "node"
SETTLE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class NodeConfig:
    """A node's configuration: state directory, name, sequencer URL, faucet grant (sequencer),
    batch interval, job deadline (gateway), prover processes (operator: the jobs it proves at
    once), dishonest actors, DHT bootstrap multiaddrs and libp2p port (0: a free one)."""

    home: Path
    name: str = "node"
    sequencer: str | None = None
    faucet: int = RewardConfig().faucet
    batch_interval_s: float = 30.0
    job_timeout_s: float = 120.0
    provers: int = 2
    actors: Mapping[str, ProveFn] = field(default_factory=dict)
    bootstrap: tuple[str, ...] = ()
    p2p_port: int = 0

    @property
    def is_sequencer(self) -> bool:
        """A node given neither a sequencer URL nor bootstrap addresses starts a network."""
        return self.sequencer is None and not self.bootstrap


class Node:
    """A running node's state and roles (`url`: where it is reachable)."""

    def __init__(self, config: NodeConfig, url: str) -> None:
        self.config = config
        self.url = url.rstrip("/")
        home = Path(config.home)
        home.mkdir(parents=True, exist_ok=True)
        self.identity = load_or_create(home, NODE_KEY)
        self.store = Store(home)
        self.replay = ReplayCache(home, durable=config.is_sequencer)
        self.fetcher = Fetcher(self.store)
        self.market = MarketConfig(rewards=replace(RewardConfig(), faucet=config.faucet))
        self.membership = Membership(home, self.identity, port=config.p2p_port,
                                     role="sequencer" if config.is_sequencer else "operator")
        self.sequencer = None if not config.is_sequencer else Sequencer(
            home, self.store, Providers(self.fetcher, self.membership.providers), self.replay,
            self.market, self.identity, config.batch_interval_s, config.job_timeout_s)
        self.upstream = None if config.sequencer is None else NodeClient(config.sequencer)
        self.operator = OperatorRole(home, self.store, self.identity, self.replay, config.actors,
                                     config.provers)
        self.gateway = Gateway(self.identity, self.store, self.replay,
                               self.membership.located_view(self.view), self.deliver,
                               self.market, config.job_timeout_s, home / "deliveries")

    @property
    def roles(self) -> list[str]:
        """The roles this node plays."""
        return ["operator", "gateway"] + (["sequencer"] if self.sequencer else [])

    def start(self) -> None:
        """Join the DHT (publish this node's records, provide its workers' modules), learn the
        sequencer from the network record when only bootstrap addresses were given, and start
        background work (the sequencer's batch commits, the operator's prover processes, the
        hand-over of deliveries a stopped gateway left)."""
        self.membership.start(self.url, self.config.bootstrap,
                              [w["cid"] for w in self.operator.served.values()])
        if self.upstream is None and self.sequencer is None:
            log("joined; reading the sequencer from the network record")
            record = self.membership.sequencer()
            if record is None:
                raise NetworkUnavailable("no sequencer record in the DHT: is the bootstrap "
                                         "node part of a running network?")
            self.upstream = NodeClient(record.endpoint)
        if self.sequencer is not None:
            self.sequencer.start()
        self.operator.warm()
        self.gateway.resume()

    def accept(self, module: bytes, message: object) -> dict:
        """Take on a worker (its owner's signed registration): have the sequencer admit it,
        then operate it and provide its module in the DHT (a worker the sequencer refused is
        not operated); the registered worker."""
        envelope = self.operator.accept(module, message, self.url)
        worker = self.register(envelope.to_json())
        self.operator.operate(envelope)
        self.membership.provide(registration_of(envelope.body)[0].cid)
        return worker

    def close(self) -> None:
        """Leave the DHT, stop background work and close the databases."""
        self.membership.close()
        self.operator.close()
        self.gateway.close()
        if self.sequencer is not None:
            self.sequencer.close()
        self.replay.close()

    def status(self) -> dict:
        """Who this node is and what it does."""
        fields: dict[str, Any] = {"name": self.config.name, "url": self.url,
                                  "key": self.identity.public_key.hex(), "roles": self.roles,
                                  "sequencer": self.url if self.sequencer else self.upstream.url,
                                  "operated": sorted(self.operator.served),
                                  "peer_id": self.membership.peer_id,
                                  "p2p": self.membership.addrs}
        if self.sequencer is not None:
            fields.update(self.sequencer.run(lambda: {
                "workers": len(self.sequencer.ledger.workers()),
                "requests": self.sequencer.ledger.db.execute(
                    "SELECT count(*) FROM requests").fetchone()[0],
                "batches": self.sequencer.ledger.db.execute(
                    "SELECT count(*) FROM batches").fetchone()[0]}))
        return fields

    def view(self, task: str, requester: bytes) -> MarketView:
        """The market view of `task` for `requester` (the sequencer's, read over HTTP)."""
        if self.sequencer is not None:
            return self.sequencer.view(task, requester)
        return MarketView.from_json(self.upstream.get("/v1/state/market", task=task,
                                                      requester=requester.hex()))

    def deliver(self, delivery: Frame) -> dict:
        """Hand a signed delivery (and its claims) to the sequencer; its settlement (which
        may wait for the sequencer's own jobs, memjit.node.faults)."""
        if self.sequencer is not None:
            result, spent = self.sequencer.settle(delivery)
            return {**result_json(result), "timings": spent}
        return self.upstream.post_bytes(
            "/v1/deliveries", pack(delivery.message, list(delivery.attachments.values())),
            SETTLE_TIMEOUT_S + self.config.job_timeout_s)

    def register(self, message: dict) -> dict:
        """Have the sequencer admit a registration; the worker."""
        if self.sequencer is not None:
            return worker_json(self.sequencer.register(message))
        return self.upstream.post("/v1/registrations", message, SETTLE_TIMEOUT_S)

    def unbond(self, message: dict) -> dict:
        """Have the sequencer apply an unbond; the worker."""
        if self.sequencer is not None:
            return worker_json(self.sequencer.unbond(message))
        return self.upstream.post("/v1/unbonds", message)

    def stake(self, message: dict) -> dict:
        """Have the sequencer apply a validator stake change; the validator's bond."""
        if self.sequencer is not None:
            bond = self.sequencer.stake(message)
            return {**asdict(bond), "owner": bond.owner.hex()}
        return self.upstream.post("/v1/validators", message)

    def workers(self, task: str | None) -> dict:
        """The registered workers (of `task`)."""
        if self.sequencer is not None:
            return {"workers": [worker_json(w) for w in self.sequencer.run(
                lambda: self.sequencer.ledger.workers(task))]}
        return self.upstream.get("/v1/workers", task=task)

    def balance(self, key: bytes) -> dict:
        """An owner key's holdings."""
        if self.sequencer is not None:
            held = self.sequencer.run(lambda: self.sequencer.ledger.holdings(key))
            return {**held.__dict__, "earned": held.earned, "public_key": key.hex()}
        return self.upstream.get(f"/v1/balance/{key.hex()}")
