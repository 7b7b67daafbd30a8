"""Jobs and claims between nodes: sending a signed job to a worker's operator, and checking
the claim message that comes back (the gateway does both; the sequencer too, as the witness
of a fault: memjit.node.witness).

An operator answers a job with a binary frame (memjit.node.wire): its signed claim message,
which names the claim by BLAKE3 digest and size, and the claim's bytes. A delivery *entry* is
what a gateway reports for one worker: `{"claim": claim message}` (the bytes travel as an
attachment) or `{"fault": why}`, the fault it saw.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from memjit.errors import BadInput, MemjitError
from memjit.market.identity import Identity
from memjit.market.oracle import Delivery
from memjit.node.messages import Envelope, Refused, hex_field, open_envelope, seal
from memjit.node.state import OperatorRef
from memjit.node.wire import MEDIA_TYPE, digest, unpack

MARGIN_S = 3.0
"""How long past a job's deadline its sender waits for the answer."""

_METRIC = re.compile(r"([a-z]+);dur=([0-9]{1,9}(?:\.[0-9]{1,3})?)")
_CLIENT = httpx.Client(headers={"accept": MEDIA_TYPE})
"""One client for every job (its connections are kept alive; httpx clients are thread-safe)."""


def claim_body(worker_id: str, nonce: bytes, claim: bytes | None, fault: str | None) -> dict:
    """A claim message's body: the claim named by digest and size, or the worker's fault."""
    body = {"worker": worker_id, "nonce": nonce.hex()}
    if claim is not None:
        body.update(claim_blake3=digest(claim), claim_size=len(claim))
    else:
        body["fault"] = fault or "no claim"
    return body


@dataclass(frozen=True)
class Reply:
    """An operator's reply to a job: the delivery entry, the attachments (the claim's bytes by
    digest), and, from its Server-Timing header, the seconds it spent answering (`prove_s`)
    and handling the job in all (`operator_s`; the rest of the round trip is the HTTP hop)."""

    entry: dict
    attachments: dict[str, bytes] = field(default_factory=dict)
    prove_s: float = 0.0
    operator_s: float = 0.0


def server_timing(prove_s: float, total_s: float) -> str:
    """The Server-Timing header of an operator's reply."""
    return f"prove;dur={1000 * prove_s:.1f}, operator;dur={1000 * total_s:.1f}"


def _timings(header: str) -> dict[str, float]:
    """The durations (s) of a Server-Timing header; malformed parts are left out."""
    found = {}
    for part in header.split(","):
        match = _METRIC.fullmatch(part.strip())
        if match:
            found[match[1]] = float(match[2]) / 1000
    return found


def send_job(identity: Identity, operator: OperatorRef | None, worker_id: str, task: str,
             input_bytes: bytes, nonce: bytes, deadline: int) -> Reply:
    """Sign a job for `worker_id` (prove `input_bytes` to `nonce` by `deadline`), send it to
    the worker's operator and wait (until the deadline plus MARGIN_S); its reply."""
    if operator is None:
        return Reply({"fault": "worker has no operator node"})
    job = seal(identity, "job", {"worker": worker_id, "task": task, "input": input_bytes.hex(),
                                 "nonce": nonce.hex(), "deadline": deadline},
               ttl_s=max(60, deadline - int(time.time()) + 60))
    try:
        response = _CLIENT.post(f"{operator.url.rstrip('/')}/v1/jobs", json=job.to_json(),
                                timeout=max(1.0, deadline - time.time() + MARGIN_S))
    except httpx.TimeoutException:
        return Reply({"fault": "DeadlineExceeded: operator missed the job deadline"})
    except httpx.HTTPError as exc:
        return Reply({"fault": f"operator unreachable: {type(exc).__name__}"})
    if response.status_code != 200:
        return Reply({"fault": f"operator refused the job: HTTP {response.status_code} "
                               f"{response.text[:200]}"})
    try:
        frame = unpack(response.content, "claim")
    except BadInput as exc:
        return Reply({"fault": f"operator answered no claim frame: {exc}"})
    spent = _timings(response.headers.get("server-timing", ""))
    return Reply({"claim": frame.message}, dict(frame.attachments), spent.get("prove", 0.0),
                 spent.get("operator", 0.0))


def open_claim(message: object, worker_id: str, nonce: bytes,
               operator: OperatorRef | None) -> Envelope:
    """The claim message of `worker_id`'s operator about the job of `nonce`, checked (signed
    by that operator, about this worker and nonce); Refused or BadInput otherwise."""
    claim = open_envelope(message, "claim")
    if operator is None or claim.signer != operator.key:
        raise Refused("claim not signed by the worker's operator")
    if claim.body.get("worker") != worker_id or claim.body.get("nonce") != nonce.hex():
        raise Refused("claim message is about another job")
    return claim


def claim_delivery(entry: object, worker_id: str, nonce: bytes, operator: OperatorRef | None,
                   attachments: Mapping[str, bytes]) -> tuple[Delivery, bool]:
    """The delivery a gateway reports for one worker, and whether the worker's operator
    attested it: an operator-signed claim message about this job with the claim's bytes (or
    the operator's own fault) is attested; a fault the gateway saw, a refused claim message
    or missing bytes are not (the sequencer then asks the operator itself:
    memjit.node.witness)."""
    if not isinstance(entry, dict) or "claim" not in entry:
        why = entry.get("fault") if isinstance(entry, dict) else None
        return Delivery(fault=str(why or "gateway: no delivery")[:300]), False
    try:
        claim = open_claim(entry["claim"], worker_id, nonce, operator)
    except MemjitError as exc:
        return Delivery(fault=f"refused claim message: {exc}"[:300]), False
    body = claim.body
    if isinstance(body.get("fault"), str):
        return Delivery(fault=body["fault"][:300]), True
    try:
        named = hex_field(body, "claim_blake3", 32, "claim").hex()
    except BadInput as exc:  # the operator signed it: its fault
        return Delivery(fault=str(exc)), True
    data = attachments.get(named)
    if data is None or len(data) != body.get("claim_size"):
        return Delivery(fault="the claim's bytes are missing"), False
    return Delivery(claim=data), True
