"""The HTTP client of a node's API (used by the CLI, and by nodes to reach each other).

A client signs its messages with the owner's or requester's key kept in its own --home
(`registration`, `unbond`, `request` below). An error answer of a node (JSON {"error", "type"})
is raised as the same typed error of memjit.errors, so that a command run against a node exits
as it would on a local home.

The client is what `memjit request --node` runs per request, so it stays light: HTTP through
the standard library (httpx costs 0.2-0.5 s of imports), and the registry and content store
(the prover behind them) only for a registration.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from memjit.errors import BadInput, InternalError, MemjitError, Rejected, WorkerFault
from memjit.market.identity import Identity
from memjit.node.messages import Envelope, seal

ERRORS: dict[str, type[MemjitError]] = {"BadInput": BadInput, "Oversized": BadInput,
                                        "UnsupportedModule": BadInput, "MissingBlock": BadInput,
                                        "Rejected": Rejected, "Refused": Rejected,
                                        "WrongBlock": Rejected, "WorkerFault": WorkerFault}


class Unreachable(BadInput):
    """No exchange with the node took place (no connection, or it broke before an answer): a
    transport failure, not the node's answer (so a caller may try again)."""


class NoAnswer(Rejected):
    """The node did not answer in time: it may or may not have acted on the call."""


def node_url(text: str) -> str:
    """A node's base URL from `HOST:PORT` or a URL (BadInput if neither)."""
    url = text.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 (a malformed port raises here)
    except ValueError:
        raise BadInput(f"bad node address {text!r}: expected HOST:PORT or http://HOST:PORT")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise BadInput(f"bad node address {text!r}: expected HOST:PORT or http://HOST:PORT")
    return url


class NodeClient:
    """Calls to one node's API."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = node_url(url)
        self.timeout_s = timeout_s

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON answer."""
        return self._call("GET", path, params={k: v for k, v in params.items()
                                               if v is not None})

    def post(self, path: str, body: Any, timeout_s: float | None = None) -> Any:
        """POST a JSON body; the JSON answer."""
        return self._call("POST", path, payload=body, timeout=timeout_s or self.timeout_s)

    def post_bytes(self, path: str, body: bytes, timeout_s: float | None = None) -> Any:
        """POST a binary body (a frame: memjit.node.wire); the JSON answer."""
        from memjit.node.wire import MEDIA_TYPE

        return self._call("POST", path, body=body, content_type=MEDIA_TYPE,
                          timeout=timeout_s or self.timeout_s)

    def settlement(self, nonce: str, timeout_s: float = 120.0, step_s: float = 0.05) -> dict:
        """Wait (bounded) until the gateway's delivery of the request answered with `nonce`
        is settled or refused; its status, settlement and error (status pending if it is not
        done after `timeout_s`)."""
        give_up = time.monotonic() + timeout_s
        while True:
            out = self.get(f"/v1/settlements/{nonce}")
            if out["status"] != "pending" or time.monotonic() > give_up:
                return out
            time.sleep(step_s)

    def _call(self, method: str, path: str, params: dict | None = None, payload: Any = None,
              timeout: float | None = None, body: bytes | None = None,
              content_type: str = "application/json") -> Any:
        """One HTTP exchange (a connection of its own); the JSON answer, or the node's error
        raised as its typed error."""
        target = urlsplit(self.url)
        query = f"?{urlencode(params)}" if params else ""
        if payload is not None:
            body = json.dumps(payload).encode()
        connection = _connection(target.scheme, target.netloc, timeout or self.timeout_s)
        try:
            connection.request(method, target.path + path + query, body=body,
                               headers={"Content-Type": content_type} if body else {})
            response = connection.getresponse()
            status, data = response.status, response.read()
        except TimeoutError:
            raise NoAnswer(f"node {self.url} did not answer {path} in time") from None
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(f"cannot reach node {self.url}: {exc}") from None
        finally:
            connection.close()
        try:
            answer = json.loads(data)
        except ValueError:
            answer = None
        if status == 200:
            return answer
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            raise ERRORS.get(answer.get("type"), InternalError)(answer["error"])
        if status == 413:
            raise BadInput(f"node {self.url}: message too large")
        raise InternalError(f"node {self.url}: HTTP {status} on {path}")


def _connection(scheme: str, netloc: str, timeout_s: float) -> http.client.HTTPConnection:
    """An HTTP(S) connection to `netloc` (not yet open)."""
    if scheme == "https":
        return http.client.HTTPSConnection(netloc, timeout=timeout_s)
    return http.client.HTTPConnection(netloc, timeout=timeout_s)


def registration(identity: Identity, module: bytes, task: str, stake: int,
                 operator: dict) -> Envelope:
    """An owner's registration message naming `operator` (a node's /v1/status) as the worker's
    operator: the registry's signed registration inside a signed envelope."""
    from memjit.market.registry import sign_registration
    from memjit.runtime.store import cid_of

    reg = sign_registration(identity, cid_of(module), task, stake)
    return seal(identity, "registration", {
        "registration": {"public_key": reg.public_key.hex(), "cid": reg.cid, "task": reg.task,
                         "stake": reg.stake, "signature": reg.signature.hex(),
                         "pop": reg.pop.hex()},
        "operator": {"url": operator["url"], "key": operator["key"]}})


def unbond(identity: Identity, worker_id: str, amount: int | None) -> Envelope:
    """An owner's unbond message."""
    return seal(identity, "unbond", {"worker": worker_id, "amount": amount})


def stake(identity: Identity, action: str, amount: int | None) -> Envelope:
    """An owner's validator stake message: bond `amount`, or unbond it (None: all)."""
    return seal(identity, "stake", {"action": action, "amount": amount})


def request(identity: Identity, task: str, input_bytes: bytes, label: int | None,
            top_k: int) -> Envelope:
    """A requester's request message (valid ten minutes: the longest a request may take)."""
    return seal(identity, "request", {"task": task, "input": input_bytes.hex(), "label": label,
                                      "top_k": top_k}, ttl_s=600)
