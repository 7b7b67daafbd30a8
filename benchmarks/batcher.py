"""`memjit bench batcher`: batch commit throughput, Poseidon2 state tree costs, share of BLS.

A fresh ledger (temporary home) gets `accounts` workers and a first batch. Then, for each batch size, facts with random digests (no STARK proofs: the
oracle verifies those before recording, so they are excluded here) are recorded for random
workers and one batch is cut and committed; the median of `repeats` batches is reported.
A commit's time is split into BLS signing (every committee member signs the batch hash), the
BLS check (one FastAggregateVerify) and the rest (the facts applied to the Poseidon2 tree,
header, data block, SQLite transaction). The tree itself is timed on `accounts` accounts.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

import memjit.rollup.batcher as batcher_module
from circuits.rollup.leaf import Leaf, key_hash
from memjit.market.facts import record_fact
from memjit.market.ledger import Ledger, Worker
from memjit.rollup.batcher import BatchConfig, Batcher
from memjit.rollup.committee import add_local
from memjit.rollup.tree import StateTree, verify_path
from memjit.runtime.store import Store

OWNERS = 100


class _Timed:
    """Wraps a function and adds up the wall time spent in it."""

    def __init__(self, fn: Callable) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args: object) -> object:
        start = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - start


def bench_tree(accounts: int, samples: int = 1000, seed: int = 1) -> dict:
    """Build a Poseidon2 state tree of `accounts` leaves; time updates (the witness each fact
    needs), inserts at fresh indexes, and the reference check of a path."""
    rng = random.Random(seed)
    keys = [tuple(int(x) for x in key_hash(rng.randbytes(32))) for _ in range(accounts + samples)]
    start = time.perf_counter()
    tree = StateTree()
    tree.build({i: Leaf(keys[i], 500, 250_000, 20_000, 10**6).limbs() for i in range(accounts)})
    build_s = time.perf_counter() - start
    chosen = rng.sample(range(accounts), min(samples, accounts))
    start = time.perf_counter()
    witnesses = [tree.update(i, Leaf(keys[i], 500, n, 20_001, 10**6).limbs())
                 for n, i in enumerate(chosen)]
    update_us = (time.perf_counter() - start) / len(chosen) * 1e6
    root = tree.root
    start = time.perf_counter()
    ok = all(verify_path(root, i, tree.limbs(i), tree.siblings(i)) for i in chosen[:100])
    verify_us = (time.perf_counter() - start) / min(100, len(chosen)) * 1e6
    if not ok or not witnesses:
        raise RuntimeError("a benchmark path did not verify")
    start = time.perf_counter()
    for i in range(accounts, accounts + samples):
        tree.update(i, Leaf(keys[i]).limbs())
    insert_us = (time.perf_counter() - start) / samples * 1e6
    return {"accounts": accounts, "build_s": round(build_s, 3), "update_us": round(update_us, 1),
            "insert_us": round(insert_us, 1), "verify_us": round(verify_us, 1),
            "proof_bytes": 16 * 4 + 32 * 32}


def _populate(ledger: Ledger, accounts: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """Register `accounts` workers (ledger rows only) under OWNERS owners; (id, owner) pairs."""
    owners = [rng.randbytes(48) for _ in range(OWNERS)]
    workers = [(rng.randbytes(32).hex(), owners[i % OWNERS]) for i in range(accounts)]
    with ledger.transaction() as db:
        for owner in owners:
            ledger.add_owner(db, owner)
        for i, (wid, owner) in enumerate(workers):
            ledger.add_worker(db, Worker(wid, owner, f"bench-{i}", "digits", None, 500, 0,
                                         ledger.clock(), None, 0, None, "active"))
    return workers


def _record(ledger: Ledger, workers: list[tuple[str, bytes]], n: int, rng: random.Random) -> None:
    """Record n facts for random workers, as the oracle does (reward pending for the owner)."""
    with ledger.transaction() as db:
        for wid, owner in rng.choices(workers, k=n):
            reward = rng.randrange(1, 1000)
            record_fact(db, worker_id=wid, vk_digest=rng.randbytes(32),
                        statement_digest=rng.randbytes(32), proof_digest=rng.randbytes(32),
                        score=rng.randrange(1_000_001), reward=reward, claim_cid=None,
                        now=ledger.clock())
            ledger.credit(db, owner, pending=reward)


def bench_commits(accounts: int, sizes: list[int], repeats: int = 3, committee: int = 1,
                  seed: int = 2) -> dict:
    """Commit batches of each size over `accounts` worker accounts; medians of `repeats`."""
    rng = random.Random(seed)
    sign, verify = _Timed(batcher_module.sign), _Timed(batcher_module.verify)
    with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp)) as ledger:
        home = Path(tmp)
        for i in range(committee - 1):
            add_local(ledger, home, f"member{i}")
        workers = _populate(ledger, accounts, rng)
        batcher = Batcher(ledger, Store(home), home, BatchConfig(max_facts=max(sizes)))
        _record(ledger, workers, 1, rng)
        start = time.perf_counter()
        batcher.commit_pending(force=True)  # genesis
        genesis_s = time.perf_counter() - start
        batcher_module.sign, batcher_module.verify = sign, verify
        try:
            rows = []
            for size in sizes:
                runs = []
                for _ in range(repeats):
                    _record(ledger, workers, size, rng)
                    sign.seconds = verify.seconds = 0.0
                    start = time.perf_counter()
                    batch = batcher.cut()
                    if batch is None or not batcher.commit(batch):
                        raise RuntimeError("the benchmark batch was not committed")
                    total = time.perf_counter() - start
                    runs.append((total, sign.seconds, verify.seconds,
                                 len({f.worker for f in batch.data.facts})))
                total, sign_s, verify_s, changed = sorted(runs)[len(runs) // 2]
                rows.append({"facts": size, "seconds": round(total, 4),
                             "facts_per_s": round(size / total, 1),
                             "accounts_changed": changed, "bls_sign_s": round(sign_s, 4),
                             "bls_check_s": round(verify_s, 4),
                             "bls_check_share": round(verify_s / total, 3),
                             "bls_share": round((sign_s + verify_s) / total, 3),
                             "facts_per_s_without_bls": round(
                                 size / (total - sign_s - verify_s), 1)})
        finally:
            batcher_module.sign, batcher_module.verify = sign.fn, verify.fn
    return {"genesis_s": round(genesis_s, 3), "batches": rows}


def bench_batcher(accounts: int = 10_000, sizes: list[int] | tuple[int, ...] = (10, 100, 1000),
                  committee: int = 1, proof_sizes: list[int] | tuple[int, ...] = (),
                  segment_facts: int | None = None) -> dict:
    """The whole benchmark: tree costs and commit throughput at `accounts` accounts, and the
    batch proofs of `proof_sizes` facts (benchmarks.batch_proof)."""
    from benchmarks.batch_proof import bench_batch_proofs

    return {"accounts": accounts, "committee": committee, "tree": bench_tree(accounts),
            **bench_commits(accounts, list(sizes), committee=committee),
            "proofs": (bench_batch_proofs(list(proof_sizes), segment_facts=segment_facts)
                       if proof_sizes else None)}


def print_report(result: dict) -> None:
    """The human-readable report of bench_batcher."""
    console = Console(highlight=False, width=max(Console().width, 120))
    tree = result["tree"]
    console.print(f"Poseidon2 state tree, {tree['accounts']} accounts: build {tree['build_s']} s, "
                  f"update {tree['update_us']} us, insert {tree['insert_us']} us, "
                  f"path {tree['proof_bytes']} B, verify (numpy reference) "
                  f"{tree['verify_us']} us")
    console.print(f"genesis batch: {result['genesis_s']} s")
    table = Table(title=f"batch commits, {result['accounts']} accounts, committee of "
                        f"{result['committee']} (no STARK verification)")
    for col in ("facts", "s", "facts/s", "accounts changed", "BLS sign s", "BLS check s",
                "BLS check share", "BLS share", "facts/s w/o BLS"):
        table.add_column(col, justify="right")
    for r in result["batches"]:
        table.add_row(str(r["facts"]), f"{r['seconds']:.3f}", f"{r['facts_per_s']:.0f}",
                      str(r["accounts_changed"]), f"{r['bls_sign_s']:.3f}",
                      f"{r['bls_check_s']:.3f}", f"{100 * r['bls_check_share']:.0f}%",
                      f"{100 * r['bls_share']:.0f}%", f"{r['facts_per_s_without_bls']:.0f}")
    console.print(table)
    if result.get("proofs"):
        proofs = result["proofs"]
        table = Table(title=f"batch proofs (batch AIR, 100-bit parameters, "
                            f"{proofs['accounts']} accounts, segments of at most "
                            f"{proofs['points'][0]['segment_facts']} facts)")
        for col in ("facts", "segments", "rows/segment", "witness s", "prove s", "prove CPU s",
                    "verify ms", "verify CPU ms", "decode ms", "proof KB", "bundle KB", "bits",
                    "peak RSS MB", "load"):
            table.add_column(col, justify="right")
        for p in proofs["points"]:
            table.add_row(str(p["facts"]), str(p["segments"]), str(p["rows"]),
                          f"{p['witness_s']:.2f}", f"{p['prove_s']:.2f}",
                          f"{p['prove_cpu_s']:.2f}", f"{p['verify_ms']:.1f}",
                          f"{p['verify_cpu_ms']:.1f}", f"{p['decode_ms']:.1f}",
                          f"{p['proof_kb']:.1f}", f"{p['bundle_kb']:.1f}",
                          str(p["security_bits"]), str(p["peak_rss_mb"]),
                          f"{p['load_avg']:.1f}")
        console.print(table)
        g = proofs["growth"]
        console.print(f"growth exponents (least squares, facts^k): prove {g['prove_s']} (CPU "
                      f"{g['prove_cpu_s']}), verify {g['verify_ms']} (CPU {g['verify_cpu_ms']}), "
                      f"proof size {g['proof_kb']}, bundle size "
                      f"{g['bundle_kb']}, peak RSS {g['peak_rss_mb']}")


if __name__ == "__main__":
    print_report(bench_batcher())
