"""A follower's replica of the rollup: each batch is checked against the chain the replica
already holds, and applied only if every check passes.

A batch travels as three content blocks, named by a `BatchRef` (its number, its hash and the
CIDs of its header, data and proof bundle), plus the claim and the verification key each of
its facts names (the VK by its digest: `cid_of_digest`). `Replica.check` fetches them through
a caller's `fetch(cid)` (which must re-hash what it gets) and refuses the batch (`BadBatch`)
unless:

1. the header decodes, is the next number, has the hash the ref names and chains onto the
   replica's head (its previous hash);
2. its committee is the genesis committee the replica was opened with, and their aggregate
   BLS signature of the header hash verifies;
3. the data matches the header (`check_data`: facts root, count, scores, minted total);
4. the proof bundle proves the header's state transition from the previous batch's proven
   root (`check_bundle`, at `min_security_bits`): the proof replaces recomputing the roots;
5. every fact's claim has the fact's digests, names the VK the worker always had in this
   replica, and verifies under that VK (the embedded verifier);
6. as a cheap extra, the Poseidon2 state the replica holds has the header's state root
   before, and recomputed from the facts (`RollupState`) its state root after.

The replica keeps, in `replica.sqlite` under its home, each applied batch's ref and each
worker's VK digest; the blocks are in the node's content store, and the Poseidon2 state is
replayed from the stored data when the replica opens.
"""

from __future__ import annotations

import copy
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from memjit.errors import BadInput, MemjitError, Rejected
from memjit.market.facts import Fact, claim_problem
from memjit.rollup.batcher import BatchData, check_data, decode_data
from memjit.rollup.committee import verify
from memjit.rollup.header import ZERO_HASH, Header, decode_header
from memjit.rollup.proving import check_bundle
from memjit.rollup.zkstate import RollupState, day_of, root_bytes
from memjit.runtime.store import Store, cid_of_digest, digest_of_cid
from verifier.batch import Bundle, BundleFormatError, decode_bundle
from verifier.params import DEFAULT_MIN_SECURITY_BITS

DB_FILE = "replica.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (number INTEGER PRIMARY KEY, hash BLOB NOT NULL,
    header_cid TEXT NOT NULL, data_cid TEXT NOT NULL, bundle_cid TEXT NOT NULL,
    applied_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, vk_digest BLOB NOT NULL);
"""


class BadBatch(Rejected):
    """A batch that fails a check: it is refused, and whoever served it is not trusted for it."""


@dataclass(frozen=True)
class BatchRef:
    """Where batch `number` is: its hash and the CIDs of its header, data and proof bundle
    (None while the batch is committed but not proven yet)."""

    number: int
    hash: bytes
    header: str
    data: str
    bundle: str | None

    def to_json(self) -> dict:
        return {"number": self.number, "hash": self.hash.hex(), "header": self.header,
                "data": self.data, "bundle": self.bundle}

    @classmethod
    def from_json(cls, value: object) -> "BatchRef":
        """A ref from a peer's JSON (BadInput if malformed)."""
        try:
            number, digest = value["number"], bytes.fromhex(value["hash"])
            cids = [value[k] for k in ("header", "data")]
            bundle = value["bundle"]
            if not isinstance(number, int) or isinstance(number, bool) or number < 1 \
                    or len(digest) != 32:
                raise ValueError
            for cid in cids + ([] if bundle is None else [bundle]):
                digest_of_cid(cid)
        except (KeyError, TypeError, ValueError, BadInput):
            raise BadInput("malformed batch reference") from None
        return cls(number, digest, cids[0], cids[1], bundle)


@dataclass(frozen=True)
class CheckedBatch:
    """A batch that passed every check, with the state it leads to."""

    ref: BatchRef
    header: Header
    data: BatchData
    bundle: Bundle
    state: RollupState
    blocks: dict[str, bytes]  # every block the batch needs: header, data, bundle, claims, VKs


class Replica:
    """The batches a follower checked and applied (see the module doc). Thread-safe."""

    def __init__(self, home: Path, store: Store, committee: Sequence[bytes],
                 min_security_bits: int = DEFAULT_MIN_SECURITY_BITS) -> None:
        self.store = store
        self.committee = tuple(sorted(bytes(k) for k in committee))
        self.min_security_bits = min_security_bits
        self._lock = threading.RLock()
        Path(home).mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(Path(home) / DB_FILE, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.state = RollupState.genesis()
        self.head: Header | None = None
        self._proven_root: tuple[int, ...] | None = None  # the head's, by its bundle
        self._vks = {w: bytes(d) for w, d in self.db.execute("SELECT id, vk_digest FROM workers")}
        for ref in self.refs(0):  # replay the applied batches (their blocks are in the store)
            self.head = decode_header(store.get(ref.header))
            self.state.apply(decode_data(store.get(ref.data)).facts, day_of(self.head.timestamp_ms))
        if self.head is not None:
            self._proven_root = decode_bundle(
                store.get(self.refs(self.height - 1, 1)[0].bundle)).new_root

    @property
    def height(self) -> int:
        """The number of the last applied batch (0: none)."""
        return 0 if self.head is None else self.head.number

    def refs(self, after: int, limit: int = 1 << 30) -> list[BatchRef]:
        """The applied batches numbered above `after`, in order (at most `limit`)."""
        with self._lock:
            rows = self.db.execute("SELECT number, hash, header_cid, data_cid, bundle_cid FROM "
                                   "batches WHERE number > ? ORDER BY number LIMIT ?",
                                   (after, limit)).fetchall()
        return [BatchRef(n, bytes(h), hc, dc, bc) for n, h, hc, dc, bc in rows]

    def check(self, ref: BatchRef, source: Callable[[str], bytes]) -> CheckedBatch:
        """Fetch (through `source(cid)`, which re-hashes) and check batch `ref` against the
        replica's head (BadBatch on any failure; `source`'s own errors pass through: a block
        that could not be had is not a bad batch)."""
        with self._lock:
            head, proven_root, state = self.head, self._proven_root, copy.deepcopy(self.state)
            vks = dict(self._vks)
        blocks: dict[str, bytes] = {}

        def fetch(cid: str) -> bytes:  # each block once, kept for `apply`
            if cid not in blocks:
                blocks[cid] = source(cid)
            return blocks[cid]
        if ref.bundle is None:
            raise BadBatch(f"batch {ref.number} is not proven yet")
        header = _decoded(decode_header, fetch(ref.header), "header")
        want = 1 if head is None else head.number + 1
        if header.number != want or ref.number != want:
            raise BadBatch(f"batch {header.number} is not the next batch ({want})")
        if header.hash != ref.hash:
            raise BadBatch(f"batch {want}'s header does not have the hash its reference names")
        if header.prev_hash != (ZERO_HASH if head is None else head.hash):
            raise BadBatch(f"batch {want}'s previous hash is not the replica's head")
        if header.committee != self.committee:
            raise BadBatch(f"batch {want} is not signed by the genesis committee")
        if not verify(header.committee, header.hash, header.signature):
            raise BadBatch(f"batch {want}: the committee's aggregate signature does not verify")
        if header.state_root_before != root_bytes(state.root):
            raise BadBatch(f"batch {want}'s state root before is not the replica's root")
        data = _decoded(decode_data, fetch(ref.data), "data")
        problems = check_data(header, data)
        if problems:
            raise BadBatch(f"batch {want}: {problems[0]}")
        bundle = _decoded(decode_bundle, fetch(ref.bundle), "proof bundle")
        verdict = check_bundle(header, bundle, proven_root, self.min_security_bits)
        if not verdict.valid:
            raise BadBatch(f"batch {want}'s proof does not verify: {verdict.reason}")
        for fact in (f for f in data.facts if f.kind == "call"):  # stake facts: no claim
            if vks.setdefault(fact.worker, fact.vk_digest) != fact.vk_digest:
                raise BadBatch(f"batch {want} names another VK for worker {fact.worker[:16]}")
            check_fact(fact, fetch, want)
        state.apply(data.facts, day_of(header.timestamp_ms))
        if root_bytes(state.root) != header.state_root_after:
            raise BadBatch(f"batch {want}'s facts do not lead to its state root after")
        return CheckedBatch(ref, header, data, bundle, state, blocks)

    def apply(self, batch: CheckedBatch) -> None:
        """Store a checked batch's blocks, then record it as the new head (one transaction)."""
        ref = batch.ref
        for cid, data in batch.blocks.items():
            if not self.store.has(cid):
                self.store.put(data)
        with self._lock:
            if ref.number != self.height + 1:
                raise BadBatch(f"batch {ref.number} no longer follows the head ({self.height})")
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                                (ref.number, ref.hash, ref.header, ref.data, ref.bundle,
                                 time.time()))
                self.db.executemany("INSERT OR IGNORE INTO workers VALUES (?, ?)",
                                    {(f.worker, f.vk_digest) for f in batch.data.facts
                                     if f.kind == "call"})
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            for f in batch.data.facts:
                if f.kind == "call":
                    self._vks.setdefault(f.worker, f.vk_digest)
            self.head, self._proven_root, self.state = batch.header, batch.bundle.new_root, \
                batch.state

    def close(self) -> None:
        with self._lock:
            self.db.close()


def check_fact(fact: Fact, fetch: Callable[[str], bytes], number: int) -> None:
    """Re-verify one fact's claim under the VK it names (BadBatch if it fails)."""
    if fact.claim_cid is None:
        raise BadBatch(f"batch {number} has a fact that names no claim")
    problem = claim_problem(fact, fetch(fact.claim_cid), fetch(cid_of_digest(fact.vk_digest)))
    if problem is not None:
        raise BadBatch(f"batch {number}: claim {fact.claim_cid}: {problem}")


def _decoded(decode: Callable[[bytes], object], data: bytes, what: str):
    """`decode(data)`, a malformed block being a BadBatch."""
    try:
        return decode(data)
    except (MemjitError, BundleFormatError) as exc:
        raise BadBatch(f"malformed batch {what}: {exc}") from None
