"""Facts: what a settled claim leaves for the rollup.

Every verified, scored call becomes a fact when its emission period closes
(memjit.market.rewards.close_periods calls :func:`record_fact` and adds the reward to the owner's
`balances.pending` in the same transaction)::

    fact v1 = blake3("MJFACT" 0x01 || vk digest || statement digest || proof digest || u64 score)
    fact v2 = blake3("MJFACT" 0x02 || the same || u64 rate || u64 prior || u64 since
                     || u64 weight || u64 total weight || u64 emission)

    fact v3 = blake3("MJFACT" 0x03 || ASCII "<kind>:<worker id hex>:<amount>")

Facts come in kinds (`KINDS`): a **call** (versions 1 and 2: a verified, scored claim) or a
change of a worker's locked stake (version 3, :func:`record_stake_fact`, recorded by
memjit.market.bonds as the change happens): a **bond** (stake locked at registration), a
**release** (unbonded stake paid back to the owner when its unbonding period is over) or a
**slash** (stake burned from a cheater). The rollup's leaf holds the locked stake (bonded plus
unbonding: a slash takes from both, and starting to unbond is not a fact) and the slashed
total, so its state root commits to them. A stake fact's hash is ASCII after the version byte
so that ledger migration 8 computes it in SQL for the stake locked before it.

A version-2 fact carries how its reward was computed (:class:`Weighing`: the EMA rate the call
moved usefulness at, the usefulness before it, the seconds since the worker's last use, the
call's weight, its period's total weight and emission), so that the rollup's batch AIR proves
the reward from the worker's account (memjit.rollup, docs/rollup.md). Facts recorded before
the ledger kept these are version 1.

(:func:`claim_digests` gives the three digests of a claim file; a segmented claim's proof
digest is of all its segments' statements and proofs, verifier.claims.proof_bytes.) Facts are unique: a claim is
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
from memjit.market.ledger import check_amount, worker_key
from memjit.runtime.store import digest_of_cid
from verifier.claims import ClaimFormatError, decode_claim, proof_bytes, verify_claim
from verifier.claims import vk_digest as digest_of_vk

FACT_MAGIC = b"MJFACT"
HASH_BYTES = 32
_U64 = 1 << 64
KINDS = ("call", "bond", "release", "slash")
"""Fact kinds, in the order of their number in the batch AIR (circuits.rollup.batch)."""
STAKE_KINDS = KINDS[1:]


@dataclass(frozen=True)
class Weighing:
    """What a scored call's weight and reward were computed from (memjit.market.formulas):
    the EMA rate applied (ppm; 0 if usefulness did not move), the usefulness before the call,
    the seconds since the worker's last use, the weight, and its period's total weight and
    emission."""

    rate: int
    prior: int
    since: int
    weight: int
    total_weight: int
    emission: int

    def encode(self) -> bytes:
        return struct.pack(">6Q", self.rate, self.prior, self.since, self.weight,
                           self.total_weight, self.emission)


def fact_hash(vk: bytes, statement: bytes, proof: bytes, score: int,
              weighing: Weighing | None = None) -> bytes:
    """The fact of a verified claim: its VK, statement and proof digests and its score (and,
    version 2, how its reward was computed)."""
    head = FACT_MAGIC + bytes([1 if weighing is None else 2])
    tail = b"" if weighing is None else weighing.encode()
    return blake3.blake3(head + vk + statement + proof + struct.pack(">Q", score)
                         + tail).digest()


def stake_fact_hash(kind: str, worker_id: str, amount: int) -> bytes:
    """The fact of a change of a worker's locked stake (version 3; ledger migration 8 computes
    the same in SQL)."""
    return blake3.blake3(FACT_MAGIC + bytes([3])
                         + f"{kind}:{worker_id}:{amount}".encode()).digest()


def claim_digests(claim_bytes: bytes) -> tuple[bytes, bytes, bytes]:
    """(VK digest named by the statement, statement digest, proof digest) of a claim file;
    the proof digest of a segmented claim covers every segment's statement and proof."""
    try:
        claim = decode_claim(claim_bytes)
    except ClaimFormatError as exc:
        raise BadInput(f"malformed claim: {exc}") from None
    return (claim.statement.vk, blake3.blake3(claim.statement.encode()).digest(),
            blake3.blake3(proof_bytes(claim)).digest())


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
                claim_cid: str | None, now: float, weighing: Weighing | None = None) -> bytes:
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
    numbers = [("score", score), ("reward", reward)]
    if weighing is not None:
        numbers += [(name, getattr(weighing, name)) for name in
                    ("rate", "prior", "since", "weight", "total_weight", "emission")]
    for name, value in numbers:
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
    digest = fact_hash(vk_digest, statement_digest, proof_digest, score, weighing)
    w = (None,) * 6 if weighing is None else (weighing.rate, weighing.prior, weighing.since,
                                              weighing.weight, weighing.total_weight,
                                              weighing.emission)
    db.execute("INSERT INTO batch_facts (hash, worker, vk_digest, statement_digest, proof_digest, "
               "score, reward, claim_cid, recorded_at, rate, prior, since, weight, "
               "total_weight, emission) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (digest, worker_id, vk_digest, statement_digest, proof_digest, score, reward,
                claim_cid, now, *w))
    return digest


def record_stake_fact(db: sqlite3.Connection, *, worker_id: str, kind: str, amount: int,
                      now: float) -> bytes:
    """Record a pending stake fact (bond, release or slash of `amount` SWT of the worker's
    locked stake) inside the caller's open transaction `db`; returns its hash. An amount
    outside 1..MAX_AMOUNT is BadInput: the rollup's leaf holds no more (a batch with it could
    not be proven)."""
    worker_key(worker_id)
    if kind not in STAKE_KINDS:
        raise BadInput(f"a stake fact is one of {', '.join(STAKE_KINDS)}, not {kind!r}")
    check_amount(amount, f"a {kind} fact's amount", low=1)
    digest = stake_fact_hash(kind, worker_id, amount)
    db.execute("INSERT INTO batch_facts (hash, worker, score, reward, recorded_at, kind, amount) "
               "VALUES (?, ?, 0, 0, ?, ?, ?)", (digest, worker_id, now, kind, amount))
    return digest


@dataclass(frozen=True)
class Fact:
    """A fact as a batch carries it: whose, and for a call the three digests, score, reward
    and claim CID, for a stake fact its kind and amount (no digests, score 0, reward 0)."""

    worker: str  # hex worker id
    vk_digest: bytes | None
    statement_digest: bytes | None
    proof_digest: bytes | None
    score: int
    reward: int
    claim_cid: str | None
    weighing: Weighing | None = None  # version 2: how the reward was computed
    kind: str = "call"
    amount: int = 0  # the stake a bond, release or slash moves

    @classmethod
    def stake(cls, worker: str, kind: str, amount: int) -> "Fact":
        """A stake fact (bond, release or slash)."""
        return cls(worker, None, None, None, 0, 0, None, None, kind, amount)

    @property
    def hash(self) -> bytes:
        if self.kind != "call":
            return stake_fact_hash(self.kind, self.worker, self.amount)
        assert self.vk_digest and self.statement_digest and self.proof_digest
        return fact_hash(self.vk_digest, self.statement_digest, self.proof_digest, self.score,
                         self.weighing)
