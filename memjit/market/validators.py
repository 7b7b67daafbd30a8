"""Validators: owners who bond stake behind their labels, as Bittensor's validators stake behind
their weights. A requester's label moves usefulness at a rate in proportion to the stake it has
bonded here (formulas.label_rate, the full EMA rate at `OracleConfig.full_label_stake`), and
that stake is at risk: a label that a unanimous quorum of independent answers contradicts is
overruled and slashed (memjit.market.oracle). A requester without validator stake buys answers,
not scores. The bond follows memjit.market.bonds: bonded from the free balance, unbonding for
the registry's period, slashable until released.
"""

from __future__ import annotations

from memjit.errors import Rejected
from memjit.market import bonds
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger, Validator, check_amount
from memjit.market.registry import RegistryConfig
from memjit.market.rewards import FAUCET, faucet


def bond(ledger: Ledger, identity: Identity, amount: int,
         faucet_grant: int = FAUCET) -> Validator:
    """Bond `amount` of the owner's free balance behind its labels (a key new to the ledger
    first gets `faucet_grant`); Rejected above the free balance."""
    return bond_key(ledger, identity.public_key, amount, faucet_grant)


def bond_key(ledger: Ledger, owner: bytes, amount: int, faucet_grant: int = FAUCET) -> Validator:
    """`bond` for the owner key `owner` (what a node applies for a signed stake message)."""
    check_amount(amount, "validator stake", low=1)
    with ledger.transaction() as db:
        faucet(ledger, db, owner, faucet_grant)
        bonds.release_due(ledger, db)
        bonds.debit(ledger, db, owner, amount, "validator stake")
        db.execute("INSERT OR IGNORE INTO validators (owner, stake, bonded_at) VALUES (?, 0, ?)",
                   (owner, ledger.clock()))
        db.execute("UPDATE validators SET stake = stake + ? WHERE owner = ?", (amount, owner))
        bonds.record(ledger, db, bonds.VALIDATOR, owner, "bond", amount)
    validator = ledger.validator(owner)
    assert validator is not None
    return validator


def unbond(ledger: Ledger, identity: Identity, amount: int | None = None,
           config: RegistryConfig = RegistryConfig()) -> Validator:
    """Start unbonding `amount` of the owner's validator stake (all of it by default); it stays
    slashable until it is released after the unbonding period."""
    return unbond_key(ledger, identity.public_key, repr(identity.name), amount, config)


def unbond_key(ledger: Ledger, owner: bytes, who: str, amount: int | None = None,
               config: RegistryConfig = RegistryConfig()) -> Validator:
    """`unbond` for the owner key `owner` (`who` names it in errors)."""
    with ledger.transaction() as db:
        validator = ledger.validator(owner)
        if validator is None or validator.stake == 0:
            raise Rejected(f"{who} has no validator stake bonded")
        bonds.unbond(ledger, db, bonds.VALIDATOR, owner,
                     validator.stake if amount is None else amount, config.unbonding_s)
    validator = ledger.validator(owner)
    assert validator is not None
    return validator


def bonded(ledger: Ledger, owner: bytes) -> int:
    """The stake an owner has bonded behind its labels (0 if none)."""
    validator = ledger.validator(owner)
    return 0 if validator is None else validator.stake
