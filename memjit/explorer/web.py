"""The explorer's web pages and JSON API over any ExplorerSource.

`router(source)` is what a node mounts (`app.include_router(router(source))`); `app(source)`
wraps it for the standalone `memjit explorer`. Pages are rendered on the server from the
templates beside this module, with inline SVG plots; a little plain JavaScript (static/) sorts
tables, fills in claim verdicts and drives "try it" through the JSON API under /api/explorer/.

A request ("try it") is POSTed as the raw input bytes; the answer is a stream of JSON lines,
one per answer as it arrives (`{"event": "answer", ...}`), then the settled request
(`{"event": "settled", ...}`), or one `{"event": "error", ...}` line if it failed after the
first answer. An upload larger than the task's input is refused (413) before it is read whole;
a request beyond MAX_REQUESTS_IN_FLIGHT is refused (429); an error before the first answer is a
plain JSON error with its status.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from memjit.errors import BadInput, MemjitError, Rejected, WorkerFault
from memjit.explorer import plots
from memjit.explorer.source import ExplorerSource, NotFound, TaskInfo

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
API = "/api/explorer"
STATIC_URL = "/explorer/static"
SAMPLE_TASK = "digits"  # the task whose held-out images "try it" offers as samples
CONTENT_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
PLOTTED_BATCHES = 40  # bars of the newest batches (more would not be readable)
MAX_REQUESTS_IN_FLIGHT = 4  # more are refused (429): each holds a thread until it settles

T = TypeVar("T")


def status_of(exc: MemjitError) -> int:
    """The HTTP status of a typed error: 404 not found, 400 bad input, 409 rejected,
    502 worker fault, 500 otherwise."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, BadInput):
        return 400
    if isinstance(exc, Rejected):
        return 409
    return 502 if isinstance(exc, WorkerFault) else 500


def _when(t: float | None) -> str:
    """A time as a UTC date."""
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment(prefix: str) -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters["when"] = _when
    env.filters["short"] = lambda text, n=12: "-" if text is None else str(text)[:n]
    env.globals.update(root=prefix, api=prefix + API, static=prefix + STATIC_URL)
    return env


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(value if isinstance(value, (dict, list)) else asdict(value), status)


def router(source: ExplorerSource, prefix: str = "") -> APIRouter:
    """The explorer's pages (/, /tasks/T, /workers/ID, /try, /batches, /batches/N, /network),
    its static files (/explorer/static/NAME) and its JSON API (/api/explorer/...) over
    `source`, every path and link under `prefix` ("" or "/path", e.g. "/explorer")."""
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ValueError(f"prefix must be empty or /path without a trailing slash: {prefix!r}")
    env = _environment(prefix)
    r = APIRouter(prefix=prefix)
    in_flight = threading.BoundedSemaphore(MAX_REQUESTS_IN_FLIGHT)

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(
            network=source.network(), **context), status)

    def shown(render: Callable[[], HTMLResponse]) -> HTMLResponse:
        """A page, or the error page with the error's status."""
        try:
            return render()
        except MemjitError as exc:
            return page("error.html", status_of(exc), message=str(exc))

    def answered(fetch: Callable[[], T]) -> JSONResponse:
        """An API answer as JSON, or {"error": message} with the error's status."""
        try:
            value = fetch()
        except MemjitError as exc:
            return JSONResponse({"error": str(exc)}, status_of(exc))
        if isinstance(value, list):
            value = [asdict(v) for v in value]
        return _json(value)

    def task_of(name: str) -> TaskInfo:
        for task in source.tasks():
            if task.name == name:
                return task
        raise NotFound(f"no task {name!r}")

    def board(task: TaskInfo) -> dict:
        rows = source.leaderboard(task.name)
        names = {row.id: f"{row.owner} {row.id[:6]}" for row in rows}
        plot = plots.step_lines(f"usefulness of the {task.name} workers over time",
                                source.usefulness_history(task.name), names)
        return {"task": task, "rows": rows, "plot": plot}

    # --- pages ---------------------------------------------------------------------------------

    @r.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        return shown(lambda: page("index.html", boards=[board(t) for t in source.tasks()]))

    @r.get("/tasks/{task}", response_class=HTMLResponse)
    def task_page(task: str) -> HTMLResponse:
        return shown(lambda: page("index.html", boards=[board(task_of(task))]))

    @r.get("/workers/{worker_id}", response_class=HTMLResponse)
    def worker_page(worker_id: str) -> HTMLResponse:
        def render() -> HTMLResponse:
            detail = source.worker(worker_id)
            history = source.usefulness_history(detail.task).get(detail.row.id, [])
            plot = plots.step_lines("usefulness over time", {detail.row.id: history},
                                    {detail.row.id: detail.row.owner})
            return page("worker.html", w=detail, calls=source.calls(detail.row.id), plot=plot)
        return shown(render)

    @r.get("/try", response_class=HTMLResponse)
    def try_page(task: str = SAMPLE_TASK) -> HTMLResponse:
        return shown(lambda: page("try.html", task=task_of(task),
                                  samples=task == SAMPLE_TASK))

    @r.get("/batches", response_class=HTMLResponse)
    def batches_page() -> HTMLResponse:
        def render() -> HTMLResponse:
            rows = source.batches()
            plot = plots.bars(f"SWT minted per batch (the last {PLOTTED_BATCHES} at most)",
                              [(f"#{b.number}", b.minted)
                               for b in reversed(rows[:PLOTTED_BATCHES])], "SWT")
            return page("batches.html", batches=rows, plot=plot)
        return shown(render)

    @r.get("/batches/{number}", response_class=HTMLResponse)
    def batch_page(number: int) -> HTMLResponse:
        return shown(lambda: page("batch.html", detail=source.batch(number)))

    @r.get("/network", response_class=HTMLResponse)
    def network_page() -> HTMLResponse:
        return shown(lambda: page("network.html"))

    @r.get(STATIC_URL + "/{name}")
    def static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or path.suffix not in CONTENT_TYPES or not path.is_file():
            return Response("not found", 404, media_type="text/plain")
        return Response(path.read_bytes(), media_type=CONTENT_TYPES[path.suffix])

    # --- JSON API ------------------------------------------------------------------------------

    @r.get(API + "/network")
    def api_network() -> JSONResponse:
        return answered(source.network)

    @r.get(API + "/tasks")
    def api_tasks() -> JSONResponse:
        return answered(source.tasks)

    @r.get(API + "/tasks/{task}/leaderboard")
    def api_leaderboard(task: str) -> JSONResponse:
        return answered(lambda: source.leaderboard(task_of(task).name))

    @r.get(API + "/tasks/{task}/history")
    def api_history(task: str) -> JSONResponse:
        return answered(lambda: source.usefulness_history(task_of(task).name))

    @r.get(API + "/tasks/{task}/samples/{index}")
    def api_sample(task: str, index: int) -> JSONResponse:
        def sample() -> dict:
            from memjit.market.tasks import read_test_set

            if task != SAMPLE_TASK:
                raise NotFound(f"no samples for task {task!r}")
            images, labels = read_test_set()
            i = index % len(images)
            return {"index": i, "pixels": images[i].tolist(), "label": int(labels[i])}
        return answered(sample)

    @r.get(API + "/workers/{worker_id}")
    def api_worker(worker_id: str) -> JSONResponse:
        return answered(lambda: source.worker(worker_id))

    @r.get(API + "/workers/{worker_id}/calls")
    def api_calls(worker_id: str, limit: int = 100) -> JSONResponse:
        return answered(lambda: source.calls(worker_id, max(1, min(limit, 1000))))

    @r.get(API + "/claims/{cid}")
    def api_claim(cid: str) -> JSONResponse:
        return answered(lambda: source.claim(cid))

    @r.get(API + "/batches")
    def api_batches() -> JSONResponse:
        return answered(source.batches)

    @r.get(API + "/batches/{number}")
    def api_batch(number: int) -> JSONResponse:
        return answered(lambda: source.batch(number))

    @r.get(API + "/batches/{number}/audit")
    def api_audit(number: int) -> JSONResponse:
        return answered(lambda: source.audit(number))

    @r.post(API + "/tasks/{task}/request")
    async def api_request(task: str, request: Request, label: int | None = None) -> Response:
        try:
            info = await run_in_threadpool(task_of, task)
        except MemjitError as exc:
            return JSONResponse({"error": str(exc)}, status_of(exc))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > info.input_size:
                return JSONResponse({"error": f"task {task!r} takes an input of "
                                              f"{info.input_size} bytes; the upload is larger"},
                                    413)
        if not in_flight.acquire(blocking=False):
            return JSONResponse({"error": f"{MAX_REQUESTS_IN_FLIGHT} requests are in flight "
                                          "already; try again when one has settled"}, 429)
        events = _start(source, task, bytes(body), label, in_flight.release)
        first = await run_in_threadpool(events.get)
        if first["event"] == "error":
            return JSONResponse({"error": first["error"]}, first["status"])
        return StreamingResponse(_lines(first, events), media_type="application/x-ndjson")

    return r


def _start(source: ExplorerSource, task: str, input_bytes: bytes, label: int | None,
           done: Callable[[], None]) -> "queue.Queue[dict]":
    """Run a request in a thread, calling `done` when it is over; its events (answers, then
    settled or error) on a queue."""
    events: queue.Queue[dict] = queue.Queue()

    def run() -> None:
        try:
            outcome = source.request(task, input_bytes, label,
                                     lambda a: events.put({"event": "answer", **asdict(a)}))
            events.put({"event": "settled", **asdict(outcome)})
        except MemjitError as exc:
            events.put({"event": "error", "status": status_of(exc), "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - reported to the page, not swallowed
            events.put({"event": "error", "status": 500,
                        "error": f"internal error: {type(exc).__name__}: {exc}"})
        finally:
            done()

    threading.Thread(target=run, name="explorer-request", daemon=True).start()
    return events


def _lines(first: dict, events: "queue.Queue[dict]") -> Iterator[str]:
    """The request's events as JSON lines, until it settles or fails."""
    event = first
    while True:
        yield json.dumps(event) + "\n"
        if event["event"] != "answer":
            return
        event = events.get()


def app(source: ExplorerSource, prefix: str = "") -> FastAPI:
    """A standalone web app serving the explorer over `source`."""
    application = FastAPI(title="memjit explorer", docs_url=None, redoc_url=None,
                          openapi_url=None)
    application.include_router(router(source, prefix))
    return application
