"""A malicious peer for follower tests: it joins a network's DHT, claims to hold batches 1..16
(it provides their rendezvous keys) and serves each batch tampered with, relaying the rest
from the sequencer.

    python tests/batch_forger.py BOOTSTRAP_MULTIADDR KIND[,KIND...]

Batch N is tampered with by KINDS[(N - 1) % len(KINDS)]:
  header  re-signed by the forger's own key as the committee
  data    the first fact's score raised by one (a stake fact's amount)
  bundle  one byte of the proof bundle flipped
  claim   the listing is honest, but every claim block is served with one byte flipped
Prints `listening on URL` when ready; stops on SIGTERM.
"""

from __future__ import annotations

import dataclasses
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx

from memjit.discovery import Discovery
from memjit.market.identity import Identity
from memjit.node.batches import rendezvous
from memjit.node.membership import NETWORK
from memjit.rollup.batcher import decode_data
from memjit.rollup.committee import sign
from memjit.rollup.header import decode_header
from memjit.runtime.store import cid_of

KEY = Identity.from_seed("forger", b"\x66" * 32)


class Forger:
    def __init__(self, sequencer: str, kinds: list[str]) -> None:
        self.sequencer, self.kinds = sequencer, kinds
        self.blocks: dict[str, bytes] = {}
        self.claims: set[str] = set()

    def honest(self, path: str, **params) -> httpx.Response:
        return httpx.get(self.sequencer + path, params=params, timeout=60)

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        self.blocks[cid] = data
        return cid

    def listing(self, after: int, limit: int) -> dict:
        out = self.honest("/v1/batches", after=after, limit=limit).json()
        for ref in out["batches"]:
            if ref["bundle"] is not None:
                self.forge(ref)
        return out

    def forge(self, ref: dict) -> None:
        kind = self.kinds[(ref["number"] - 1) % len(self.kinds)]
        block = lambda cid: self.honest(f"/v1/blocks/{cid}").content  # noqa: E731
        if kind == "header":
            header = decode_header(block(ref["header"]))
            forged = dataclasses.replace(header, committee=(KEY.public_key,))
            forged = forged.signed(sign([KEY], forged.hash))
            ref["header"], ref["hash"] = self.put(forged.encode()), forged.hash.hex()
        elif kind == "data":
            data = decode_data(block(ref["data"]))
            first = data.facts[0]
            fact = dataclasses.replace(first, score=first.score + 1) if first.kind == "call" \
                else dataclasses.replace(first, amount=first.amount + 1)
            ref["data"] = self.put(dataclasses.replace(
                data, facts=(fact, *data.facts[1:])).encode())
        elif kind == "bundle":
            bundle = bytearray(block(ref["bundle"]))
            bundle[len(bundle) // 2] ^= 1
            ref["bundle"] = self.put(bytes(bundle))
        else:
            self.claims.update(f.claim_cid for f in decode_data(block(ref["data"])).facts
                               if f.claim_cid is not None)

    def block(self, cid: str) -> bytes | None:
        if cid in self.blocks:
            return self.blocks[cid]
        response = self.honest(f"/v1/blocks/{cid}")
        if response.status_code != 200:
            return None
        data = response.content
        return bytes([data[0] ^ 1]) + data[1:] if cid in self.claims else data


def handler(forger: Forger) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            query = {k: int(v[0]) for k, v in parse_qs(url.query).items()}
            if url.path == "/v1/batches":
                body = httpx.Response(200, json=forger.listing(query.get("after", 0),
                                                               query.get("limit", 16))).content
                kind = "application/json"
            elif url.path.startswith("/v1/blocks/"):
                body, kind = forger.block(url.path.rsplit("/", 1)[1]), "application/octet-stream"
            else:
                body = None
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            sys.stderr.write(f"forger: {self.command} {self.path}\n")

    return Handler


def main(bootstrap: str, kinds: str) -> None:
    discovery = Discovery(secrets.token_bytes(32), network=NETWORK)
    discovery.start([bootstrap])
    try:
        record = None
        for _ in range(60):
            record = discovery.sequencer()
            if record is not None:
                break
            time.sleep(0.5)
        forger = Forger(record.endpoint, kinds.split(","))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler(forger))
        url = f"http://127.0.0.1:{server.server_address[1]}"
        discovery.publish_node(discovery.sign_record(KEY, role="operator", endpoint=url))
        for n in range(1, 17):  # it claims to hold every batch, ahead of time
            discovery.provide(rendezvous(NETWORK, n))
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        print(f"listening on {url}", flush=True)
        server.serve_forever()
    finally:
        discovery.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
