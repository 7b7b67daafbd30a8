"""Batches on the network: the sequencer proves what it commits and publishes every block a
batch needs; any node lists the batches it holds.

- **Prove.** `BatchPublisher` runs beside the sequencer's commit loop: it proves the committed
  batches that have no proof yet (memjit.rollup.proving.BatchProver, in a process of its own:
  a STARK takes seconds of CPU the node's API threads need), then publishes each newly
  proven batch.
- **Publish.** A batch is its header, data and proof bundle blocks, plus the claim and the VK
  each fact names; the sequencer stores them all in its content store (the header and the VKs
  are not there otherwise) and provides each CID in the DHT, and also the batch's rendezvous
  key (`rendezvous`: "who holds batch N"), which followers provide too once they hold it.
- **List.** GET /v1/batches?after=N lists `BatchRef`s (number, hash, the three CIDs): the
  sequencer from its ledger (committed batches, the bundle None until proven), a follower from
  its replica.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from memjit.errors import MemjitError
from memjit.market.ledger import Ledger
from memjit.market.pool import stop_pool
from memjit.node.log import log
from memjit.rollup.batcher import Batcher, decode_data
from memjit.rollup.replica import BatchRef
from memjit.runtime.store import Store, cid_of

MAX_REFS = 64


def rendezvous(network: str, number: int) -> str:
    """The DHT key whose providers hold batch `number` of `network` (a CID of its name)."""
    return cid_of(f"memjit/batch/{network}/{number}".encode())


def ledger_refs(ledger: Ledger, store: Store, after: int, limit: int) -> list[BatchRef]:
    """The committed batches numbered above `after` (at most `limit`), from the sequencer's
    ledger; each header is stored as a block (so that it can be served by CID)."""
    rows = ledger.db.execute(
        "SELECT b.number, b.hash, b.header, b.data_cid, p.bundle_cid FROM batches b LEFT JOIN "
        "batch_proofs p ON p.number = b.number WHERE b.number > ? ORDER BY b.number LIMIT ?",
        (after, limit)).fetchall()
    out = []
    for number, digest, header, data_cid, bundle_cid in rows:
        cid = cid_of(bytes(header))
        if not store.has(cid):
            store.put(bytes(header))
        out.append(BatchRef(number, bytes(digest), cid, data_cid, bundle_cid))
    return out


def proven_height(ledger: Ledger) -> int:
    """The last proven batch of the ledger (0: none): batches are proven in order."""
    return ledger.db.execute("SELECT max(number) FROM batch_proofs").fetchone()[0] or 0


def batch_blocks(ledger: Ledger, store: Store, ref: BatchRef) -> list[str]:
    """Every block batch `ref` needs (header, data, bundle, each fact's claim and VK), the VKs
    put in the store from the ledger's workers."""
    blocks = [ref.header, ref.data] + ([ref.bundle] if ref.bundle else [])
    for fact in decode_data(store.get(ref.data)).facts:
        if fact.kind != "call":
            continue  # a stake fact names no claim and needs no VK
        blocks.append(store.put(ledger.worker(fact.worker).vk))
        if fact.claim_cid is not None:
            blocks.append(fact.claim_cid)
    return list(dict.fromkeys(blocks))


def prove_home(home: Path) -> list[int]:
    """Prove every committed batch of `home`'s ledger that has no proof yet (runs in the
    publisher's prover process, on a ledger connection of its own); their numbers."""
    from memjit.rollup.proving import BatchProver

    with Ledger(home) as ledger:
        return BatchProver(Batcher(ledger, Store(home), home)).prove_pending()


class BatchPublisher:
    """The sequencer's prove-and-publish loop (see the module doc)."""

    def __init__(self, home: Path, run: Callable[[Callable], object], ledger: Callable[[], Ledger],
                 store: Store, provide: Callable[[Sequence[str]], None], network: str,
                 interval_s: float) -> None:
        self.home, self.run, self.ledger, self.store = Path(home), run, ledger, store
        self.provide, self.network, self.interval_s = provide, network, interval_s
        self.published = 0
        self._prover = ProcessPoolExecutor(1, mp_context=get_context("spawn"))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="batch-publisher")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        stop_pool(self._prover)
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def refs(self, after: int, limit: int) -> list[BatchRef]:
        """The committed batches above `after` (on the ledger's thread)."""
        return self.run(lambda: ledger_refs(self.ledger(), self.store, after, limit))

    def step(self) -> list[int]:
        """Prove what is unproven, then publish what is proven and not yet published."""
        refs = self.refs(self.published, MAX_REFS)
        if any(r.bundle is None for r in refs):
            self._prover.submit(prove_home, self.home).result()
            refs = self.refs(self.published, MAX_REFS)
        done = []
        for ref in refs:
            if ref.bundle is None:
                break
            blocks = self.run(lambda: batch_blocks(self.ledger(), self.store, ref))
            self.provide(blocks + [rendezvous(self.network, ref.number)])
            self.published = ref.number
            done.append(ref.number)
            log(f"published batch {ref.number}: {len(blocks)} blocks provided")
        return done

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                while self.step() and not self._stop.is_set():
                    pass
            except MemjitError as exc:
                log(f"proving or publishing batches failed: {exc}")
            except RuntimeError as exc:  # the prover pool shut down as the node stops
                if not self._stop.is_set():
                    log(f"proving batches failed: {exc}")
