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
from memjit.errors import MemjitError
from memjit.market.identity import load_or_create
from memjit.market.pool import MarketConfig
from memjit.market.pool import Operator as ProveFn
from memjit.market.rewards import RewardConfig
from memjit.node.client import NodeClient
from memjit.node.content import Fetcher
from memjit.node import genesis
from memjit.node.batches import BatchPublisher, proven_height
from memjit.node.follower import Follower
from memjit.node.gateway import Gateway
from memjit.node.log import log
from memjit.node.operator import OperatorRole
from memjit.node.replay import LOCAL_REPLAY_FILE, REPLAY_FILE, ReplayCache
from memjit.node.membership import NETWORK, Membership
from memjit.node.providers import Providers
from memjit.node.sequencer import Sequencer, registration_of, result_json
from memjit.node.state import VIEW_TTL_S, MarketView, ViewCache, worker_json
from memjit.node.wire import Frame, pack
from memjit.rollup.batcher import Batcher
from memjit.rollup.replica import Replica
from memjit.runtime.store import Store

NODE_KEY = "node"
SETTLE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class NodeConfig:
    """A node's configuration: state directory, name, sequencer URL, faucet grant (sequencer),
    batch interval, emission period (sequencer; None: a day), job deadline (gateway), prover
    processes (operator: the jobs it proves at once), dishonest actors, DHT bootstrap
    multiaddrs, libp2p port (0: a free one), whether it keeps a replica of the rollup and how
    long its gateway reuses a market view (memjit.node.state.ViewCache)."""

    home: Path
    name: str = "node"
    sequencer: str | None = None
    faucet: int = RewardConfig().faucet
    batch_interval_s: float = 30.0
    job_timeout_s: float = 120.0
    provers: int = 2
    cluster: str | None = None
    actors: Mapping[str, ProveFn] = field(default_factory=dict)
    bootstrap: tuple[str, ...] = ()
    p2p_port: int = 0
    follow: bool = False
    period_s: int | None = None
    view_ttl_s: float = VIEW_TTL_S

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
        # The sequencer's nonces (durable) and the gateway's and operator's are separate scopes:
        # a sequencer admits again the request its own gateway admitted (memjit.node.replay).
        self.replay = ReplayCache(home, durable=False,
                                  name=LOCAL_REPLAY_FILE if config.is_sequencer else REPLAY_FILE)
        self.sequencer_replay = ReplayCache(home) if config.is_sequencer else None
        self.fetcher = Fetcher(self.store)
        rewards = replace(RewardConfig(), faucet=config.faucet)
        if config.period_s is not None:
            rewards = replace(rewards, period_s=config.period_s)
        self.market = MarketConfig(rewards=rewards)
        role = ("sequencer" if config.is_sequencer else "follower" if config.follow
                else "operator")
        self.membership = Membership(home, self.identity, port=config.p2p_port, role=role)
        self.sequencer = None if not config.is_sequencer else Sequencer(
            home, self.store, Providers(self.fetcher, self.membership.providers),
            self.sequencer_replay,
            self.market, self.identity, config.batch_interval_s, config.job_timeout_s)
        self.upstream = None if config.sequencer is None else NodeClient(config.sequencer)
        self.genesis = genesis.load(home)
        if self.sequencer is not None:
            self.genesis = genesis.pin(home, self.sequencer.run(lambda: genesis.founding(
                self.sequencer.ledger, home, self.identity, NETWORK)))
            self.publisher = BatchPublisher(
                home, self.sequencer.run, lambda: self.sequencer.ledger, self.store,
                self.membership.provide_all, NETWORK, config.batch_interval_s)
        if self.genesis is not None:  # refuse any other sequencer's network record
            self.membership.discovery.pin_sequencers([self.genesis.sequencer])
        self.replica: Replica | None = None
        self.follower: Follower | None = None
        self.operator = OperatorRole(home, self.store, self.identity, self.replay, config.actors,
                                     config.provers, config.cluster)
        self.gateway = Gateway(self.identity, self.store, self.replay,
                               ViewCache(self.membership.located_view(self.view),
                                         config.view_ttl_s), self.deliver,
                               self.market, config.job_timeout_s, home / "deliveries")

    @property
    def roles(self) -> list[str]:
        """The roles this node plays."""
        return ["operator", "gateway"] + (["sequencer"] if self.sequencer else []) + (
            ["follower"] if self.config.follow else [])

    def start(self) -> None:
        """Join the DHT (publish this node's records, provide its workers' modules), learn the
        sequencer from the network record when only bootstrap addresses were given, pin the
        network's genesis (memjit.node.genesis), and start background work (the sequencer's
        batch commits and their proofs, a follower's replica, the operator's prover
        processes, the hand-over of deliveries a stopped gateway left)."""
        self.membership.start(self.url, self.config.bootstrap,
                              [w["cid"] for w in self.operator.served.values()])
        if self.upstream is None and self.sequencer is None:
            log("joined; reading the sequencer from the network record")
            record = self.membership.sequencer()
            if record is None:
                raise NetworkUnavailable("no sequencer record in the DHT: is the bootstrap "
                                         "node part of a running network?")
            self.upstream = NodeClient(record.endpoint)
            if self.genesis is None:
                self.genesis = genesis.learn(self.config.home, record.endpoint, NETWORK,
                                             record.owner)
        if self.genesis is None:  # --sequencer URL on a fresh home: trust on first use
            self.genesis = genesis.learn(self.config.home, self.upstream.url, NETWORK, None)
        self.membership.discovery.pin_sequencers([self.genesis.sequencer])
        if self.sequencer is not None:
            self.sequencer.start()
            self.publisher.start()
        if self.config.follow:
            self.replica = Replica(self.config.home, self.store, self.genesis.committee)
            self.follower = Follower(self.replica, self.fetcher, self.membership,
                                     lambda: self.upstream.url, self.url, NETWORK)
            self.follower.start()
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
        if self.follower is not None:
            self.follower.close()
        if self.sequencer is not None:
            self.publisher.close()
        self.membership.close()
        self.operator.close()
        self.gateway.close()
        if self.sequencer is not None:
            self.sequencer.close()
        if self.replica is not None:
            self.replica.close()
        self.replay.close()
        if self.sequencer_replay is not None:
            self.sequencer_replay.close()

    def status(self) -> dict:
        """Who this node is and what it does."""
        fields: dict[str, Any] = {"name": self.config.name, "url": self.url,
                                  "key": self.identity.public_key.hex(), "roles": self.roles,
                                  "sequencer": self.url if self.sequencer else self.upstream.url,
                                  "operated": sorted(self.operator.served),
                                  "peer_id": self.membership.peer_id,
                                  "p2p": self.membership.addrs,
                                  "peers": self.membership.peers(), **self.chain()}
        if self.sequencer is not None:
            fields.update(self.sequencer.run(lambda: {
                "workers": len(self.sequencer.ledger.workers()),
                "requests": self.sequencer.ledger.db.execute(
                    "SELECT count(*) FROM requests").fetchone()[0],
                "batches": self.sequencer.ledger.db.execute(
                    "SELECT count(*) FROM batches").fetchone()[0]}))
        return fields

    def chain(self) -> dict:
        """The height and state root of the rollup as this node knows it: the sequencer's
        last committed batch (and the last proven), a follower's replica, else what the
        sequencer says (None if it cannot be reached)."""
        if self.sequencer is not None:
            def read() -> dict:
                last = Batcher(self.sequencer.ledger, self.store, self.config.home).last()
                return {"height": 0 if last is None else last.header.number,
                        "proven": proven_height(self.sequencer.ledger),
                        "state_root": None if last is None
                        else last.header.state_root_after.hex()}
            return self.sequencer.run(read)
        if self.replica is not None:
            head = self.replica.head
            return {"height": self.replica.height,
                    "state_root": None if head is None else head.state_root_after.hex()}
        try:
            there = self.upstream.get("/v1/status")
        except MemjitError:
            return {"height": None, "state_root": None}
        return {"height": there.get("height"), "state_root": there.get("state_root")}

    def batches(self, after: int, limit: int) -> dict:
        """The batches this node holds above `after` (at most `limit`) and its proven height:
        the sequencer's committed ones (a bundle once proven), a follower's applied ones."""
        if self.sequencer is not None:
            refs = self.publisher.refs(after, limit) if limit else []
            height = self.sequencer.run(lambda: proven_height(self.sequencer.ledger))
        elif self.replica is not None:
            refs, height = self.replica.refs(after, limit), self.replica.height
        else:
            refs, height = [], 0
        return {"height": height, "batches": [r.to_json() for r in refs]}

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
        """Have the sequencer admit a registration; the worker (the gateway's cached market
        views are dropped: the registry changed)."""
        try:
            if self.sequencer is not None:
                return worker_json(self.sequencer.register(message))
            return self.upstream.post("/v1/registrations", message, SETTLE_TIMEOUT_S)
        finally:
            self.gateway.views.invalidate()

    def unbond(self, message: dict) -> dict:
        """Have the sequencer apply an unbond; the worker (cached views dropped)."""
        try:
            if self.sequencer is not None:
                return worker_json(self.sequencer.unbond(message))
            return self.upstream.post("/v1/unbonds", message)
        finally:
            self.gateway.views.invalidate()

    def stake(self, message: dict) -> dict:
        """Have the sequencer apply a validator stake change; the validator's bond (cached
        views dropped)."""
        try:
            if self.sequencer is not None:
                bond = self.sequencer.stake(message)
                return {**asdict(bond), "owner": bond.owner.hex()}
            return self.upstream.post("/v1/validators", message)
        finally:
            self.gateway.views.invalidate()

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
