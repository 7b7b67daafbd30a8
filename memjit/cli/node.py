"""The node commands: `memjit node start` (run a node in the foreground) and `memjit node
status`."""

from __future__ import annotations

from typing import Optional

import typer

from memjit.cli.common import emit_json, remote, state_home

app = typer.Typer(no_args_is_help=True, help="Run a market node, or ask one how it is.")


@app.command("start")
def start(
    ctx: typer.Context,
    listen: str = typer.Option("127.0.0.1:7700", "--listen", help="HOST:PORT to serve the API on (port 0: a free one)."),
    sequencer: Optional[str] = typer.Option(None, "--sequencer", help="URL of the network's sequencer (default: learnt from the DHT through --bootstrap)."),
    bootstrap: list[str] = typer.Option([], "--bootstrap", help="Multiaddr (…/p2p/PEER_ID) of a node of the network to join (repeatable); with neither this nor --sequencer, this node is the sequencer of a new network."),
    p2p_port: int = typer.Option(0, "--p2p-port", min=0, max=65535, help="TCP port of the libp2p host on 127.0.0.1 (0: a free one)."),
    name: str = typer.Option("node", "--name", help="The node's name (in logs and status)."),
    faucet: int = typer.Option(10_000, "--faucet", min=0, max=2**53 - 1, help="Sequencer: SWT granted once to each new key (0: no faucet)."),
    batch_interval: float = typer.Option(30.0, "--batch-interval", min=0.1, help="Sequencer: seconds between batch commits."),
    job_timeout: float = typer.Option(120.0, "--job-timeout", min=1.0, help="Gateway: seconds an operator has to answer a job."),
    provers: int = typer.Option(2, "--provers", min=1, max=64, help="Operator: prover processes (jobs proven at once)."),
    view_ttl: float = typer.Option(2.0, "--view-ttl", min=0.0, max=600.0, help="Gateway: seconds a market view read from the sequencer is reused (0: read it for every request)."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Operator: prove jobs on the workers of this Dask scheduler (tcp://HOST:8786) instead of local prover processes."),
    follow: bool = typer.Option(False, "--follow", help="Keep a replica of the rollup: fetch every batch from the network, verify it (committee, proof, every claim) and apply it."),
    period: Optional[int] = typer.Option(None, "--period", min=1, max=2**31, help="Sequencer: seconds in an emission period (its scored calls become facts when it closes; default a day)."),
    actors: Optional[str] = typer.Option(None, "--actors", hidden=True, help="A Python module whose operators() replaces the honest operator for some workers (demos, tests)."),
) -> None:
    """Run a node in the foreground (operator and gateway; the sequencer too without
    --sequencer or --bootstrap), one log line per event on stderr; SIGTERM or Ctrl-C stops it
    (exit 0), while it starts too."""
    import importlib

    from memjit.node.log import log
    from memjit.node.signals import Stopped, stopping

    with stopping():  # from here on, before the heavy imports below
        try:
            from memjit.node.client import node_url
            from memjit.node.node import NodeConfig
            from memjit.node.server import serve

            home = state_home(ctx, write=True)
            config = NodeConfig(home=home, name=name,
                                sequencer=None if sequencer is None else node_url(sequencer),
                                faucet=faucet, batch_interval_s=batch_interval,
                                job_timeout_s=job_timeout, bootstrap=tuple(bootstrap),
                                p2p_port=p2p_port, provers=provers, cluster=cluster,
                                follow=follow, period_s=period, view_ttl_s=view_ttl,
                                actors={} if actors is None
                                else importlib.import_module(actors).operators())
            serve(config, listen)
        except Stopped:
            log("stopped while starting")


@app.command("status")
def status(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """A node's name, URL, key, roles, sequencer, libp2p peer ID, multiaddrs and DHT peers,
    and the rollup's height and state root as it knows them (a follower: its own replica's)
    (--node URL, or MEMJIT_NODE)."""
    from memjit.errors import BadInput

    client = remote(ctx)
    if client is None:
        raise BadInput("node status needs --node URL (or MEMJIT_NODE)")
    fields = client.get("/v1/status")
    if json_out:
        emit_json(fields)
        return
    for key, value in fields.items():
        typer.echo(f"{key:>10}: {', '.join(value) if isinstance(value, list) else value}")
