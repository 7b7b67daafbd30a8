"""Owner identities: BLS key pairs (the IETF ciphersuite with proofs of possession) kept under
--home/keys.

An owner signs its registrations, jobs, claims and deliveries; the proof of possession (a
signature of its own public key) stops rogue-key attacks once signatures are aggregated (the
batch committee). A key file `<home>/keys/NAME.key` (mode 0600, directory 0700) holds the
32-byte secret key in hex; it is derived with KeyGen from a fresh random 32-byte seed when NAME
is first used.

Signatures and their checks run on milagro-bls-binding (native, a few milliseconds each);
py-ecc, pure Python and tens of milliseconds per operation, is the reference the tests check
milagro's bytes against, and still does what milagro lacks: KeyGen and the proof of
possession (PopProve, PopVerify), each once per key. It is imported only for those (a
second under load): signing with a kept key, as `memjit request --node` does, needs milagro
alone.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from typing import Any

import milagro_bls_binding as milagro

from memjit.errors import BadInput

KEYS_DIR = "keys"
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
SECRET_KEY_BYTES = 32
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
"""r, the order of BLS12-381's groups: a secret key lies in 1..r-1 (py-ecc's curve_order)."""


def _py_ecc() -> Any:
    """py-ecc's proof-of-possession ciphersuite (KeyGen, PopProve, PopVerify), imported on
    first use."""
    from py_ecc.bls import G2ProofOfPossession

    return G2ProofOfPossession


def sign(secret_key: int, message: bytes) -> bytes:
    """The 96-byte BLS signature of `message` (milagro; byte-identical to py-ecc's Sign)."""
    return milagro.Sign(secret_key.to_bytes(SECRET_KEY_BYTES, "big"), bytes(message))


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public_key`'s signature of `message` (False on malformed input)."""
    try:
        return bool(milagro.Verify(bytes(public_key), bytes(message), bytes(signature)))
    except (ValueError, TypeError):
        return False


def public_key_of(secret_key: int) -> bytes:
    """The 48-byte compressed public key of a secret key (milagro's SkToPk)."""
    return milagro.SkToPk(secret_key.to_bytes(SECRET_KEY_BYTES, "big"))


def aggregate(signatures: list[bytes]) -> bytes:
    """One 96-byte signature aggregating `signatures` (milagro's Aggregate)."""
    return milagro.Aggregate([bytes(s) for s in signatures])


def fast_aggregate_verify(public_keys: list[bytes], message: bytes, signature: bytes) -> bool:
    """Whether all of `public_keys` signed `message`, given their aggregate `signature` (keys
    must have proven possession); False on malformed input."""
    try:
        return bool(public_keys) and bool(milagro.FastAggregateVerify(
            [bytes(k) for k in public_keys], bytes(message), bytes(signature)))
    except (ValueError, TypeError):
        return False


def pop_verify(public_key: bytes, proof: bytes) -> bool:
    """Whether `proof` is a valid proof of possession of `public_key`'s secret key."""
    return bool(_py_ecc().PopVerify(public_key, proof))


@dataclass(frozen=True)
class Identity:
    """A named owner key pair."""

    name: str
    secret_key: int
    public_key: bytes  # 48-byte compressed G1 point

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> "Identity":
        """The key pair KeyGen derives from a 32-byte (or longer) seed."""
        secret_key = _py_ecc().KeyGen(seed)
        return cls(name, secret_key, public_key_of(secret_key))

    def sign(self, message: bytes) -> bytes:
        """Sign `message` with this identity's secret key."""
        return sign(self.secret_key, message)

    def pop(self) -> bytes:
        """A proof of possession of the secret key (PopProve)."""
        return _py_ecc().PopProve(self.secret_key)


def key_path(home: Path, name: str) -> Path:
    """Where identity `name` is kept; refuses names that are not plain file names."""
    if not _NAME.fullmatch(name):
        raise BadInput(f"bad owner name {name!r}: use 1-64 letters, digits, '_', '-' or '.'")
    return Path(home) / KEYS_DIR / f"{name}.key"


def load_or_create(home: Path, name: str) -> Identity:
    """The identity `name` under `home`, created (random seed, file mode 0600) if it is new."""
    path = key_path(home, name)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load(path, name)
    except OSError as exc:
        raise BadInput(f"cannot create key {path}: {exc.strerror or exc}") from None
    identity = Identity.from_seed(name, secrets.token_bytes(32))
    with os.fdopen(fd, "w") as f:
        f.write(identity.secret_key.to_bytes(SECRET_KEY_BYTES, "big").hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return identity


def load(home: Path, name: str) -> Identity:
    """The existing identity `name` under `home` (BadInput if there is no such key)."""
    path = key_path(home, name)
    if not path.exists():
        raise BadInput(f"no owner key {name!r} under {path.parent}")
    return _load(path, name)


def _load(path: Path, name: str) -> Identity:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise BadInput(f"cannot read key {path}: {exc.strerror or exc}") from None
    if not re.fullmatch(r"[0-9a-f]{%d}" % (2 * SECRET_KEY_BYTES), text):
        raise BadInput(f"malformed key file {path}: expected {SECRET_KEY_BYTES} bytes in hex")
    secret_key = int(text, 16)
    if not 0 < secret_key < CURVE_ORDER:
        raise BadInput(f"malformed key file {path}: secret key out of range")
    return Identity(name, secret_key, public_key_of(secret_key))

