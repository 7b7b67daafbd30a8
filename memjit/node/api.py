"""The node's HTTP API (FastAPI; OpenAPI at /docs). JSON bodies, but claims and deliveries travel
as binary frames (memjit.node.wire); every body bounded in size.

`create_app(node)` builds the application: the node's API under /v1/, and the explorer
(memjit.explorer over memjit.node.explorer_source.NodeSource) at / and /api/explorer/. Every error is one JSON object {"error", "type"} with a status by its kind
(400 bad input, 403 refused message, 409 rejected by the market rules, 413 too large, 422
worker fault, 500 internal) and one line in the node's log.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memjit.errors import BadInput, MemjitError, Rejected, WorkerFault
from memjit.explorer.web import router as explorer_router
from memjit.node.batches import MAX_REFS
from memjit.node.explorer_source import NodeSource
from memjit.node.jobs import server_timing
from memjit.node.log import log
from memjit.node.messages import Oversized, Refused, hex_field
from memjit.node.node import Node
from memjit.node.wire import MEDIA_TYPE, Frame, pack, unpack
from memjit.runtime.store import MissingBlock

MAX_BODY_BYTES = 24 * 1024 * 1024
"""The largest request body (a delivery of top-16 claims, a module upload, in hex)."""
MAX_MODULE_BYTES = 8 * 1024 * 1024


class BodyLimit:
    """ASGI middleware: refuse (413) a request body over `limit` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(scope, receive, send, self.limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise Oversized(f"request body over {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    log(f"refused {scope.get('path')}: body over {limit} bytes")
    response = JSONResponse({"error": f"request body over {limit} bytes", "type": "Oversized"},
                            status_code=413)
    await response(scope, receive, send)


def status_of(exc: MemjitError) -> int:
    """The HTTP status of an error."""
    for kind, status in ((Oversized, 413), (BadInput, 400), (Refused, 403), (Rejected, 409),
                         (WorkerFault, 422)):
        if isinstance(exc, kind):
            return status
    return 500


def create_app(node: Node) -> FastAPI:
    """The API of `node` (see docs/node.md for the table)."""
    app = FastAPI(title=f"memjit node {node.config.name}", version="1",
                  description="A memjit market node: operator, gateway"
                              + (", sequencer" if node.sequencer else "") + ".")
    app.add_middleware(BodyLimit)
    app.state.node = node

    @app.exception_handler(MemjitError)
    async def memjit_error(request: Request, exc: MemjitError) -> JSONResponse:
        log(f"refused {request.method} {request.url.path}: {type(exc).__name__}: {exc}")
        return JSONResponse({"error": str(exc), "type": type(exc).__name__},
                            status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        log(f"refused {request.method} {request.url.path}: malformed body")
        return JSONResponse({"error": "malformed request body: expected a JSON object",
                             "type": "BadInput"}, status_code=400)

    @app.get("/v1/status", summary="Who this node is, its roles and counts")
    def status() -> dict:
        return node.status()

    @app.get("/v1/blocks/{cid}", summary="A block of the content store, by CID")
    def block(cid: str) -> Response:
        try:
            data = node.store.get(cid)
        except MissingBlock:
            return JSONResponse({"error": f"no block {cid}", "type": "MissingBlock"},
                                status_code=404)
        return Response(data, media_type="application/octet-stream")

    @app.get("/v1/batches", summary="The rollup batches this node holds (refs by CID)")
    def batches(after: int = Query(0, ge=0, le=2**62),
                limit: int = Query(16, ge=0, le=MAX_REFS)) -> dict:
        return node.batches(after, limit)

    @app.get("/v1/genesis", summary="The network's genesis this node pinned")
    def genesis() -> dict:
        if node.genesis is None:
            raise BadInput("this node has no genesis yet")
        return node.genesis.to_json()

    @app.get("/v1/workers", summary="The registered workers (of a task)")
    def workers(task: str | None = Query(None, max_length=255)) -> dict:
        return node.workers(task)

    @app.get("/v1/balance/{key}", summary="An owner key's SWT holdings")
    def balance(key: str) -> dict:
        return node.balance(hex_field({"key": key}, "key", 48, "balance"))

    @app.get("/v1/state/market", summary="The market view of a task, for a requester")
    def market(task: str = Query(..., max_length=255),
               requester: str = Query(..., max_length=96)) -> dict:
        return node.view(task, hex_field({"r": requester}, "r", 48, "market view")).to_json()

    @app.post("/v1/workers", summary="Operate a worker: module + owner-signed registration")
    def add_worker(body: dict[str, Any]) -> dict:
        module = hex_field(body, "module", None, "worker upload")
        if len(module) > MAX_MODULE_BYTES:
            raise Oversized(f"module of {len(module)} bytes: at most {MAX_MODULE_BYTES}")
        return node.accept(module, body.get("registration"))

    @app.post("/v1/registrations", summary="Admit a registration (sequencer)")
    def registrations(body: dict[str, Any]) -> dict:
        return node.register(body)

    @app.post("/v1/unbonds", summary="Unbond a worker's stake (owner-signed)")
    def unbonds(body: dict[str, Any]) -> dict:
        return node.unbond(body)

    @app.post("/v1/validators", summary="Bond or unbond validator stake (owner-signed)")
    def stakes(body: dict[str, Any]) -> dict:
        return node.stake(body)

    @app.post("/v1/jobs", summary="Run and prove a gateway-signed job (operator); a binary "
                                  "frame: the signed claim message and the claim")
    def jobs(body: dict[str, Any]) -> Response:
        start = time.perf_counter()
        claim, data, prove_s = node.operator.run_job(body)
        frame = pack(claim.to_json(), [] if data is None else [data])
        return Response(frame, media_type=MEDIA_TYPE, headers={
            "server-timing": server_timing(prove_s, time.perf_counter() - start)})

    @app.post("/v1/requests", summary="Serve a requester-signed request (gateway)")
    def requests(body: dict[str, Any]) -> dict:
        return node.gateway.serve(body)

    @app.get("/v1/settlements/{nonce}", summary="How a served request's delivery settled (gateway)")
    def settlement(nonce: str) -> dict:
        return node.gateway.settlement(nonce)

    @app.post("/v1/deliveries", summary="Settle a gateway-signed delivery (sequencer): a "
                                        "binary frame with the claims, or JSON without")
    async def deliveries(request: Request) -> dict:
        data = await request.body()
        if request.headers.get("content-type", "").startswith(MEDIA_TYPE):
            frame = unpack(data, "delivery")
        else:
            try:
                frame = Frame(json.loads(data), {})
            except ValueError:
                frame = Frame(None, {})
            if not isinstance(frame.message, dict):
                raise BadInput("malformed request body: expected a JSON object")
        return await run_in_threadpool(node.deliver, frame)

    # The explorer at / (its pages and /api/explorer/; the node's own routes are under /v1).
    app.include_router(explorer_router(NodeSource(node)))
    return app

