"""Signed node messages, the replay cache, content fetching and the API's refusals, in one
process (FastAPI's TestClient): forged, unsigned, replayed, expired and oversized variants of
every message kind, and milagro's signatures checked byte for byte against py-ecc's."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.bls import G2ProofOfPossession as PYECC

from memjit.errors import BadInput, MemjitError
from memjit.market.identity import Identity, aggregate, fast_aggregate_verify, verify
from memjit.market.oracle import Delivery
from memjit.node import client as messages
from memjit.node.api import MAX_BODY_BYTES, create_app
from memjit.node.content import Fetcher, WrongBlock
from memjit.node.messages import (KINDS, MAX_BYTES, MAX_TTL_S, Oversized, Refused,
                                  open_envelope, seal)
from memjit.node.node import Node, NodeConfig
from memjit.node.replay import ReplayCache
from memjit.runtime.store import Store, cid_of
from memjit.workers import WORKERS_DIR

ALICE = Identity.from_seed("alice", b"a" * 32)
BOB = Identity.from_seed("bob", b"b" * 32)
CONSTANT = (WORKERS_DIR / "digits_constant.wasm").read_bytes()


def test_milagro_signatures_are_byte_identical_to_py_ecc() -> None:
    message = bytes(range(256))
    ours = ALICE.sign(message)
    assert ours == PYECC.Sign(ALICE.secret_key, message)  # py-ecc: the pure-Python reference
    assert PYECC.Verify(ALICE.public_key, message, ours)
    assert verify(ALICE.public_key, message, ours)
    assert not verify(BOB.public_key, message, ours)
    signatures = [ALICE.sign(b"batch"), BOB.sign(b"batch")]
    assert aggregate(signatures) == PYECC.Aggregate(signatures)
    keys = [ALICE.public_key, BOB.public_key]
    assert fast_aggregate_verify(keys, b"batch", aggregate(signatures))
    assert not fast_aggregate_verify(keys, b"other", aggregate(signatures))
    assert not verify(b"\x00" * 48, b"x", b"\x00" * 96)  # malformed: False, no exception


def test_an_envelope_opens_once_sealed_and_never_when_touched() -> None:
    sealed = seal(ALICE, "unbond", {"worker": "ab" * 32, "amount": 5}).to_json()
    assert open_envelope(sealed, "unbond").body == {"worker": "ab" * 32, "amount": 5}
    tampered = {
        "body": {**sealed, "body": {"worker": "ab" * 32, "amount": 6}},
        "signer": {**sealed, "signer": BOB.public_key.hex()},
        "nonce": {**sealed, "nonce": "00" * 16},
        "expires": {**sealed, "expires": sealed["expires"] + 1},
        "signature": {**sealed, "signature": BOB.sign(b"x").hex()},
    }
    for field, forged in tampered.items():
        with pytest.raises(Refused, match="bad signature"):
            open_envelope(forged, "unbond")
    unsigned = {k: v for k, v in sealed.items() if k != "signature"}
    with pytest.raises(Refused, match="unsigned"):
        open_envelope(unsigned, "unbond")
    with pytest.raises(Refused, match="expected a request"):
        open_envelope(sealed, "request")  # no message passes for another kind


def test_expired_and_far_future_messages_are_refused() -> None:
    old = seal(ALICE, "job", {"x": 1}, ttl_s=10, now=lambda: 1_000.0).to_json()
    with pytest.raises(Refused, match="expired"):
        open_envelope(old, "job")
    future = seal(ALICE, "job", {"x": 1}, ttl_s=MAX_TTL_S, now=lambda: 10**10).to_json()
    with pytest.raises(Refused, match="too far ahead"):
        open_envelope(future, "job")


def test_oversized_and_malformed_messages_are_refused() -> None:
    with pytest.raises(Oversized):
        seal(ALICE, "unbond", {"pad": "x" * MAX_BYTES["unbond"]})
    big = seal(ALICE, "request", {"pad": "x" * 100}).to_json()
    big["body"] = {"pad": "x" * MAX_BYTES["request"]}
    with pytest.raises(Oversized):
        open_envelope(big, "request")
    with pytest.raises(BadInput, match="float"):
        seal(ALICE, "job", {"deadline": 1.5})


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=6), max_leaves=20),
       st.sampled_from(KINDS))
def test_decoding_any_json_fails_cleanly(obj: object, kind: str) -> None:
    try:
        open_envelope(obj, kind)
    except MemjitError:
        pass


def test_the_replay_cache_survives_a_restart(tmp_path: Path) -> None:
    message = seal(ALICE, "unbond", {"worker": "ab" * 32, "amount": None})
    cache = ReplayCache(tmp_path)
    cache.admit(message)
    with pytest.raises(Refused, match="replayed"):
        cache.admit(message)
    cache.close()
    with pytest.raises(Refused, match="replayed"):
        ReplayCache(tmp_path).admit(message)
    ReplayCache(tmp_path).admit(seal(ALICE, "unbond", {"worker": "ab" * 32, "amount": None}))


def test_the_replay_cache_forgets_expired_nonces_through_an_index(tmp_path: Path) -> None:
    """Each admit drops the expired nonces: by the expiry index, not a scan of the table."""
    clock = [time.time()]
    cache = ReplayCache(tmp_path, now=lambda: clock[0])
    message = seal(ALICE, "unbond", {"worker": "ab" * 32, "amount": None}, ttl_s=60)
    cache.admit(message)
    plan = cache._db.execute("EXPLAIN QUERY PLAN DELETE FROM seen WHERE expires < 0").fetchall()
    assert "seen_expires" in " ".join(str(row) for row in plan)
    clock[0] += 120
    cache.admit(seal(ALICE, "unbond", {"worker": "cd" * 32, "amount": None}))
    assert cache._db.execute("SELECT count(*) FROM seen").fetchone() == (1,)


def test_a_peer_serving_wrong_bytes_is_refused_and_banned(tmp_path: Path) -> None:
    cid = cid_of(CONSTANT)
    served = {"good": CONSTANT, "evil": CONSTANT + b"\x00"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=served[request.url.host])

    fetcher = Fetcher(Store(tmp_path / "a"), client=httpx.Client(
        transport=httpx.MockTransport(handler)))
    with pytest.raises(WrongBlock, match="do not hash"):
        fetcher.fetch("http://evil", cid)
    assert not fetcher.store.has(cid)
    served["evil"] = CONSTANT  # even honest bytes now: a banned peer is not asked again
    with pytest.raises(MemjitError, match="not asking it again"):
        fetcher.fetch("http://evil", cid)
    assert fetcher.fetch("http://good", cid) == CONSTANT and fetcher.store.has(cid)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    node = Node(NodeConfig(home=tmp_path_factory.mktemp("seq")), "http://testserver")
    with TestClient(create_app(node)) as client:
        yield client
    node.close()


def _refusal(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert words in body["error"] and "\n" not in body["error"], body


@pytest.mark.parametrize("kind, path", [("registration", "/v1/registrations"),
                                        ("unbond", "/v1/unbonds"), ("job", "/v1/jobs"),
                                        ("stake", "/v1/validators"),
                                        ("request", "/v1/requests"),
                                        ("delivery", "/v1/deliveries")])
def test_every_endpoint_refuses_forged_unsigned_expired_and_oversized(api, kind, path) -> None:
    good = seal(ALICE, kind, {"anything": 1}).to_json()
    forged = {**good, "signature": BOB.sign(b"x").hex()}
    _refusal(api.post(path, json=forged), 403, "bad signature")
    _refusal(api.post(path, json={k: v for k, v in good.items() if k != "signature"}), 403,
             "unsigned")
    expired = seal(ALICE, kind, {"anything": 1}, ttl_s=1, now=lambda: 1_000.0).to_json()
    _refusal(api.post(path, json=expired), 403, "expired")
    padded = {**good, "body": {"pad": "x" * (MAX_BYTES[kind] + 1)}}
    _refusal(api.post(path, json=padded), 413, "at most")
    _refusal(api.post(path, content=b"[1, 2]", headers={"content-type": "application/json"}),
             400, "malformed")


def test_the_body_limit_holds_for_any_endpoint(api) -> None:
    _refusal(api.post("/v1/jobs", content=b"x" * (MAX_BODY_BYTES + 1)), 413, "over")


def test_replayed_registrations_and_unbonds_are_refused(api) -> None:
    registration = messages.registration(ALICE, CONSTANT, "digits", 1000,
                                         {"url": "http://127.0.0.1:9", "key": BOB.public_key.hex()})
    first = api.post("/v1/registrations", json=registration.to_json())
    assert first.status_code == 409  # the operator cannot be reached: nothing registered
    _refusal(api.post("/v1/registrations", json=registration.to_json()), 403, "replayed")
    unbond = messages.unbond(ALICE, "ab" * 32, None).to_json()
    assert api.post("/v1/unbonds", json=unbond).status_code == 400  # no such worker
    _refusal(api.post("/v1/unbonds", json=unbond), 403, "replayed")
    bond = messages.stake(BOB, "bond", 5000).to_json()
    assert api.post("/v1/validators", json=bond).json()["stake"] == 5000
    _refusal(api.post("/v1/validators", json=bond), 403, "replayed")  # bonded once
    assert api.get(f"/v1/balance/{BOB.public_key.hex()}").json()["bonded"] == 5000
    too_much = messages.stake(BOB, "bond", 10**6).to_json()
    _refusal(api.post("/v1/validators", json=too_much), 409, "free balance")


def test_a_registration_signed_by_another_key_is_refused(api) -> None:
    registration = messages.registration(ALICE, CONSTANT, "digits", 1000,
                                         {"url": "http://127.0.0.1:9", "key": BOB.public_key.hex()})
    stolen = seal(BOB, "registration", registration.body).to_json()
    _refusal(api.post("/v1/registrations", json=stolen), 403, "not signed by the worker's owner")


def test_a_job_for_a_worker_this_node_does_not_run_is_refused(api) -> None:
    job = seal(BOB, "job", {"worker": "ab" * 32, "task": "digits", "input": "00" * 64,
                            "nonce": "11" * 32, "deadline": 2**40}).to_json()
    _refusal(api.post("/v1/jobs", json=job), 409, "does not operate")


def test_status_and_openapi(api) -> None:
    status = api.get("/v1/status").json()
    assert status["roles"] == ["operator", "gateway", "sequencer"] and status["workers"] == 0
    assert "/v1/requests" in api.get("/openapi.json").json()["paths"]
    assert api.get("/docs").status_code == 200
    assert api.get("/v1/blocks/" + cid_of(b"nothing")).status_code == 404
    assert json.loads(api.get("/v1/workers").text) == {"workers": []}


def test_a_claim_message_must_come_from_the_operator_and_answer_this_job() -> None:
    from memjit.node.jobs import claim_body, claim_delivery
    from memjit.node.state import OperatorRef
    from memjit.node.wire import digest

    wid, nonce, data = "ab" * 32, bytes(32), b"\x00\xff"
    operator = OperatorRef("http://op", BOB.public_key)
    claim = claim_body(wid, nonce, data, None)
    blobs = {digest(data): data}
    assert claim_delivery({"claim": seal(BOB, "claim", claim).to_json()}, wid, nonce,
                          operator, blobs) == (Delivery(claim=data), True)
    own_fault = seal(BOB, "claim", claim_body(wid, nonce, None, "Trap: out of fuel"))
    assert claim_delivery({"claim": own_fault.to_json()}, wid, nonce, operator, {}) == (
        Delivery(fault="Trap: out of fuel"), True)  # the operator's own word: it counts
    for entry, attached, why in (  # none of these is the operator's word: not attested
            ({"claim": seal(ALICE, "claim", claim).to_json()}, blobs,
             "not signed by the worker's"),
            ({"claim": seal(BOB, "claim", {**claim, "nonce": "11" * 32}).to_json()}, blobs,
             "another job"),
            ({"claim": seal(BOB, "claim", {**claim, "worker": "cd" * 32}).to_json()}, blobs,
             "another job"),
            ({"claim": {**seal(BOB, "claim", claim).to_json(), "signature": "00" * 96}}, blobs,
             "bad signature"),
            ({"claim": seal(BOB, "claim", claim).to_json()}, {digest(b"x"): b"x"},
             "bytes are missing"),
            ({"claim": seal(BOB, "claim", claim).to_json()}, {}, "bytes are missing"),
            ({"fault": "operator unreachable"}, blobs, "unreachable"),
            (None, blobs, "no delivery")):
        delivery, attested = claim_delivery(entry, wid, nonce, operator, attached)
        assert delivery.claim is None and why in delivery.fault and not attested, (why, delivery)


def test_a_stalled_operator_is_a_fault_at_the_deadline() -> None:
    import socket
    import time

    from memjit.node.jobs import send_job
    from memjit.node.state import OperatorRef

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        reply = send_job(
            ALICE, OperatorRef(f"http://127.0.0.1:{silent.getsockname()[1]}", BOB.public_key),
            "ab" * 32, "digits", bytes(64), bytes(32), int(time.time()) + 1)
        assert "DeadlineExceeded" in reply.entry["fault"] and reply.attachments == {}
    finally:
        silent.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256), st.sampled_from(KINDS))
def test_unpacking_any_bytes_fails_cleanly(data: bytes, kind: str) -> None:
    from memjit.node.wire import MAGIC, unpack

    for frame in (data, MAGIC + data):
        try:
            unpacked = unpack(frame, kind)
        except BadInput:
            continue
        assert isinstance(unpacked.attachments, dict)


def test_frames_round_trip_and_refuse_truncated_oversized_and_trailing_bytes() -> None:
    from memjit.node.wire import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, digest, pack, unpack

    message = seal(ALICE, "unbond", {"worker": "ab" * 32, "amount": 5}).to_json()
    frame = pack(message, [b"one", b"two"])
    out = unpack(frame, "unbond")
    assert out.message == message and out.attachments == {digest(b"one"): b"one",
                                                           digest(b"two"): b"two"}
    assert open_envelope(out.message, "unbond").body["amount"] == 5
    for bad, why in ((frame[:-1], "truncated"), (frame + b"\x00", "past its end"),
                     (b"MJW0" + frame[4:], "magic"), (frame[:7], "truncated")):
        with pytest.raises(BadInput, match=why):
            unpack(bad, "unbond")
    with pytest.raises(Oversized):
        pack(message, [b"x"] * (MAX_ATTACHMENTS + 1))
    with pytest.raises(Oversized):
        pack(message, [bytes(MAX_ATTACHMENT_BYTES + 1)])
    big = b"MJW1" + (MAX_BYTES["unbond"] + 1).to_bytes(4, "big") + bytes(MAX_BYTES["unbond"] + 1)
    with pytest.raises(Oversized):
        unpack(big, "unbond")  # a message over its kind's bound
    declared = pack(message)[:-2] + (1).to_bytes(2, "big") + (2**31).to_bytes(4, "big")
    with pytest.raises(Oversized):
        unpack(declared, "unbond")  # an attachment declared over the bound
