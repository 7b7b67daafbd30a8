"""The sequencer as the witness of a fault: a fault a gateway reports counts only if the
worker's operator fails the sequencer too.

A gateway could report that an honest worker never answered (it never sent the job, dropped
or altered the claim, or just says so) to depress its usefulness and get it slashed. So the
sequencer believes only what the worker's operator signed: a claim message about this job, or
a fault of its own. For every other entry of a delivery (a fault the gateway saw, a claim
message refused, the claim's bytes missing) the sequencer sends the operator a job of its own,
signed by the sequencer, for the same worker, task, input and nonce, with a fresh deadline
(its --job-timeout). The operator answers a job it has answered already with the same answer,
without proving again (memjit.node.operator), and a job it never got by proving it. What the
operator signs is then judged as if the gateway had delivered it; if the operator is
unreachable, refuses, or misses this deadline too, the fault counts, witnessed by the
sequencer itself (trusted for liveness already).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from memjit.market.identity import Identity
from memjit.market.oracle import Delivery
from memjit.node.jobs import claim_delivery, send_job
from memjit.node.log import log
from memjit.node.state import OperatorRef


class Witness:
    """Asks operators directly about the faults gateways report (see the module doc)."""

    def __init__(self, identity: Identity, operator_of: Callable[[str], OperatorRef | None],
                 timeout_s: float = 120.0) -> None:
        self.identity = identity
        self.operator_of = operator_of
        self.timeout_s = timeout_s

    def check(self, reported: dict[str, Delivery], task: str, input_bytes: bytes,
              nonce: bytes) -> dict[str, Delivery]:
        """The deliveries that replace the faults in `reported` (worker id -> what the gateway
        reported), asking every worker's operator at once."""
        ids: Sequence[str] = list(reported)
        if not ids:
            return {}
        deadline = int(time.time() + self.timeout_s)
        with ThreadPoolExecutor(len(ids)) as pool:
            found = list(pool.map(lambda wid: self._ask(wid, reported[wid], task, input_bytes,
                                                        nonce, deadline), ids))
        return dict(zip(ids, found))

    def _ask(self, worker_id: str, reported: Delivery, task: str, input_bytes: bytes,
             nonce: bytes, deadline: int) -> Delivery:
        operator = self.operator_of(worker_id)
        reply = send_job(self.identity, operator, worker_id, task, input_bytes, nonce, deadline)
        delivery, attested = claim_delivery(reply.entry, worker_id, nonce, operator,
                                            reply.attachments)
        outcome = "a claim" if delivery.claim is not None else \
            "its own fault" if attested else "no answer"
        log(f"witness {nonce.hex()[:8]} {worker_id[:8]}: gateway reported "
            f"{(reported.fault or '')[:60]!r}; the operator gave the sequencer {outcome}")
        if attested:
            return delivery
        return Delivery(fault=f"{reported.fault}; and to the sequencer: {delivery.fault}"[:300])
