"""A network of nodes on this machine (127.0.0.1, free ports): what the demo, the benchmark and
the tests start and stop.

Each node is a `memjit node start` process of its own (its own --home under `root`); `start`
waits (bounded) for its `listening on URL` line, then a thread keeps its output in the node's
log file. `stop` sends SIGTERM to the process by its PID, waits, and kills it if it lingers;
the network stops every node it started when it is left, whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from memjit.errors import InternalError

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass
class LocalNode:
    """A node process: its name, home, URL, process and libp2p multiaddrs."""

    name: str
    home: Path
    url: str
    process: subprocess.Popen
    log: Path
    actors: str | None = None
    p2p: list[str] = field(default_factory=list)
    extra: tuple[str, ...] = ()
    _pump: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the node and its prover processes (a crash): its process group, which is
        its PID (each node starts a session of its own)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(STOP_TIMEOUT_S)

    def stop(self) -> int:
        """SIGTERM the node, then SIGKILL after STOP_TIMEOUT_S; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._pump is not None:
            self._pump.join(STOP_TIMEOUT_S)
        return self.process.returncode


class LocalNetwork:
    """Nodes on 127.0.0.1 under `root` (one subdirectory each); a context manager."""

    def __init__(self, root: Path, faucet: int | None = None,
                 job_timeout_s: float | None = None) -> None:
        self.root = Path(root)
        self.faucet = faucet
        self.job_timeout_s = job_timeout_s
        self.nodes: list[LocalNode] = []

    @property
    def sequencer(self) -> LocalNode:
        """The first node started: the network's sequencer."""
        return self.nodes[0]

    def start(self, name: str, *extra: str, actors: str | None = None,
              listen: str = "127.0.0.1:0") -> LocalNode:
        """Start node `name` (the first one is the sequencer; later ones join the network
        through the sequencer's multiaddr only) and wait until it listens."""
        node = self.launch(name, *extra, actors=actors, listen=listen)
        self.ready(node)
        return node

    def start_all(self, names: dict[str, str | None], *extra: str) -> list[LocalNode]:
        """Start several nodes at once (name -> actors module or None; `extra` arguments of
        `memjit node start` for each); wait for them all."""
        nodes = [self.launch(name, *extra, actors=actors) for name, actors in names.items()]
        for node in nodes:
            self.ready(node)
        return nodes

    def restart(self, node: LocalNode) -> LocalNode:
        """Start a stopped or killed node again, on its home and at its addresses."""
        index = self.nodes.index(node)
        fresh = self.launch(node.name, *node.extra, "--p2p-port", node.p2p[0].split("/")[4],
                            actors=node.actors,
                            listen=f"127.0.0.1:{node.url.rsplit(':', 1)[1]}",
                            sequencer=index > 0)
        fresh.extra = node.extra  # without the --p2p-port added here
        self.nodes.pop()
        self.nodes[index] = fresh
        self.ready(fresh)
        return fresh

    def launch(self, name: str, *extra: str, actors: str | None = None,
               listen: str = "127.0.0.1:0", sequencer: bool | None = None) -> LocalNode:
        """Start node `name`'s process (not waiting for it)."""
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "memjit.cli", "--home", str(home), "node", "start",
                "--listen", listen, "--name", name, *extra]
        joins = bool(self.nodes) if sequencer is None else sequencer
        if joins:
            argv += ["--bootstrap", self.sequencer.p2p[0]]
        elif self.faucet is not None:
            argv += ["--faucet", str(self.faucet)]
        if self.job_timeout_s is not None:
            argv += ["--job-timeout", str(self.job_timeout_s)]
        if actors is not None:
            argv += ["--actors", actors]
        log = home / "node.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("MEMJIT_NODE", None)
        with open(log, "ab") as sink:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=sink, env=env,
                                       start_new_session=True)
        node = LocalNode(name, home, "", process, log, actors,
                         extra=extra)
        self.nodes.append(node)
        return node

    def ready(self, node: LocalNode) -> None:
        """Wait (bounded) until `node` listens; then keep its output in its log and read its
        multiaddrs from its status."""
        node.url = self._await_url(node)
        node._pump = threading.Thread(target=_pump, args=(node.process, node.log), daemon=True)
        node._pump.start()
        status: list[dict] = []

        def answered() -> bool:  # the port is bound before the server accepts on it
            try:
                status.append(httpx.get(f"{node.url}/v1/status", timeout=30).json())
            except httpx.ConnectError:
                return False
            return True

        if not wait_until(answered, START_TIMEOUT_S, 0.2):
            raise InternalError(f"node {node.name} does not answer at {node.url}")
        node.p2p = list(status[-1]["p2p"])

    def _await_url(self, node: LocalNode) -> str:
        """The node's URL from its first stdout line (bounded wait)."""
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(
            node.process.stdout.readline().decode().strip()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        line = found[0] if found else ""
        if not line.startswith("listening on "):
            node.stop()
            tail = node.log.read_text(errors="replace")[-500:] if node.log.exists() else ""
            raise InternalError(f"node {node.name} did not start: {tail.strip()}")
        return line.removeprefix("listening on ")

    def stop(self) -> None:
        """Stop every node, the last started first."""
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> "LocalNetwork":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pump(process: subprocess.Popen, log: Path) -> None:
    """Copy the rest of a node's stdout to its log file until it closes."""
    with open(log, "ab") as sink:
        for line in process.stdout:
            sink.write(line)
            sink.flush()


def wait_until(predicate, timeout_s: float, step_s: float = 0.1) -> bool:
    """Poll `predicate` until true or `timeout_s` passes (bounded)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())
