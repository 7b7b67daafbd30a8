"""`memjit batch ...`: the rollup's batches (commit, list, show, verify, audit, proof, revert, committee)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from memjit.cli.common import emit_json, resolve_worker, state_home

if TYPE_CHECKING:
    from memjit.market.ledger import Ledger
    from memjit.rollup.batcher import Batcher, BatchRecord

app = typer.Typer(no_args_is_help=True, help="Rollup batches: commit, list, show, audit, proof, revert.")

MAX_BATCH = (1 << 63) - 1
"""Largest batch number the ledger can hold (a signed 64-bit SQLite integer)."""


def _number(help_text: str) -> int:
    """A batch-number argument: 1..MAX_BATCH (anything else is a one-line usage error)."""
    return typer.Argument(..., metavar="N", min=1, max=MAX_BATCH, help=help_text)


def _batcher(ledger: "Ledger", home: Path, **config: float) -> "Batcher":
    """A batcher over `ledger` and the content store under `home` (BatchConfig overrides)."""
    from memjit.rollup.batcher import BatchConfig, Batcher
    from memjit.runtime.store import Store

    return Batcher(ledger, Store(home), home, BatchConfig(**config))


def _batch_fields(record: "BatchRecord", now: float) -> dict:
    """A committed batch as plain JSON-able fields (hashes and keys in hex)."""
    h = record.header
    return {"number": h.number, "hash": h.hash.hex(), "status": record.status(now),
            "prev_hash": h.prev_hash.hex(), "state_root_before": h.state_root_before.hex(),
            "state_root_after": h.state_root_after.hex(), "facts_root": h.facts_root.hex(),
            "fact_count": h.fact_count, "minted": h.minted,
            "timestamp": h.timestamp_ms / 1000, "committed_at": record.committed_at,
            "final_at": record.final_at, "data_cid": record.data_cid,
            "scores": {w.hex(): s for w, s in h.scores},
            "committee": [k.hex() for k in h.committee], "signature": h.signature.hex()}


@app.command("commit")
def batch_commit(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Close the current emission period now and commit every pending fact, due or not."),
    max_facts: int = typer.Option(1000, "--max-facts", min=1, max=1 << 24, help="Cut a batch at this many facts."),
    max_age: float = typer.Option(60.0, "--max-age", help="...or once the oldest pending fact is this old (s)."),
    window: float = typer.Option(3600.0, "--challenge-window", help="Seconds before a proven batch is final."),
    prove: bool = typer.Option(True, "--prove/--no-prove", help="Prove every committed batch that has no proof yet (a batch is final only once proven)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Close the emission periods that are over (their scored calls become facts; with
    --force the current one too), then cut and commit the batches that are due: signed by the
    committee, one transaction each."""
    from memjit.errors import BadInput
    from memjit.market.epoch import advance
    from memjit.market.ledger import Ledger

    if not (0 <= max_age < 1e12 and 0 <= window < 1e12):
        raise BadInput("--max-age and --challenge-window must be in 0..1e12 seconds")
    home = state_home(ctx, write=True)
    with Ledger(home) as ledger:
        advance(ledger, close_now=force)
        batcher = _batcher(ledger, home, max_facts=max_facts, max_age_s=max_age,
                           challenge_window_s=window)
        headers = batcher.commit_pending(force)
        if prove:
            from memjit.rollup.proving import BatchProver

            BatchProver(batcher).prove_pending()
        fields = [_batch_fields(batcher.record(h.number), ledger.clock()) for h in headers]
        pending = len(batcher.pending())
    if json_out:
        emit_json({"committed": fields, "pending_facts": pending})
        return
    for f in fields:
        typer.echo(f"committed batch {f['number']} {f['hash'][:16]}: {f['fact_count']} facts, "
                   f"{f['minted']} SWT minted, state root {f['state_root_after']}")
    typer.echo(f"{len(fields) or 'no'} batch(es) committed, {pending} fact(s) pending")


@app.command("list")
def batch_list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List committed batches: hash, facts, SWT minted, state roots, committed or final."""
    from rich.console import Console

    from memjit.market.ledger import Ledger
    from memjit.rollup.batcher import batches_table
    from memjit.runtime.store import Store

    home = state_home(ctx, write=False)
    with Ledger(home, readonly=True) as ledger:
        batcher = _batcher(ledger, home)
        fields = [_batch_fields(r, ledger.clock()) for r in batcher.records()]
        pending = len(batcher.pending())
        table = None if json_out else batches_table(ledger, Store(home), home)
    if json_out:
        emit_json({"batches": fields, "pending_facts": pending})
        return
    Console(highlight=False, width=200).print(table)
    typer.echo(f"{pending} fact(s) pending")


@app.command("show")
def batch_show(
    ctx: typer.Context,
    number: int = _number("Batch number."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show one batch header: roots, scores per worker, committee, status."""
    from memjit.market.ledger import Ledger

    home = state_home(ctx, write=False)
    with Ledger(home, readonly=True) as ledger:
        fields = _batch_fields(_batcher(ledger, home).record(number), ledger.clock())
    if json_out:
        emit_json(fields)
        return
    for key, value in fields.items():
        if key == "scores":
            value = ", ".join(f"{w[:16]}: {s}" for w, s in value.items()) or "-"
        elif key == "committee":
            value = ", ".join(k[:16] for k in value)
        typer.echo(f"{key:>17}: {value}")


@app.command("verify")
def batch_verify(
    ctx: typer.Context,
    number: int = _number("Batch number."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Check batch N's STARKs (every segment of its chain) against its header alone (no
    re-execution, no ledger state): exit 0 if they prove the state transition, 1 if not."""
    from memjit.errors import Rejected
    from memjit.market.ledger import Ledger
    from memjit.rollup.proving import BatchProver
    from memjit.rollup.zkstate import root_bytes

    home = state_home(ctx, write=False)
    with Ledger(home, readonly=True) as ledger:
        prover = BatchProver(_batcher(ledger, home))
        verdict = prover.verify(number)
        bundle = prover.bundle(number)
    fields = {"number": number, "valid": verdict.valid, "reason": verdict.reason,
              "security_bits": verdict.security_bits, "facts": len(bundle.facts),
              "segments": len(bundle.segments), "old_root": root_bytes(bundle.old_root).hex(),
              "new_root": root_bytes(bundle.new_root).hex()}
    if json_out:
        emit_json(fields)
    elif verdict.valid:
        typer.echo(f"batch {number}: valid proof of {len(bundle.facts)} fact(s) in "
                   f"{len(bundle.segments)} segment(s), {verdict.security_bits} bits, "
                   f"state root {fields['new_root']}")
    if not verdict.valid:
        raise Rejected(f"batch {number}: invalid proof: {verdict.reason}")


@app.command("audit")
def batch_audit(
    ctx: typer.Context,
    number: int = _number("Batch number."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Re-verify every proof of batch N from the content store, check its stake facts against
    the ledger's stake events and recompute its roots (exit 1 if anything does not match)."""
    from rich.console import Console
    from rich.table import Table

    from memjit.errors import Rejected
    from memjit.market.ledger import Ledger

    home = state_home(ctx, write=False)
    with Ledger(home, readonly=True) as ledger:
        report = _batcher(ledger, home).audit(number)
    if json_out:
        emit_json({"number": report.number, "ok": report.ok, "problems": report.problems,
                   "facts": report.facts, "seconds": round(report.seconds, 3)})
    else:
        table = Table(title=f"batch {number}: {len(report.facts)} fact(s) re-verified")
        for col in ("worker", "call", "score", "reward", "proof"):
            table.add_column(col, justify="right" if col in ("score", "reward") else "left")
        for row in report.facts:
            table.add_row(row["worker"][:16], row["call"], str(row["score"]), str(row["reward"]),
                          "valid" if row["ok"] else row["reason"])
        Console(highlight=False, width=200).print(table)
        if report.ok:
            typer.echo(f"batch {number}: signature, proofs, stake events, facts root and "
                       f"state roots all check ({report.seconds:.2f} s)")
    if not report.ok:
        raise Rejected(f"batch {number} fails its audit: {report.problems[0]}")


@app.command("proof")
def batch_proof(
    ctx: typer.Context,
    worker_id: str = typer.Argument(..., metavar="WORKER",
                                    help="Worker id (64 hex digits, or a unique prefix)."),
    number: Optional[int] = typer.Option(None, "--batch", min=1, max=MAX_BATCH,
                                         help="Batch number (default: the last)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show a worker's account under a batch's state root: its Poseidon2 leaf (16 limbs) and the
    32 siblings of its path, checked offline by memjit.rollup.zkstate.AccountProof.verify (a
    worker no fact has touched has no index, hence no leaf)."""
    from memjit.market.ledger import Ledger
    from memjit.rollup.zkstate import root_bytes

    home = state_home(ctx, write=False)
    with Ledger(home, readonly=True) as ledger:
        record, p = _batcher(ledger, home).prove(resolve_worker(ledger, worker_id, known=False),
                                                 number)
    leaf = p.leaf
    fields = {"batch": record.header.number, "batch_hash": record.header.hash.hex(),
              "state_root": p.state_root.hex(), "worker": p.worker.hex(),
              "included": leaf is not None, "index": p.index,
              "account": None if leaf is None else {
                  "stake": leaf.stake, "usefulness": leaf.usefulness, "last_day": leaf.last_day,
                  "minted": leaf.minted, "slashed": leaf.slashed},
              "leaf": None if p.limbs is None else [int(x) for x in p.limbs],
              "siblings": None if p.siblings is None else [root_bytes(s).hex()
                                                           for s in p.siblings],
              "valid": p.verify()}
    if json_out:
        emit_json(fields)
        return
    for key, value in fields.items():
        if key == "siblings" and value is not None:
            value = f"{len(value)} (--json lists them)"
        elif key == "leaf" and value is not None:
            value = " ".join(map(str, value))
        typer.echo(f"{key:>10}: {'-' if value is None else value}")


@app.command("revert")
def batch_revert(
    ctx: typer.Context,
    number: int = _number("First batch to revert."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Revert batches N..last while still in their challenge window: facts pending again."""
    from memjit.market.ledger import Ledger
    from memjit.rollup.zkstate import root_bytes

    home = state_home(ctx, write=True)
    with Ledger(home) as ledger:
        batcher = _batcher(ledger, home)
        reverted = batcher.revert(number)
        root = root_bytes(batcher.state().root).hex()
        pending = len(batcher.pending())
    if json_out:
        emit_json({"reverted": reverted, "state_root": root, "pending_facts": pending})
    else:
        typer.echo(f"reverted batch(es) {', '.join(map(str, sorted(reverted)))}; state root "
                   f"{root}; {pending} fact(s) pending")


@app.command("committee")
def batch_committee(
    ctx: typer.Context,
    add: Optional[str] = typer.Option(None, "--add", help="Add the key NAME under --home/keys (created if new)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the committee that signs batches (the local node plus configured keys)."""
    from memjit.market.ledger import Ledger
    from memjit.rollup.committee import NODE_KEY, add_local, members

    home = state_home(ctx, write=add is not None)
    with Ledger(home, readonly=add is None) as ledger:
        if add is not None:
            add_local(ledger, home, add)
        found = [{"name": m.name, "public_key": m.public_key.hex()} for m in members(ledger)]
    if json_out:
        emit_json({"committee": found})
    else:
        for m in found:
            typer.echo(f"{m['name']:>16}: {m['public_key']}")
        if all(m["name"] != NODE_KEY for m in found):
            typer.echo(f"the local key {NODE_KEY!r} joins at the first commit")
