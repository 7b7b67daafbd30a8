"""The explorer's source over a node (memjit.explorer.source.ExplorerSource), so that every node
serves the explorer at `/` of its HTTP address.

The sequencer holds the ledger: it reads it as a local home is read (the queries of
memjit.explorer.local.LocalSource, composed, read-only connections beside the writer thread).
Every other node reads the same views from its sequencer's explorer API (`/api/explorer/...`,
the sequencer serves it too), as it reads the market view: a read view, trusted like the
market view is (docs/node.md). `network()` is this node's own: its role, the height and state
root of the network's last committed batch, and its peers (the sequencer, the operators the
workers name). `request()` sends the request through this node's own gateway, signed and paid
by the node's requester key (`--home/keys/requester`, created on first use), and reports each
worker's answer as it arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from memjit.errors import BadInput, InternalError, MemjitError, Rejected, WorkerFault
from memjit.explorer.local import REQUESTER, LocalSource
from memjit.explorer.source import (PPM, Answer, AuditResult, BatchDetail, BatchRow,
                                    CallOutcome, CallRow, ClaimCheck, LeaderRow, NetworkInfo,
                                    NotFound, Peer, RequestOutcome, TaskInfo, WorkerDetail,
                                    view_from_json)
from memjit.market.identity import load_or_create
from memjit.market.tasks import get_task
from memjit.node import client
from memjit.node.node import Node

V = TypeVar("V")
READ_TIMEOUT_S = 30.0
AUDIT_TIMEOUT_S = 300.0
API = "/api/explorer"
ERRORS_BY_STATUS: dict[int, type[MemjitError]] = {404: NotFound, 400: BadInput, 413: BadInput,
                                                  422: BadInput, 409: Rejected, 429: Rejected,
                                                  502: WorkerFault}


class NodeSource:
    """ExplorerSource over `node` (see the module doc); `top_k` workers answer a request."""

    def __init__(self, node: Node, *, requester: str = REQUESTER, top_k: int = 5) -> None:
        self.node = node
        self.requester = requester
        self.top_k = top_k
        self._local = LocalSource(node.config.home) if node.sequencer is not None else None

    # --- reads: the sequencer's own ledger, or its explorer API ---------------------------------

    def _get(self, path: str, timeout_s: float = READ_TIMEOUT_S, **params: Any) -> Any:
        """A JSON answer of the sequencer's explorer API; its errors as the same typed errors."""
        assert self.node.upstream is not None
        url = f"{self.node.upstream.url}{API}{path}"
        try:
            response = httpx.get(url, params=params, timeout=timeout_s)
        except httpx.TimeoutException:
            raise Rejected(f"the sequencer did not answer {path} in time") from None
        except httpx.HTTPError as exc:
            raise Rejected(f"cannot reach the sequencer {self.node.upstream.url}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        raise ERRORS_BY_STATUS.get(response.status_code, InternalError)(
            error if isinstance(error, str) else f"the sequencer answered HTTP "
                                                 f"{response.status_code} on {path}")

    def _view(self, cls: type[V], path: str, **params: Any) -> V:
        return view_from_json(cls, self._get(path, **params))

    def _views(self, cls: type[V], path: str, **params: Any) -> list[V]:
        body = self._get(path, **params)
        if not isinstance(body, list):
            raise BadInput(f"malformed answer of the sequencer on {path}")
        return [view_from_json(cls, x) for x in body]

    def tasks(self) -> list[TaskInfo]:
        return self._local.tasks() if self._local else self._views(TaskInfo, "/tasks")

    def leaderboard(self, task: str) -> list[LeaderRow]:
        if self._local:
            return self._local.leaderboard(task)
        return self._views(LeaderRow, f"/tasks/{_segment(task)}/leaderboard")

    def usefulness_history(self, task: str) -> dict[str, list[tuple[float, float]]]:
        if self._local:
            return self._local.usefulness_history(task)
        body = self._get(f"/tasks/{_segment(task)}/history")
        try:
            return {str(w): [(float(t), float(u)) for t, u in points]
                    for w, points in body.items()}
        except (AttributeError, TypeError, ValueError):
            raise BadInput("malformed usefulness history from the sequencer") from None

    def worker(self, worker_id: str) -> WorkerDetail:
        if self._local:
            return self._local.worker(worker_id)
        return self._view(WorkerDetail, f"/workers/{_segment(worker_id)}")

    def calls(self, worker_id: str, limit: int = 100) -> list[CallRow]:
        if self._local:
            return self._local.calls(worker_id, limit)
        return self._views(CallRow, f"/workers/{_segment(worker_id)}/calls", limit=limit)

    def claim(self, cid: str) -> ClaimCheck:
        if self._local:
            return self._local.claim(cid)
        return self._view(ClaimCheck, f"/claims/{_segment(cid)}")

    def batches(self) -> list[BatchRow]:
        return self._local.batches() if self._local else self._views(BatchRow, "/batches")

    def batch(self, number: int) -> BatchDetail:
        if self._local:
            return self._local.batch(number)
        return self._view(BatchDetail, f"/batches/{int(number)}")

    def audit(self, number: int) -> AuditResult:
        if self._local:
            return self._local.audit(number)
        return view_from_json(AuditResult, self._get(f"/batches/{int(number)}/audit",
                                                     AUDIT_TIMEOUT_S))

    # --- this node -------------------------------------------------------------------------------

    def network(self) -> NetworkInfo:
        """This node's roles, the network's height and state root, its peers: the sequencer
        (seen from the others) and the operator nodes the workers name, at the sequencer's
        height (they read its state)."""
        me = self.node.identity.public_key.hex()
        role = ", ".join(reversed(self.node.roles))
        if self._local:
            here = self._local.network()
            operators = self.node.sequencer.directory.operators()
            peers = tuple(Peer(op.key.hex(), op.url, "operator", here.height)
                          for op in operators if op.key.hex() != me)
            return NetworkInfo(role, here.height, here.state_root, here.pending_facts, peers)
        there = self._view(NetworkInfo, "/network")
        key = self.node.upstream.get("/v1/status").get("key", "")
        peers = (Peer(str(key), self.node.upstream.url, "sequencer", there.height),
                 *(p for p in there.peers if p.id != me))
        return NetworkInfo(role, there.height, there.state_root, there.pending_facts, peers)

    def request(self, task: str, input_bytes: bytes, label: int | None = None,
                on_answer: Callable[[Answer], None] | None = None) -> RequestOutcome:
        """Serve the request through this node's gateway (signed and paid by the requester key
        of the node's home; input checked before the key is made)."""
        info = get_task(self.node.store, task)
        info.check_input(input_bytes)
        if label is not None and not 0 <= label < info.labels:
            raise BadInput(f"label must be in 0..{info.labels - 1}, got {label}")
        owners = {row.id: row.owner for row in self.leaderboard(task)}

        def delivered(worker: str, entry: dict) -> None:
            if on_answer is not None:
                fault = entry.get("fault")
                on_answer(Answer(worker, owners.get(worker, ""),
                                 None if fault is None else str(fault)))

        identity = load_or_create(self.node.config.home, self.requester)
        message = client.request(identity, task, input_bytes, label, self.top_k).to_json()
        served = self.node.gateway.serve(message, on_delivery=delivered)
        settled = self.node.gateway.wait_settlement(served["nonce"])
        settlement = settled["settlement"]
        if settlement is None:
            raise Rejected(f"the sequencer did not settle the request: "
                           f"{settled['error'] or settled['status']}")
        calls = tuple(CallOutcome(c["worker"], owners.get(c["worker"], ""), c["outcome"],
                                  c["result"], c["score"] / PPM, c["fee"], c["slashed"],
                                  c["claim_cid"], c["reason"]) for c in settlement["calls"])
        reference = served["reference"]
        return RequestOutcome(settlement["seq"], reference["answer"], reference["basis"],
                              served["answer"], served["worker"], calls)


def _segment(text: str) -> str:
    """`text` as one URL path segment (no slash, no dot segment: BadInput otherwise)."""
    if not text or "/" in text or text in (".", "..") or "?" in text or "#" in text:
        raise BadInput(f"bad name {text!r}")
    return text
