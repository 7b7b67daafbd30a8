"""Facts: what a settled claim leaves for the rollup.

Every verified, scored call becomes a fact when its emission period closes
(memjit.market.rewards.close_periods calls :func:`record_fact` and adds the reward to the owner's
`balances.pending` in the same transaction)::

    fact = blake3("MJFACT" 0x01 || vk digest || statement digest || proof digest || u64 score)

(:func:`claim_digests` gives the three digests of a claim file.) Facts are unique: a claim is
settled once, so a statement that already has a fact, pending or committed, is refused (the
statement binds the request's nonce: no claim answers two requests). A fact stays pending in
the ledger's `batch_facts` table until a committed batch includes it (memjit.rollup.batcher).
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass

import blake3

from memjit.errors import BadInput, Rejected
from memjit.market.ledger import worker_key
from memjit.runtime.store import digest_of_cid
from verifier.claims import ClaimFormatError, decode_claim, verify_claim
from verifier.claims import vk_digest as digest_of_vk

FACT_MAGIC = b"MJFACT\x01"
HASH_BYTES = 32
_U64 = 1 << 64


def fact_hash(vk: bytes, statement: bytes, proof: bytes, score: int) -> bytes:
    """The fact of a verified claim: its VK, statement and proof digests and its score."""
    return blake3.blake3(FACT_MAGIC + vk + statement + proof + struct.pack(">Q", score)).digest()


def claim_digests(claim_bytes: bytes) -> tuple[bytes, bytes, bytes]:
    """(VK digest named by the statement, statement digest, proof digest) of a claim file."""
    try:
        claim = decode_claim(claim_bytes)
    except ClaimFormatError as exc:
        raise BadInput(f"malformed claim: {exc}") from None
    return (claim.statement.vk, blake3.blake3(claim.statement.encode()).digest(),
            blake3.blake3(claim.proof).digest())


def claim_problem(fact: "Fact", claim_bytes: bytes, vk: bytes) -> str | None:
    """Why `claim_bytes` does not back `fact` under `vk`, or None: the VK's digest and the
    claim's statement and proof digests must be the fact's, and its proof must verify (the
    audit and a follower's replica ask this of every fact)."""
    try:
        digests = (digest_of_vk(vk), *claim_digests(claim_bytes)[1:])
    except BadInput as exc:
        return str(exc)
    if digests != (fact.vk_digest, fact.statement_digest, fact.proof_digest):
        return "the claim's digests are not the fact's"
    verdict = verify_claim(claim_bytes, vk)
    return None if verdict.valid else f"the proof does not verify: {verdict.reason}"


def record_fact(db: sqlite3.Connection, *, worker_id: str, vk_digest: bytes,
                statement_digest: bytes, proof_digest: bytes, score: int, reward: int,
                claim_cid: str | None, now: float) -> bytes:
    """Record a pending fact inside the caller's open transaction `db`; returns its hash.

    `reward` (integer SWT) is minted when a committed batch includes the fact; the caller adds it
    to the owner's pending balance in the same transaction. A VK digest that is not the worker's
    is Rejected, and so is a statement that already has a fact; malformed digests, amounts,
    CIDs or an unknown worker are BadInput.
    """
    worker_key(worker_id)
    digests = {"vk": vk_digest, "statement": statement_digest, "proof": proof_digest}
    for name, value in digests.items():
        if not isinstance(value, bytes) or len(value) != HASH_BYTES:
            raise BadInput(f"fact {name} digest must be {HASH_BYTES} bytes")
    for name, value in (("score", score), ("reward", reward)):
        if type(value) is not int or not 0 <= value < _U64:
            raise BadInput(f"fact {name} must be an integer in 0..2^64-1, got {value!r}")
    if claim_cid is not None:
        digest_of_cid(claim_cid)
    row = db.execute("SELECT vk FROM workers WHERE id = ?", (worker_id,)).fetchone()
    if row is None:
        raise BadInput(f"no worker {worker_id}")
    if row[0] is not None and digest_of_vk(row[0]) != vk_digest:
        raise Rejected(f"fact's VK digest is not the verification key of worker {worker_id}")
    if db.execute("SELECT 1 FROM batch_facts WHERE statement_digest = ?",
                  (statement_digest,)).fetchone() is not None:
        raise Rejected("this claim already has a fact (pending or committed): a claim is "
                       "settled once")
    digest = fact_hash(vk_digest, statement_digest, proof_digest, score)
    db.execute("INSERT INTO batch_facts (hash, worker, vk_digest, statement_digest, proof_digest, "
               "score, reward, claim_cid, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (digest, worker_id, vk_digest, statement_digest, proof_digest, score, reward,
                claim_cid, now))
    return digest


@dataclass(frozen=True)
class Fact:
    """A fact as a batch carries it: whose, the three digests, score, reward and claim CID."""

    worker: str  # hex worker id
    vk_digest: bytes
    statement_digest: bytes
    proof_digest: bytes
    score: int
    reward: int
    claim_cid: str | None

    @property
    def hash(self) -> bytes:
        return fact_hash(self.vk_digest, self.statement_digest, self.proof_digest, self.score)
