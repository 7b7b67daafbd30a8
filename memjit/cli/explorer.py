"""`memjit explorer`: serve the market explorer's web pages over the local --home."""

from __future__ import annotations

import typer

from memjit.cli.common import state_home

app = typer.Typer()

DEFAULT_LISTEN = "127.0.0.1:8700"


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT (port 0..65535; 0 picks a free one) or BadInput."""
    from memjit.errors import BadInput

    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise BadInput(f"bad --listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]"), int(port)


@app.command("explorer")
def explorer(
    ctx: typer.Context,
    listen: str = typer.Option(DEFAULT_LISTEN, "--listen",
                               help="HOST:PORT to serve on (port 0: any free port)."),
) -> None:
    """Serve the market explorer (leaderboards, workers, claims, batches, "try it") over the
    local --home; one log line per HTTP request; stops on Ctrl-C or SIGTERM."""
    import uvicorn

    from memjit.explorer.local import LocalSource
    from memjit.explorer.web import app as web_app
    from memjit.workers import digits_liar

    host, port = parse_listen(listen)
    # Reading writes nothing (a read-only home is served); "try it" opens the ledger to write.
    source = LocalSource(state_home(ctx, write=False), operators=digits_liar.operators())
    config = uvicorn.Config(web_app(source), host=host, port=port, log_level="info",
                            access_log=True, lifespan="off")
    try:
        _server_class()(config).run()
    finally:
        source.close()


def _server_class() -> type:
    """uvicorn's server, stopping on SIGINT or SIGTERM by finishing the requests in flight and
    returning (exit 0): a server told to stop has done nothing wrong, so the signal is not raised
    again once it has stopped (as uvicorn does by default)."""
    import signal
    from contextlib import contextmanager

    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self):  # type: ignore[override]
            previous = {sig: signal.signal(sig, self.handle_exit)
                        for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server
