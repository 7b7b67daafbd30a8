"""Run a node in the foreground: bind, start the node, serve the API with uvicorn; stop cleanly
on SIGTERM or SIGINT (exit 0), whenever they come: while the node starts as while it serves.

The listening socket is bound before the server starts, so that `--listen 127.0.0.1:0` gets
a free port and the node can say where it is: its first line on stdout is
`listening on http://HOST:PORT`, which memjit.node.local waits for.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from memjit.errors import BadInput
from memjit.node.api import create_app
from memjit.node.log import log
from memjit.node.node import Node, NodeConfig
from memjit.node.signals import STOP_SIGNALS, Stopped, handling, only_log, stopping

BACKLOG = 2048


class _Server(uvicorn.Server):
    """uvicorn's server, whose SIGTERM/SIGINT stop it gracefully without re-raising the
    signal afterwards (so that the process exits 0)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        def stop(sig: int, frame: object) -> None:
            log(f"{signal.Signals(sig).name}: stopping")
            self.should_exit = True

        with handling(stop):
            yield


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT (BadInput otherwise)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise BadInput(f"bad --listen {text!r}: expected HOST:PORT")
    return host, int(port)


def serve(config: NodeConfig, listen: str) -> None:
    """Run the node until SIGTERM/SIGINT, which stop it cleanly (exit 0) whenever they come:
    while it starts too (joining the DHT, learning the sequencer, starting its provers)."""
    host, port = parse_listen(listen)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise BadInput(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    sock.listen(BACKLOG)  # connections wait in the backlog until the server accepts them
    bound = sock.getsockname()[1]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}"
    with stopping():
        # opening the node's databases, host and app is not interrupted (a signal waits)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            node = Node(config, url)
            server = _Server(uvicorn.Config(create_app(node), log_level="warning",
                                            access_log=False, timeout_graceful_shutdown=5))
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            raise
        try:
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # one that came: now
                log(f"node {config.name} starting: joining the network"
                    + (f" through {len(config.bootstrap)} bootstrap peer(s)"
                       if config.bootstrap else " (a new one)"))
                node.start()
            except Stopped:
                log("stopped while starting")
                return
            sys.stdout.write(f"listening on {url}\n")
            sys.stdout.flush()
            log(f"node {config.name} ({', '.join(node.roles)}) at {url}, key "
                f"{node.identity.public_key.hex()[:16]}, p2p {' '.join(node.membership.addrs)}"
                + ("" if node.sequencer else f", sequencer {node.upstream.url}"))
            server.run(sockets=[sock])
        except Stopped:  # after the start, before uvicorn's own handlers
            pass
        finally:
            _close(node)
            log("stopped")


def _close(node: Node) -> None:
    """Close the node; a SIGTERM/SIGINT meanwhile is only logged (it asks for what is under
    way)."""
    only_log()
    node.close()
