"""`memjit bench network --batches N`: what a follower costs.

A sequencer home is prepared in process: one worker (fib), `claims` real claims per batch
recorded as facts, N batches committed and proven (the default 100-bit parameters). Then:

- **bytes per batch**: what a follower downloads for one batch (header, data, proof bundle,
  the claims; the worker's VK once, counted apart);
- **verification throughput**: a fresh `Replica` checks and applies the N batches from the
  store in process (committee signature, data, bundle, every claim, Poseidon2 root): claims
  re-verified per second, and the wall time per batch;
- **catch-up over the network**: a `memjit node start` sequencer on that home (it publishes
  the batches in the DHT) and a follower process joined with --bootstrap only; the time from
  the follower listening to its replica holding all N batches (DHT lookups, HTTP fetches of
  every block, every check).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from memjit import workers
from memjit.market.facts import claim_digests, record_fact
from memjit.market.ledger import Ledger, Worker
from memjit.market.identity import Identity
from memjit.market.registry import worker_id
from memjit.node.local import LocalNetwork, wait_until
from memjit.rollup.batcher import Batcher
from memjit.rollup.committee import add_local
from memjit.rollup.proving import BatchProver
from memjit.rollup.replica import Replica
from memjit.runtime.claims import prove_claim, vk_of
from memjit.runtime.store import Store
from memjit.node.batches import batch_blocks, ledger_refs

CATCH_UP_TIMEOUT_S = 900.0


def prepare(home: Path, batches: int, claims: int) -> list[int]:
    """N proven batches of `claims` fib facts each in `home`; the claims' sizes."""
    owner = Identity.from_seed("bench-owner", b"\x42" * 32)
    module = workers.load("fib")
    sizes = []
    with Ledger(home) as ledger:
        store = Store(home)
        cid = store.put(module)
        wid = worker_id(owner.public_key, cid)
        with ledger.transaction() as db:
            ledger.add_owner(db, owner.public_key)
            ledger.add_worker(db, Worker(wid, owner.public_key, cid, "fib", vk_of(module), 500,
                                         0, ledger.clock(), None, 0, None, "active"))
        add_local(ledger, home, "node")
        batcher = Batcher(ledger, store, home)
        for b in range(batches):
            for c in range(claims):
                claim = prove_claim(module, "fib", (5 + b * claims + c,)).encode()
                sizes.append(len(claim))
                vk, st, proof = claim_digests(claim)
                with ledger.transaction() as db:
                    record_fact(db, worker_id=wid, vk_digest=vk, statement_digest=st,
                                proof_digest=proof, score=500_000, reward=10,
                                claim_cid=store.put(claim), now=ledger.clock())
                    ledger.credit(db, owner.public_key, pending=10)
            batcher.commit_pending(force=True)
        BatchProver(batcher).prove_pending()
        for ref in ledger_refs(ledger, store, 0, batches):
            batch_blocks(ledger, store, ref)  # the VK goes to the store, as when published
    return sizes


def bench_followers(batches: int = 4, claims: int = 2) -> dict:
    """Prepare N batches, then time a replica in process and a follower over the network."""
    with tempfile.TemporaryDirectory(prefix="memjit-followers-") as tmp:
        root = Path(tmp)
        seq_home = root / "seq"
        seq_home.mkdir()
        t = time.perf_counter()
        claim_sizes = prepare(seq_home, batches, claims)
        prepare_s = time.perf_counter() - t
        store = Store(seq_home)
        with Ledger(seq_home) as ledger:
            refs = ledger_refs(ledger, store, 0, batches)
            committee = [bytes(k) for (k,) in ledger.db.execute("SELECT pubkey FROM committee")]
        per_batch = [sum(len(store.get(c)) for c in (r.header, r.data, r.bundle)) for r in refs]
        replica = Replica(root / "replica", Store(root / "replica"), committee)
        t = time.perf_counter()
        for ref in refs:
            replica.apply(replica.check(ref, store.get))
        verify_s = time.perf_counter() - t
        replica.close()
        with LocalNetwork(root) as net:
            net.start("seq", "--batch-interval", "0.5")
            assert wait_until(lambda: _height(net.sequencer.url, "proven") >= batches, 120, 0.5)
            t = time.perf_counter()
            follower = net.start("follower", "--follow")
            start_s = time.perf_counter() - t
            t = time.perf_counter()
            done = wait_until(lambda: _height(follower.url, "height") >= batches,
                              CATCH_UP_TIMEOUT_S, 0.2)
            catch_up_s = time.perf_counter() - t
        n_claims = batches * claims
        return {
            "batches": batches,
            "claims_per_batch": claims,
            "prepare_s": round(prepare_s, 1),
            "bytes_per_batch": round(sum(per_batch) / batches + sum(claim_sizes) / batches),
            "bundle_header_data_bytes_per_batch": round(sum(per_batch) / batches),
            "claim_bytes_avg": round(sum(claim_sizes) / len(claim_sizes)),
            "replica_claims_per_s": round(n_claims / verify_s, 2),
            "replica_s_per_batch": round(verify_s / batches, 3),
            "follower_start_s": round(start_s, 2),
            "follower_catch_up_s": round(catch_up_s, 2) if done else None,
        }


def _height(url: str, field: str) -> int:
    import httpx

    try:
        return int(httpx.get(url + "/v1/status", timeout=30).json().get(field) or 0)
    except (httpx.HTTPError, ValueError):
        return 0
