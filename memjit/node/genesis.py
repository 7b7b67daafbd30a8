"""The genesis a node pins: its network's name, the sequencer's key and the batch committee.

The sequencer of a new network writes its genesis once (its node key as sequencer, the
committee of its ledger, which holds that key) signed by the sequencer key, and serves it at
GET /v1/genesis; so does every node that pinned it. A node joining a network fetches the
genesis from the sequencer the DHT's network record names, checks that it is signed by that
record's owner key, and keeps it in `--home/genesis.json` (trust on first use, like an SSH
host key). From then on, across restarts, the node accepts only that key's network record
(the DHT validator is pinned: a rogue node claiming the sequencer role is refused) and a
follower only batches signed by that committee; a network whose genesis is not the pinned
one is refused (start over with a fresh home to join another network).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from memjit.errors import BadInput
from memjit.market.identity import Identity, verify
from memjit.market.ledger import Ledger
from memjit.rollup.committee import members, signers
from memjit.node.messages import Refused

GENESIS_FILE = "genesis.json"
DOMAIN = b"memjit/node/genesis/v1\0"
MAX_COMMITTEE = 255


@dataclass(frozen=True)
class Genesis:
    """A network's pinned identities (keys are 48-byte BLS public keys)."""

    network: str
    sequencer: bytes
    committee: tuple[bytes, ...]
    signature: bytes = b""

    def message(self) -> bytes:
        """What the sequencer signs: the domain, then the canonical JSON of the fields."""
        return DOMAIN + json.dumps({"network": self.network, "sequencer": self.sequencer.hex(),
                                    "committee": [k.hex() for k in self.committee]},
                                   sort_keys=True, separators=(",", ":")).encode()

    def signed(self, identity: Identity) -> "Genesis":
        """This genesis signed by the sequencer's key."""
        return replace(self, signature=identity.sign(self.message()))

    def check(self) -> "Genesis":
        """This genesis if its committee is canonical and the sequencer signed it (Refused)."""
        if not self.committee or list(self.committee) != sorted(set(self.committee)):
            raise Refused("genesis: the committee must be a non-empty sorted list of keys")
        if not verify(self.sequencer, self.message(), self.signature):
            raise Refused("genesis: not signed by its sequencer key")
        return self

    def to_json(self) -> dict:
        return {"network": self.network, "sequencer": self.sequencer.hex(),
                "committee": [k.hex() for k in self.committee],
                "signature": self.signature.hex()}

    @classmethod
    def from_json(cls, value: object) -> "Genesis":
        """A genesis from JSON (BadInput if malformed; its signature is not checked here)."""
        try:
            committee = value["committee"]
            if not isinstance(value["network"], str) or not isinstance(committee, list) \
                    or len(committee) > MAX_COMMITTEE:
                raise ValueError
            out = cls(value["network"], _key(value["sequencer"]),
                      tuple(_key(k) for k in committee), bytes.fromhex(value["signature"]))
        except (KeyError, TypeError, ValueError):
            raise BadInput("malformed genesis") from None
        if len(out.signature) != 96:
            raise BadInput("malformed genesis: the signature is 96 bytes")
        return out


def _key(text: object) -> bytes:
    key = bytes.fromhex(text)  # TypeError/ValueError for anything but hex text
    if len(key) != 48:
        raise ValueError
    return key


def founding(ledger: Ledger, home: Path, identity: Identity, network: str) -> Genesis:
    """The genesis a sequencer founds its network with: its key, and its ledger's batch
    committee (its node key added on first use), signed."""
    signers(ledger, home)
    return Genesis(network, identity.public_key,
                   tuple(m.public_key for m in members(ledger))).signed(identity)


def load(home: Path) -> Genesis | None:
    """The genesis pinned in `home`, if any."""
    path = Path(home) / GENESIS_FILE
    if not path.exists():
        return None
    return Genesis.from_json(json.loads(path.read_text())).check()


def pin(home: Path, genesis: Genesis) -> Genesis:
    """Keep `genesis` in `home` unless one is pinned already; the pinned genesis. Refused if
    another genesis is pinned there."""
    pinned = load(home)
    if pinned is not None:
        if pinned != genesis:
            raise Refused("this network's genesis is not the one pinned in this home "
                          f"({Path(home) / GENESIS_FILE})")
        return pinned
    path = Path(home) / GENESIS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(genesis.to_json(), indent=1))
    tmp.replace(path)
    return genesis


def learn(home: Path, url: str, network: str, sequencer: bytes | None) -> Genesis:
    """Fetch the genesis from the node at `url` (the sequencer), check it is `network`'s and
    signed by `sequencer` (the network record's owner; None: whoever signed it, when the
    sequencer was given by URL), and pin it (Refused if it contradicts the pinned one)."""
    try:
        response = httpx.get(url.rstrip("/") + "/v1/genesis", timeout=30)
        value = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise BadInput(f"cannot read the genesis of {url}: {exc}") from None
    genesis = Genesis.from_json(value).check()
    if genesis.network != network:
        raise Refused(f"genesis of network {genesis.network!r}, not {network!r}")
    if sequencer is not None and genesis.sequencer != sequencer:
        raise Refused("genesis not signed by the key of the network's sequencer record")
    return pin(home, genesis)
