"""`memjit request --task T --input FILE [--label L] [--top-k K] [--requester R] [--json]`.

A user's request is meant to be answered in real time, so the command stays light, as `memjit
verify` does: argparse instead of the CLI framework (memjit.cli.main runs it directly, the
global options --home and --node before it or after it; the typer app forwards to it
otherwise), and each path imports only what it runs. With --node (or MEMJIT_NODE) the client
signs the request with the requester's key (milagro), posts it to the node's gateway over the
standard library's HTTP and prints the verified answer: no numpy, numba, wasmtime or prover in
the process. Without it, this process is the node: it ranks, proves (one worker: here, with
every core; several: in a pool of processes), verifies and settles on --home.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from memjit.cli.common import Globals, emit_json, home_dir, node_client, read_file

if TYPE_CHECKING:
    from memjit.node.client import NodeClient

MAX_TOP_K = 1000


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr and exit 2, via memjit.cli.main
        from memjit.errors import BadInput

        raise BadInput(f"request: {message}")


def _top_k(text: str) -> int:
    """--top-k: an integer in 1..MAX_TOP_K."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_TOP_K:
        raise argparse.ArgumentTypeError(f"Invalid value {text!r}: not in 1..{MAX_TOP_K}")
    return value


PARSER = _Parser(prog="memjit request", description="Ask the top workers of a task; every "
                 "answer is proven and verified, cheats are slashed. Prints the best verified "
                 "answer; exits 1 (3 if every worker faulted) when none verified.")
PARSER.add_argument("--task", required=True, help="Task to serve the request (e.g. digits).")
PARSER.add_argument("--input", required=True, type=Path, dest="input_file", metavar="FILE",
                    help="Input bytes (digits: a 64-byte 8x8 image, pixels 0..16).")
PARSER.add_argument("--label", type=int, help="The true label, to score the answers against; "
                    "it counts only in proportion to the requester's validator stake (memjit "
                    "validator bond); without it, the consensus of independent verified answers.")
PARSER.add_argument("--top-k", type=_top_k, default=5, metavar="K",
                    help=f"How many workers to ask (1..{MAX_TOP_K}, default 5).")
PARSER.add_argument("--requester", default="requester", help="Requester identity (created, "
                    "and funded by the faucet, if new).")
PARSER.add_argument("--json", action="store_true", dest="json_out", help="Print one JSON object.")
PARSER.add_argument("--no-wait", action="store_true", dest="no_wait", help="With --node: exit "
                    "with the verified answer, not waiting for the sequencer to settle it.")
PARSER.add_argument("--home", type=Path, help="State directory (ledger, content store, keys); "
                    "default ~/.memjit, or MEMJIT_HOME.")
PARSER.add_argument("--node", help="A memjit node (HOST:PORT or URL) whose gateway serves the "
                    "request, or MEMJIT_NODE; --home then only holds the requester's key.")


def request_command(argv: list[str]) -> None:
    """Parse ``argv`` (what follows ``request``, global options included: the last of each
    wins) and serve the request; raises the contract's typed errors."""
    opts = PARSER.parse_args(argv)
    env_home = os.environ.get("MEMJIT_HOME")
    options = Globals(home=opts.home or (Path(env_home) if env_home else None),
                      node=opts.node or os.environ.get("MEMJIT_NODE"))
    input_bytes = read_file(opts.input_file)
    client = node_client(options)
    if client is not None:
        _remote(client, home_dir(options, write=True, keys_only=True), opts, input_bytes)
    else:
        _local(home_dir(options, write=True), opts, input_bytes)


def _local(home: Path, opts: argparse.Namespace, input_bytes: bytes) -> None:
    """This process is the node: rank, prove, verify and settle on `home`."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from memjit.errors import Interrupted, Rejected, WorkerFault
    from memjit.market.identity import load_or_create
    from memjit.market.ledger import Ledger
    from memjit.market.pool import request
    from memjit.runtime.store import Store
    from memjit.workers import digits_liar

    with Ledger(home) as ledger, Progress(console=Console(stderr=True), transient=True,
                                          disable=not sys.stderr.isatty()) as progress:
        answers = progress.add_task("proving answers", total=None)
        identity = load_or_create(home, opts.requester)
        last = ledger.db.execute("SELECT coalesce(max(seq), 0) FROM requests").fetchone()[0]
        try:
            result = request(ledger, Store(home), identity, opts.task, input_bytes,
                             label=opts.label, top_k=opts.top_k,
                             operators=digits_liar.operators(),
                             on_delivery=lambda worker, _: progress.advance(answers))
        except KeyboardInterrupt:  # settlement is one transaction at the very end
            settled = ledger.db.execute("SELECT max(seq) FROM requests WHERE seq > ? AND "
                                        "requester = ?", (last, identity.public_key)).fetchone()[0]
            raise Interrupted("interrupted; nothing recorded" if settled is None else
                              f"interrupted after request {settled} was settled") from None
    best, ref = result.best, result.reference
    if opts.json_out:
        emit_json({"request": result.seq, "nonce": result.nonce.hex(),
                   "scored_against": ref.answer, "basis": ref.basis, "rate": ref.rate,
                   "result": None if best is None else best.result,
                   "worker": None if best is None else best.worker,
                   "calls": [asdict(call) for call in result.calls]})
    else:
        if best is not None:
            print(f"result: {best.result} (worker {best.worker[:16]}"
                  + (f", score {best.score / 1e6:.3f})" if best.outcome == "scored"
                     else ", unscored)"))
        print(f"request {result.seq}: " + (
            "not scored (no staked label, and no consensus of independent answers)"
            if ref.answer is None else f"scored against {ref.answer} ({ref.basis}, "
                                       f"EMA rate {ref.rate / 1e6:.3f})"))
        table = Table()
        for column in ("worker", "outcome", "result", "score", "fee", "weight", "slashed",
                       "reason"):
            table.add_column(column)
        for c in result.calls:
            table.add_row(c.worker[:16], c.outcome, "-" if c.result is None else str(c.result),
                          f"{c.score / 1e6:.3f}", str(c.fee), str(c.weight), str(c.slashed),
                          c.reason)
        Console(highlight=False, width=200).print(table)
    if best is None:
        error = WorkerFault if all(c.outcome == "fault" for c in result.calls) else Rejected
        raise error(f"no verified answer: {len(result.calls)} worker(s) asked, every one "
                    "failed and was slashed")


def _remote(client: "NodeClient", home: Path, opts: argparse.Namespace,
            input_bytes: bytes) -> None:
    """`--node URL`: sign the request, have the gateway serve it, print the best verified
    answer (as soon as it is in) and every verdict once the delivery is settled; exit 1 (3 if
    every worker faulted) without an answer."""
    from memjit.errors import Rejected, WorkerFault
    from memjit.market.identity import load_or_create
    from memjit.node import client as messages

    message = messages.request(load_or_create(home, opts.requester), opts.task, input_bytes,
                               opts.label, opts.top_k)
    out = client.post("/v1/requests", message.to_json(), 600.0)
    if not opts.json_out and out["answer"] is not None:
        print(f"result: {out['answer']} (worker {out['worker'][:16]}, verified)", flush=True)
    settled = {"status": "pending", "settlement": None, "error": None} if opts.no_wait else \
        client.settlement(out["nonce"])  # the gateway settles after answering
    out["settlement"], out["settlement_error"] = settled["settlement"], settled["error"]
    if opts.json_out:
        emit_json(out)
    else:
        print(f"request {out['settlement']['seq']} settled" if out["settlement"] else
              f"settlement pending (GET /v1/settlements/{out['nonce']})" if opts.no_wait else
              f"not settled ({settled['status']}): {settled['error']}")
        rows = [("worker", "verdict", "result", "score", "reason")] + [
            (c["worker"][:16], c["verdict"], "-" if c["result"] is None else str(c["result"]),
             "-" if c["score"] is None else f"{c['score'] / 1e6:.3f}", c["reason"])
            for c in out["calls"]]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:  # plain columns: rich's tables cost the client 0.1 s of imports
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  "
                  + row[4])
    if out["answer"] is None:
        error = WorkerFault if all(c["verdict"] == "fault" for c in out["calls"]) else Rejected
        raise error(f"no verified answer: {len(out['calls'])} worker(s) asked, none verified")
