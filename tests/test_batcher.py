"""The rollup batcher on real claims: facts, commits and their rules, minting, account proofs,
revert within the challenge window, the audit from the content store, and the `batch` CLI."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import cli

from memjit import workers
from memjit.rollup.committee import add_local, add_member, members, sign
from memjit.rollup.header import BatchFormatError, decode_header, root_bytes
from memjit.rollup.batcher import Batch, BatchConfig, Batcher, facts_root
from memjit.rollup.proving import BatchProver
from memjit.market.facts import claim_digests, fact_hash, record_fact
from memjit.market.formulas import RATE_STEP, ema
from memjit.runtime.claims import prove_claim, vk_of
from memjit.errors import BadInput, Rejected
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger, Worker
from memjit.market.registry import worker_id
from memjit.rollup.zkstate import FACT_RATE, GENESIS_ROOT, AccountProof, day_of
from memjit.runtime.store import Store

ALICE = Identity.from_seed("alice", b"\x0a" * 32)  # owns the fib worker
BOB = Identity.from_seed("bob", b"\x0b" * 32)  # owns the crc32 worker
CALLS = {"fib10": ("fib", "fib", (10,)), "fib11": ("fib", "fib", (11,)),
         "fib12": ("fib", "fib", (12,)), "crc16": ("crc32", "crc32", (16, 1))}


class Clock:
    """A settable ledger clock."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def claims() -> dict[str, bytes]:
    """Real claims, proven once per session (about a second each)."""
    return {name: prove_claim(workers.load(w), export, args).encode()
            for name, (w, export, args) in CALLS.items()}


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the fib and crc32 workers and the node's committee key (made once)."""
    home = tmp_path_factory.mktemp("template")
    with Ledger(home, clock=Clock()) as ledger:
        store = Store(home)
        for owner, name in ((ALICE, "fib"), (BOB, "crc32")):
            module = workers.load(name)
            cid = store.put(module)
            with ledger.transaction() as db:
                ledger.add_owner(db, owner.public_key)
                ledger.add_worker(db, Worker(worker_id(owner.public_key, cid), owner.public_key,
                                             cid, name, vk_of(module), 500, 0, ledger.clock(),
                                             None, 0, None, "active"))
        add_local(ledger, home, "node")
    return home


class Market:
    """A test home: ledger (settable clock), store, and the oracle's side of recording facts."""

    def __init__(self, home: Path) -> None:
        self.home, self.clock = home, Clock()
        self.ledger = Ledger(home, clock=self.clock)
        self.store = Store(home)
        self.fib = worker_id(ALICE.public_key, self.ledger.workers("fib")[0].cid)
        self.crc = worker_id(BOB.public_key, self.ledger.workers("crc32")[0].cid)

    def batcher(self, **config: float) -> Batcher:
        return Batcher(self.ledger, self.store, self.home, BatchConfig(**config))

    def submit(self, worker: str, claim: bytes, score: int, reward: int) -> bytes:
        """Record a fact as the oracle does: claim stored, reward pending for the owner."""
        cid = self.store.put(claim)
        vk, st, proof = claim_digests(claim)
        owner = self.ledger.worker(worker).owner
        with self.ledger.transaction() as db:
            digest = record_fact(db, worker_id=worker, vk_digest=vk, statement_digest=st,
                                 proof_digest=proof, score=score, reward=reward, claim_cid=cid,
                                 now=self.clock())
            self.ledger.credit(db, owner, pending=reward)
        return digest

    def balances(self) -> dict[str, tuple[int, int]]:
        """(pending, minted) per owner name."""
        out = {}
        for name, who in (("alice", ALICE), ("bob", BOB)):
            row = self.ledger.db.execute("SELECT pending, minted FROM balances WHERE owner = ?",
                                          (who.public_key,)).fetchone()
            out[name] = tuple(row)
        return out


@pytest.fixture
def market(template: Path, tmp_path: Path) -> Market:
    home = tmp_path / "home"
    shutil.copytree(template, home)
    m = Market(home)
    yield m
    m.ledger.close()


def test_record_fact_validates_and_hashes(market: Market, claims: dict[str, bytes]) -> None:
    vk, st, proof = claim_digests(claims["fib10"])
    digest = market.submit(market.fib, claims["fib10"], 700_000, 40)
    assert digest == fact_hash(vk, st, proof, 700_000)
    [(_, fact)] = market.batcher().pending()
    assert (fact.worker, fact.hash, fact.reward) == (market.fib, digest, 40)
    base = dict(worker_id=market.fib, vk_digest=vk, statement_digest=st, proof_digest=proof,
                score=1, reward=1, claim_cid=None, now=0.0)
    cases = [({}, Rejected, "already has a fact"),  # a claim is settled once
             ({"vk_digest": claim_digests(claims["crc16"])[0]}, Rejected, "VK digest"),
             ({"worker_id": "00" * 32}, BadInput, "no worker"),
             ({"proof_digest": b"short"}, BadInput, "32 bytes"),
             ({"score": -1}, BadInput, "score"), ({"reward": 2**64}, BadInput, "reward"),
             ({"claim_cid": "not-a-cid"}, BadInput, "CID")]
    for change, error, match in cases:
        with pytest.raises(error, match=match):
            with market.ledger.transaction() as db:
                record_fact(db, **{**base, **change})
    with pytest.raises(RuntimeError):  # the caller's transaction rolls back: no fact is left
        with market.ledger.transaction() as db:
            record_fact(db, **{**base, "statement_digest": claim_digests(claims["fib11"])[1]})
            raise RuntimeError("the oracle failed after recording")
    assert len(market.batcher().pending()) == 1


def test_commit_mints_and_proves_every_account(market: Market, claims: dict[str, bytes]) -> None:
    facts = [market.submit(market.fib, claims["fib10"], 600_000, 30),
             market.submit(market.crc, claims["crc16"], 900_000, 50),
             market.submit(market.fib, claims["fib11"], 100_000, 5)]
    batcher = market.batcher()
    [h1] = batcher.commit_pending(force=True)
    assert (h1.number, h1.prev_hash, h1.state_root_before) == (1, bytes(32), GENESIS_ROOT)
    assert (h1.fact_count, h1.facts_root, h1.minted) == (3, facts_root(facts), 85)
    assert dict(h1.scores) == {bytes.fromhex(market.fib): 700_000,
                               bytes.fromhex(market.crc): 900_000}
    assert decode_header(h1.encode()) == h1
    assert market.balances() == {"alice": (0, 35), "bob": (0, 50)}
    assert batcher.pending() == [] and batcher.commit_pending(force=True) == []
    rate = FACT_RATE * RATE_STEP
    for index, (wid, minted, useful) in enumerate((
            (market.fib, 35, ema(ema(0, 600_000, rate), 100_000, rate)),
            (market.crc, 50, ema(0, 900_000, rate)))):
        record, p = batcher.prove(wid)
        assert record.header == h1 and p.state_root == h1.state_root_after and p.verify()
        assert (p.index, p.leaf.minted, p.leaf.usefulness, p.leaf.last_day) == (
            index, minted, useful, day_of(h1.timestamp_ms))
        # a leaf, a sibling or a key that is not the account's does not check
        for bad in (replace(p, limbs=p.limbs + np.eye(16, dtype=np.uint64)[11]),
                    replace(p, siblings=p.siblings[::-1].copy()),
                    replace(p, worker=bytes(32)), replace(p, index=p.index ^ 1),
                    replace(p, state_root=h1.state_root_before)):
            assert not bad.verify()
    _, absent = batcher.prove("ab" * 32)
    assert absent.leaf is None and absent.index is None and absent.verify()
    # a second batch follows the first: the account moves by its fact alone
    market.submit(market.fib, claims["fib12"], 600_000, 7)
    [h2] = batcher.commit_pending(force=True)
    assert (h2.number, h2.prev_hash, h2.state_root_before) == (2, h1.hash, h1.state_root_after)
    leaf = batcher.prove(market.fib)[1].leaf
    assert (leaf.minted, leaf.usefulness) == (42, ema(ema(ema(0, 600_000, rate), 100_000, rate),
                                                      600_000, rate))
    record, old = batcher.prove(market.fib, 1)
    assert old.state_root == h1.state_root_after and old.verify() and old.leaf.minted == 35
    assert market.balances() == {"alice": (0, 42), "bob": (0, 50)}
    with pytest.raises(BadInput, match="no batch 9"):
        batcher.prove(market.fib, 9)
    with pytest.raises(BadInput, match="64 hex"):
        batcher.prove("xyz")


def _resigned(batcher: Batcher, header):
    """`header` signed by the batcher's committee (a forgery the committee signed)."""
    return header.signed(sign(batcher._signers(), header.hash))


def test_commit_rules(market: Market, claims: dict[str, bytes]) -> None:
    market.submit(market.fib, claims["fib10"], 500_000, 10)
    market.submit(market.crc, claims["crc16"], 500_000, 20)
    one, two = market.batcher(max_facts=1), market.batcher(max_facts=2)
    a, b = one.cut(), two.cut()  # two different headers for batch 1
    assert a.header.number == b.header.number == 1 and a.header.hash != b.header.hash
    bad = {"does not follow": Batch(replace(a.header, number=2), a.data, a.seqs),
           "previous hash": Batch(replace(a.header, prev_hash=b"\x01" * 32), a.data, a.seqs),
           "signature": Batch(a.header.signed(b.header.signature), a.data, a.seqs),
           "facts root does not match": Batch(a.header, b.data, b.seqs),
           "state root after does not follow": Batch(
               _resigned(one, replace(a.header, state_root_after=bytes(32))), a.data, a.seqs),
           "state root before": Batch(
               _resigned(one, replace(a.header, state_root_before=bytes(32))), a.data, a.seqs)}
    for match, batch in bad.items():
        with pytest.raises(Rejected, match=match):
            one.commit(batch)
    assert one.commit(a) is True
    balances = market.balances()
    assert one.commit(a) is False and two.commit(a) is False  # the same header twice: a no-op
    assert market.balances() == balances and len(one.records()) == 1
    with pytest.raises(Rejected, match="already committed with another header"):
        two.commit(b)
    # the committee is the configured one, every key added with a proof of possession
    stale = one.cut()
    carol = Identity.from_seed("carol", b"\x0c" * 32)
    with pytest.raises(Rejected, match="proof of possession"):
        add_member(market.ledger, "carol", carol.public_key, ALICE.pop())
    add_local(market.ledger, market.home, "carol")
    assert len(members(market.ledger)) == 2
    with pytest.raises(Rejected, match="configured committee"):
        one.commit(stale)
    [h2] = one.commit_pending(force=True)
    assert len(h2.committee) == 2 and one.audit(2).ok


def test_revert_restores_the_exact_previous_state(market: Market,
                                                  claims: dict[str, bytes]) -> None:
    batcher = market.batcher(challenge_window_s=100)
    market.submit(market.fib, claims["fib10"], 500_000, 10)
    [h1] = batcher.commit_pending(force=True)
    market.submit(market.crc, claims["crc16"], 500_000, 20)
    market.submit(market.fib, claims["fib11"], 500_000, 3)
    [h2] = batcher.commit_pending(force=True)
    assert market.balances() == {"alice": (0, 13), "bob": (0, 20)}
    with pytest.raises(BadInput, match="no batch 3"):
        batcher.revert(3)
    assert batcher.revert(2) == [2]
    assert root_bytes(batcher.state().root) == h1.state_root_after
    assert batcher.last().header == h1
    assert len(batcher.pending()) == 2
    assert market.balances() == {"alice": (3, 10), "bob": (20, 0)}
    [again] = batcher.commit_pending(force=True)  # the same facts give the same state again
    assert again.state_root_after == h2.state_root_after and again.number == 2
    assert sorted(batcher.revert(1)) == [1, 2]
    assert root_bytes(batcher.state().root) == GENESIS_ROOT and batcher.last() is None
    assert market.balances() == {"alice": (13, 0), "bob": (20, 0)}
    [h1] = batcher.commit_pending(force=True)
    market.clock.now += 100  # the challenge window is over, but no batch is final unproven
    assert batcher.record(1).status(market.clock()) == "committed"
    assert BatchProver(batcher).prove_pending() == [1]
    assert batcher.record(1).status(market.clock()) == "final"
    with pytest.raises(Rejected, match="batch 1 is final"):
        batcher.revert(1)
    assert batcher.last().header == h1


def test_batches_are_cut_by_size_or_age(market: Market, claims: dict[str, bytes]) -> None:
    batcher = market.batcher(max_facts=3, max_age_s=10)
    for name in ("fib10", "fib11"):
        market.submit(market.fib, claims[name], 1, 1)
    assert not batcher.due() and batcher.commit_pending() == []
    market.clock.now += 10
    assert batcher.due()
    market.submit(market.fib, claims["fib12"], 1, 1)
    market.submit(market.crc, claims["crc16"], 1, 1)
    [h] = batcher.commit_pending()  # three facts by size; the fourth is too young
    assert h.fact_count == 3 and len(batcher.pending()) == 1 and not batcher.due()


def test_audit_reverifies_every_proof_from_the_store(market: Market,
                                                     claims: dict[str, bytes]) -> None:
    batcher = market.batcher()
    market.submit(market.fib, claims["fib10"], 500_000, 10)
    market.submit(market.crc, claims["crc16"], 800_000, 20)
    batcher.commit_pending(force=True)
    report = batcher.audit(1)
    assert report.ok, report.problems
    assert report.facts[0]["call"] == "fib(10) = 55" and all(r["ok"] for r in report.facts)
    assert report.facts[1]["call"].startswith("crc32(16, 1) = ")
    # a fact whose proof does not verify (the oracle was fooled) fails the audit of its batch
    forged = bytearray(claims["fib11"])
    forged[-40] ^= 1
    market.submit(market.fib, bytes(forged), 500_000, 10)
    batcher.commit_pending(force=True)
    report = batcher.audit(2)
    assert not report.ok and "proof does not verify" in report.problems[0]
    assert batcher.audit(1).ok
    # data availability: a claim missing from the store fails the audit
    (market.store.blocks / market.store.put(claims["crc16"])).unlink()
    report = batcher.audit(1)
    assert not report.ok and "no block" in report.facts[1]["reason"]
    with pytest.raises(BadInput, match="no batch 3"):
        batcher.audit(3)


def test_header_encoding_is_canonical(market: Market, claims: dict[str, bytes]) -> None:
    market.submit(market.fib, claims["fib10"], 500_000, 10)
    [h] = market.batcher().commit_pending(force=True)
    data = h.encode()
    assert decode_header(data) == h
    for bad in (data + b"\0", data[:-1], data[:7] + b"\x01" + data[8:]):
        with pytest.raises(BatchFormatError):
            decode_header(bad)
    signed = len(h.signed_part())
    for i in range(0, signed, 7):  # every change of the signed part changes the batch hash
        changed = bytearray(data)
        changed[i] ^= 1
        try:
            assert decode_header(bytes(changed)).hash != h.hash
        except BatchFormatError:
            pass


def test_cli_batch_commands(market: Market, claims: dict[str, bytes],
                            capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    market.clock.now = time.time()  # the CLI runs on the real clock: these facts are fresh
    market.submit(market.fib, claims["fib10"], 500_000, 10)
    market.submit(market.crc, claims["crc16"], 800_000, 20)
    market.ledger.close()
    home = ("--home", str(market.home))
    code, out, err = cli(capsys, monkeypatch, *home, "batch", "commit", "--json")
    assert code == 0 and json.loads(out) == {"committed": [], "pending_facts": 2}  # not due
    code, out, err = cli(capsys, monkeypatch, *home, "batch", "commit", "--force", "--json")
    [committed] = json.loads(out)["committed"]
    assert code == 0 and committed["fact_count"] == 2 and committed["status"] == "proven"
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "list", "--json")
    assert code == 0 and json.loads(out)["batches"] == [committed]
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "verify", "1", "--json")
    verified = json.loads(out)
    assert code == 0 and verified["valid"] and verified["facts"] == 2
    assert verified["security_bits"] >= 100
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "list")
    assert code == 0 and committed["hash"][:16] in out
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "show", "1")
    assert code == 0 and committed["state_root_after"] in out
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "proof", market.fib, "--json")
    proof = json.loads(out)
    assert code == 0 and proof["valid"] and proof["included"]
    assert proof["account"]["minted"] == 10 and proof["state_root"] == committed["state_root_after"]
    siblings = np.array([np.frombuffer(bytes.fromhex(s), "<u4") for s in proof["siblings"]],
                        dtype=np.uint64)
    assert AccountProof(bytes.fromhex(proof["worker"]), bytes.fromhex(proof["state_root"]),
                        proof["index"], np.array(proof["leaf"], np.uint64), siblings).verify()
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "proof", "cd" * 32, "--batch", "1",
                       "--json")
    assert code == 0 and json.loads(out)["included"] is False and json.loads(out)["valid"]
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "audit", "1")
    assert code == 0 and "fib(10) = 55" in out and "all check" in out
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "committee", "--json")
    assert code == 0 and [m["name"] for m in json.loads(out)["committee"]] == ["node"]
    for argv, expected in ((("batch", "show", "7"), 2), (("batch", "proof", "xyz"), 2),
                           (("batch", "audit", "0"), 2), (("batch", "commit", "--max-facts", "0"), 2)):
        code, out, err = cli(capsys, monkeypatch, *home, *argv)
        assert code == expected and len(err.splitlines()) == 1, (argv, err)
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "revert", "1", "--json")
    reverted = json.loads(out)
    assert code == 0 and reverted["reverted"] == [1] and reverted["pending_facts"] == 2
    assert reverted["state_root"] == GENESIS_ROOT.hex()
    code, out, _ = cli(capsys, monkeypatch, *home, "batch", "commit", "--force",
                       "--challenge-window", "0")
    assert code == 0 and "committed batch 1" in out
    code, out, err = cli(capsys, monkeypatch, *home, "batch", "revert", "1")
    assert code == 1 and "final" in err and len(err.splitlines()) == 1
    (market.home / "blocks" / Store(market.home).put(claims["fib10"])).unlink()
    code, out, err = cli(capsys, monkeypatch, *home, "batch", "audit", "1", "--json")
    assert code == 1 and json.loads(out)["ok"] is False and "fails its audit" in err
