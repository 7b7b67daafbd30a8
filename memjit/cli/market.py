"""The market commands: the worker registry (`memjit worker ...`), validator stake (`memjit
validator ...`), balances and requests (memjit.cli.request, light on purpose)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from memjit.cli.common import emit_json, read_file, remote, resolve_worker, state_home

if TYPE_CHECKING:
    from memjit.market.ledger import Holdings, Worker

app = typer.Typer()
worker_app = typer.Typer(no_args_is_help=True,
                         help="The worker registry: add, list, show, unbond.")
validator_app = typer.Typer(no_args_is_help=True,
                            help="Validator stake: what a requester's labels move usefulness by.")


def _worker_fields(worker: "Worker") -> dict:
    """A worker as plain JSON-able fields (keys and hashes in hex)."""
    from verifier.claims import vk_digest

    return {"id": worker.id, "owner": worker.owner.hex(), "cid": worker.cid, "task": worker.task,
            "vk": None if worker.vk is None else vk_digest(worker.vk).hex(),
            "stake": worker.stake, "usefulness": worker.usefulness, "status": worker.status,
            "registered_at": worker.registered_at, "last_used_at": worker.last_used_at,
            "unbonding_amount": worker.unbonding_amount, "unbonding_at": worker.unbonding_at}


@worker_app.command("add")
def worker_add(
    ctx: typer.Context,
    wasm: Path = typer.Argument(..., help="Worker module (.wasm)."),
    stake: int = typer.Option(..., "--stake", help="Stake to bond from the owner's free balance, "
                              "in SWT units: 1..2^53-1, and at least the minimum (100)."),
    owner: str = typer.Option("default", "--owner", help="Owner identity (created, and funded by the faucet, if new)."),
    task: str = typer.Option("digits", "--task", help="Task the worker serves."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Register a worker: store the module, sign with the owner's BLS key, bond the stake from
    the owner's free balance (a stake above it is refused, exit 1). With --node, that node
    becomes the worker's operator: it stores and serves the module, runs its jobs and forwards
    the signed registration to the network's sequencer."""
    from memjit.market.identity import load_or_create
    from memjit.market.ledger import Ledger
    from memjit.market.registry import register
    from memjit.runtime.store import Store

    module = read_file(wasm)
    client = remote(ctx)
    home = state_home(ctx, write=True, keys_only=client is not None)
    if client is not None:
        from memjit.node.client import registration

        message = registration(load_or_create(home, owner), module, task, stake,
                               client.get("/v1/status"))
        fields = client.post("/v1/workers", {"module": module.hex(),
                                             "registration": message.to_json()}, 120.0)
    else:
        with Ledger(home) as ledger:
            fields = _worker_fields(register(ledger, Store(home), load_or_create(home, owner),
                                             module, stake, task))
    if json_out:
        emit_json(fields)
    else:
        typer.echo(f"registered worker {fields['id']}\ncid: {fields['cid']}\n"
                   f"stake: {fields['stake']}")


@worker_app.command("list")
def worker_list(
    ctx: typer.Context,
    task: Optional[str] = typer.Option(None, "--task", help="Only the workers of this task."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List registered workers with stake, usefulness and status."""
    from rich.console import Console
    from rich.table import Table

    from memjit.market.ledger import Ledger

    client = remote(ctx)
    if client is not None:
        workers = client.get("/v1/workers", task=task)["workers"]
    else:
        with Ledger(state_home(ctx, write=False), readonly=True) as ledger:
            workers = [_worker_fields(w) for w in ledger.workers(task)]
    if json_out:
        emit_json({"workers": workers})
        return
    table = Table(title=f"{len(workers)} worker(s)")
    for column in ("id", "task", "stake", "usefulness", "status", "cid"):
        table.add_column(column, justify="right" if column in ("stake", "usefulness") else "left")
    for w in workers:
        table.add_row(w["id"][:16], w["task"], str(w["stake"]), f"{w['usefulness'] / 1e6:.3f}",
                      w["status"], w["cid"])
    Console(highlight=False, width=200).print(table)


@worker_app.command("show")
def worker_show(
    ctx: typer.Context,
    worker_id: str = typer.Argument(..., metavar="ID", help="Worker id, or a unique prefix of it."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show one worker: owner, CID, VK digest, stake, unbonding, usefulness."""
    from memjit.market.ledger import Ledger

    with Ledger(state_home(ctx, write=False), readonly=True) as ledger:
        fields = _worker_fields(ledger.worker(resolve_worker(ledger, worker_id)))
    if json_out:
        emit_json(fields)
    else:
        for key, value in fields.items():
            typer.echo(f"{key:>16}: {'-' if value is None else value}")


@worker_app.command("unbond")
def worker_unbond(
    ctx: typer.Context,
    worker_id: str = typer.Argument(..., metavar="ID", help="Worker id, or a unique prefix of it."),
    amount: Optional[int] = typer.Option(None, "--amount", help="SWT to unbond; default: all the stake."),
    owner: str = typer.Option("default", "--owner", help="Owner identity of the worker."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Start unbonding a worker's stake: it stays slashable, and returns to the owner's free
    balance when the unbonding period is over."""
    from memjit.market.identity import load
    from memjit.market.ledger import Ledger
    from memjit.market.registry import unbond

    client = remote(ctx)
    home = state_home(ctx, write=True, keys_only=client is not None)
    if client is not None:
        from memjit.node import client as messages

        wid = _remote_worker(client.get("/v1/workers")["workers"], worker_id)
        fields = client.post("/v1/unbonds", messages.unbond(load(home, owner), wid,
                                                            amount).to_json())
    else:
        with Ledger(home) as ledger:
            fields = _worker_fields(unbond(ledger, load(home, owner),
                                           resolve_worker(ledger, worker_id), amount))
    if json_out:
        emit_json(fields)
    else:
        typer.echo(f"unbonding {fields['unbonding_amount']} SWT of worker {fields['id'][:16]} "
                   f"until {_when(fields['unbonding_at'])}; {fields['stake']} SWT bonded "
                   f"({fields['status']})")


def _remote_worker(workers: list[dict], text: str) -> str:
    """The full id of a node's worker named by `text` (an id or a unique prefix)."""
    from memjit.errors import BadInput

    wanted = text.strip().lower()
    found = [w["id"] for w in workers if w["id"].startswith(wanted)] if len(wanted) >= 4 else []
    if len(found) != 1:
        raise BadInput(f"no worker id starts with {wanted}" if not found else
                       f"worker id prefix {wanted} is ambiguous: {len(found)} workers match")
    return found[0]


@validator_app.command("bond")
def validator_bond(
    ctx: typer.Context,
    stake: int = typer.Option(..., "--stake", help="SWT to bond from the owner's free balance."),
    owner: str = typer.Option("requester", "--owner", help="Requester identity whose labels the stake backs (created, and funded by the faucet, if new)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Bond stake behind an identity's labels: a label moves usefulness in proportion to it,
    and a label a unanimous quorum of independent answers contradicts is slashed."""
    from dataclasses import asdict

    from memjit.market import validators
    from memjit.market.identity import load_or_create
    from memjit.market.ledger import Ledger

    client = remote(ctx)
    home = state_home(ctx, write=True, keys_only=client is not None)
    if client is not None:
        from memjit.node import client as messages

        bond = client.post("/v1/validators", messages.stake(load_or_create(home, owner), "bond",
                                                            stake).to_json())
    else:
        with Ledger(home) as ledger:
            bond = asdict(validators.bond(ledger, load_or_create(home, owner), stake))
    _echo_validator(owner, bond, json_out)


@validator_app.command("unbond")
def validator_unbond(
    ctx: typer.Context,
    amount: Optional[int] = typer.Option(None, "--amount", help="SWT to unbond; default: all of it."),
    owner: str = typer.Option("requester", "--owner", help="Requester identity."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Start unbonding validator stake (slashable until it is released)."""
    from dataclasses import asdict

    from memjit.market import validators
    from memjit.market.identity import load
    from memjit.market.ledger import Ledger

    client = remote(ctx)
    home = state_home(ctx, write=True, keys_only=client is not None)
    if client is not None:
        from memjit.node import client as messages

        bond = client.post("/v1/validators", messages.stake(load(home, owner), "unbond",
                                                            amount).to_json())
    else:
        with Ledger(home) as ledger:
            bond = asdict(validators.unbond(ledger, load(home, owner), amount))
    _echo_validator(owner, bond, json_out)


def _echo_validator(owner: str, bond: dict, json_out: bool) -> None:
    """Print a validator bond (its fields; one JSON object with --json)."""
    fields = {"owner": owner, "stake": bond["stake"],
              "unbonding_amount": bond["unbonding_amount"], "unbonding_at": bond["unbonding_at"]}
    if json_out:
        emit_json(fields)
    else:
        typer.echo(f"validator {owner}: {bond['stake']} SWT bonded behind its labels"
                   + (f", {bond['unbonding_amount']} unbonding until "
                      f"{_when(bond['unbonding_at'])}" if bond["unbonding_amount"] else ""))


def _when(at: Optional[float]) -> str:
    """A ledger time, in UTC."""
    from datetime import datetime, timezone

    return "-" if at is None else datetime.fromtimestamp(at, timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


@app.command("balance")
def balance(
    ctx: typer.Context,
    owner: str = typer.Argument("default", help="Owner identity (a key under --home/keys)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """An owner's SWT: free, bonded (workers and validator stake), unbonding, and rewards earned
    (pending until a batch mints them) or accruing in the open emission period. Read only: bonds
    whose period is over and periods that ended are settled by the next request, registration
    or `memjit batch commit`."""
    from memjit.market.identity import load
    from memjit.market.ledger import Ledger

    client = remote(ctx)
    home = state_home(ctx, write=False, keys_only=client is not None)
    identity = load(home, owner)
    if client is not None:
        fields = client.get(f"/v1/balance/{identity.public_key.hex()}")
        fields.pop("public_key", None)
    else:
        with Ledger(home, readonly=True) as ledger:
            fields = _holdings_fields(ledger.holdings(identity.public_key))
    if json_out:
        emit_json({"owner": owner, "public_key": identity.public_key.hex(), **fields})
    else:
        typer.echo(f"{owner}: " + ", ".join(f"{key} {value}" for key, value in fields.items()
                                            if key in ("free", "bonded", "unbonding", "earned"))
                   + f" SWT ({fields['pending']} pending, {fields['minted']} minted); up to "
                     f"{fields['accruing']} accruing in the open period")


def _holdings_fields(held: "Holdings") -> dict:
    """An owner's holdings as plain JSON-able fields, `earned` included."""
    from dataclasses import asdict

    return {**asdict(held), "earned": held.earned}


@app.command("request", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def request_cmd(ctx: typer.Context) -> None:
    """Ask the top workers of a task; every answer is proven and verified, cheats are slashed
    (exit 1 without a verified answer, 3 if every worker faulted). `memjit request --help`
    for its options."""
    from memjit.cli.common import global_options
    from memjit.cli.request import request_command

    options = global_options(ctx)
    request_command([*(["--home", str(options.home)] if options.home else []),
                     *(["--node", options.node] if options.node else []), *ctx.args])
