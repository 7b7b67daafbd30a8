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
    listen: str = typer.Option(DEFAULT_LISTEN, "--listen", help="HOST:PORT to serve on (port 0: any free port)."),
) -> None:
    """Serve the market explorer (leaderboards, workers, claims, batches, "try it") over the
    local --home; one log line per HTTP request; stops on Ctrl-C or SIGTERM."""
    import uvicorn

    from memjit.explorer.local import LocalSource
    from memjit.explorer.web import app as web_app
    from memjit.workers import digits_liar

    host, port = parse_listen(listen)
    source = LocalSource(state_home(ctx, write=True), operators=digits_liar.operators())
    config = uvicorn.Config(web_app(source), host=host, port=port, log_level="info",
                            access_log=True, lifespan="off")
    try:
        uvicorn.Server(config).run()  # handles SIGINT and SIGTERM: stops serving, returns
    finally:
        source.close()
