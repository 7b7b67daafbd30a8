"""The verifier committee that signs batch headers: the local node plus any configured keys.

Members live in the ledger's `committee` table, each a named BLS key (the proof-of-possession
ciphersuite: memjit.market.identity) whose proof of possession is checked before it is added, so that an
aggregate signature cannot be forged with a rogue key. The local node's key is the identity
`node` under --home/keys, added on first use. Every member signs the 32-byte batch hash; the
signatures are aggregated into one, and a header is accepted after one FastAggregateVerify over
the committee's keys (milagro: milliseconds each).
Signing here is local: every member's key file must be under --home/keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memjit.errors import BadInput, Rejected
from memjit.market.identity import (Identity, aggregate, fast_aggregate_verify, key_path,
                                    load_or_create, pop_verify)
from memjit.market.ledger import Ledger

NODE_KEY = "node"
PUBLIC_KEY_BYTES = 48


@dataclass(frozen=True)
class Member:
    """One committee member: its key name, public key and proof of possession."""

    name: str
    public_key: bytes
    pop: bytes


def members(ledger: Ledger) -> list[Member]:
    """The committee, ordered by public key (the order of a header's committee field)."""
    rows = ledger.db.execute("SELECT name, pubkey, pop FROM committee ORDER BY pubkey")
    return [Member(name, bytes(pk), bytes(pop)) for name, pk, pop in rows.fetchall()]


def add_member(ledger: Ledger, name: str, public_key: bytes, pop: bytes) -> Member:
    """Add a key to the committee after checking its proof of possession (Rejected if bad)."""
    if len(public_key) != PUBLIC_KEY_BYTES or not pop_verify(public_key, pop):
        raise Rejected(f"committee key {name!r}: bad public key or proof of possession")
    member = Member(name, bytes(public_key), bytes(pop))
    with ledger.transaction() as db:
        row = db.execute("SELECT pubkey FROM committee WHERE name = ? OR pubkey = ?",
                         (name, member.public_key)).fetchone()
        if row is not None and bytes(row[0]) == member.public_key:
            return member  # already a member
        if row is not None:
            raise Rejected(f"committee already has a member named {name!r} with another key")
        db.execute("INSERT INTO committee VALUES (?, ?, ?, ?)",
                   (member.public_key, name, member.pop, ledger.clock()))
    return member


def add_local(ledger: Ledger, home: Path, name: str) -> Member:
    """Add the identity `name` under `home` (created if new) to the committee."""
    identity = load_or_create(home, name)
    return add_member(ledger, name, identity.public_key, identity.pop())


def signers(ledger: Ledger, home: Path) -> list[Identity]:
    """The keys that sign this node's batches: every member's key file, the node's own
    included (created and added on first use)."""
    if not any(m.name == NODE_KEY for m in members(ledger)):
        add_local(ledger, home, NODE_KEY)
    out = []
    for member in members(ledger):
        if not key_path(home, member.name).is_file():
            raise BadInput(f"cannot sign: no key file for committee member {member.name!r}")
        identity = load_or_create(home, member.name)
        if identity.public_key != member.public_key:
            raise BadInput(f"key file of committee member {member.name!r} holds another key")
        out.append(identity)
    return out


def sign(identities: list[Identity], message: bytes) -> bytes:
    """The aggregate of every identity's signature of `message` (96 bytes)."""
    return aggregate([identity.sign(message) for identity in identities])


def verify(public_keys: tuple[bytes, ...] | list[bytes], message: bytes,
           signature: bytes) -> bool:
    """One FastAggregateVerify: did all of `public_keys` sign `message`? False if malformed."""
    return fast_aggregate_verify(list(public_keys), message, signature)
