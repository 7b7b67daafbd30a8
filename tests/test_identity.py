"""Owner identities: key files, signatures and proofs of possession (py-ecc BLS)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from memjit.errors import BadInput
from memjit.market.identity import Identity, key_path, load_or_create, pop_verify, verify


def test_created_once_private_and_reloaded(tmp_path: Path) -> None:
    alice = load_or_create(tmp_path, "alice")
    path = key_path(tmp_path, "alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create(tmp_path, "alice") == alice
    assert load_or_create(tmp_path, "bob").public_key != alice.public_key
    assert len(alice.public_key) == 48


def test_sign_verify_and_proof_of_possession() -> None:
    alice = Identity.from_seed("alice", b"\x07" * 32)
    bob = Identity.from_seed("bob", b"\x08" * 32)
    signature = alice.sign(b"register")
    assert verify(alice.public_key, b"register", signature)
    assert not verify(alice.public_key, b"registers", signature)
    assert not verify(bob.public_key, b"register", signature)
    assert not verify(b"\x00" * 48, b"register", signature)  # malformed key: False, no raise
    assert pop_verify(alice.public_key, alice.pop())
    assert not pop_verify(alice.public_key, bob.pop())
    assert not pop_verify(alice.public_key, signature)


@pytest.mark.parametrize("name", ["", "../x", ".hidden", "a/b", "x" * 65])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInput, match="bad owner name"):
        load_or_create(tmp_path, name)


@pytest.mark.parametrize("text", ["zz", "00" * 32, "ff" * 32])
def test_malformed_key_files_are_refused(tmp_path: Path, text: str) -> None:
    path = key_path(tmp_path, "eve")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(BadInput, match="malformed key file"):
        load_or_create(tmp_path, "eve")


def test_the_curve_order_is_py_ecc_s() -> None:
    """identity keeps BLS12-381's group order as a constant (py-ecc is imported only for KeyGen
    and proofs of possession): it is py-ecc's."""
    from py_ecc.optimized_bls12_381 import curve_order

    from memjit.market.identity import CURVE_ORDER

    assert CURVE_ORDER == curve_order
