"""`memjit request --node URL` as a client process: it signs the request with the requester's
key, posts it to the gateway, prints the verified answer and the settlement, and loads nothing
it does not need (no numpy, numba, wasmtime, prover, typer or py-ecc: a request is answered in
real time). The gateway here is a stand-in on 127.0.0.1 (a free port) that checks the signed
request and answers as a node's gateway does."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from memjit.market.identity import load_or_create
from memjit.node.messages import open_envelope

HEAVY = {"numpy", "numba", "llvmlite", "wasmtime", "prover", "circuits", "typer", "pydantic",
         "py_ecc", "httpx", "fastapi", "rich"}
NONCE = "ab" * 32
WORKER = "cd" * 32


class FakeGateway(BaseHTTPRequestHandler):
    """Answers POST /v1/requests (a valid signed request) and GET /v1/settlements/NONCE."""

    seen: list = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = open_envelope(body, "request")  # shape, expiry and signature
        self.seen.append(request)
        self._answer({"nonce": NONCE, "answer": 4, "worker": WORKER, "settlement": "pending",
                      "reference": {"answer": None, "basis": None},
                      "calls": [{"worker": WORKER, "verdict": "valid", "reason": "",
                                 "result": 4, "score": None}],
                      "timings": {"sign_s": 0.0, "jobs_s": 0.0, "verify_s": 0.0,
                                  "total_s": 0.0}})

    def do_GET(self) -> None:  # noqa: N802
        assert self.path == f"/v1/settlements/{NONCE}"
        self._answer({"status": "settled", "settlement": {"seq": 7}, "error": None})

    def _answer(self, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        FakeGateway.seen.clear()


def run_client(*argv: str) -> tuple[int, str, str, set[str]]:
    """`memjit ARGV` in a fresh interpreter; exit code, stdout, stderr and the top-level
    packages it loaded."""
    code = ("import sys\nfrom memjit.cli import main\n"
            f"sys.argv = ['memjit', *{list(argv)!r}]\n"
            "try:\n    main()\n    code = 0\nexcept SystemExit as exc:\n    code = exc.code\n"
            "sys.stderr.write('\\nMODULES ' + ' '.join(sorted({m.split('.')[0] for m in "
            "sys.modules})) + f' EXIT {code}')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    err, _, tail = done.stderr.rpartition("\nMODULES ")
    modules, _, exit_code = tail.rpartition(" EXIT ")
    return int(exit_code), done.stdout, err, set(modules.split())


def test_a_request_through_a_node_loads_only_the_client(gateway: str, tmp_path: Path) -> None:
    requester = load_or_create(tmp_path, "requester")
    image = tmp_path / "image.bin"
    image.write_bytes(bytes(range(16)) * 4)
    code, out, err, loaded = run_client("--home", str(tmp_path), "request", "--task", "digits",
                                        "--input", str(image), "--top-k", "1", "--node", gateway)
    assert (code, err) == (0, ""), err
    assert out.startswith(f"result: 4 (worker {WORKER[:16]}, verified)\nrequest 7 settled\n")
    assert not loaded & HEAVY, loaded & HEAVY
    (request,) = FakeGateway.seen
    assert request.signer == requester.public_key
    assert request.body == {"task": "digits", "input": image.read_bytes().hex(), "label": None,
                            "top_k": 1}


def test_a_json_request_through_a_node(gateway: str, tmp_path: Path) -> None:
    load_or_create(tmp_path, "requester")
    image = tmp_path / "image.bin"
    image.write_bytes(bytes(64))
    code, out, err, loaded = run_client("request", "--task", "digits", "--input", str(image),
                                        "--label", "3", "--home", str(tmp_path), "--node",
                                        gateway, "--json")
    assert (code, err) == (0, ""), err
    answer = json.loads(out)
    assert (answer["answer"], answer["settlement"], answer["settlement_error"]) == (
        4, {"seq": 7}, None)
    assert not loaded & HEAVY, loaded & HEAVY
    assert FakeGateway.seen[0].body["label"] == 3


def test_an_unreachable_node_is_one_line(tmp_path: Path) -> None:
    image = tmp_path / "image.bin"
    image.write_bytes(bytes(64))
    code, out, err, _ = run_client("--node", "127.0.0.1:1", "--home", str(tmp_path), "request",
                                   "--task", "digits", "--input", str(image))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("memjit: cannot reach node http://127.0.0.1:1")


def test_no_wait_exits_with_the_verified_answer(gateway: str, tmp_path: Path) -> None:
    load_or_create(tmp_path, "requester")
    image = tmp_path / "image.bin"
    image.write_bytes(bytes(64))
    code, out, err, _ = run_client("request", "--task", "digits", "--input", str(image),
                                   "--home", str(tmp_path), "--node", gateway, "--no-wait")
    assert (code, err) == (0, ""), err
    assert out.startswith(f"result: 4 (worker {WORKER[:16]}, verified)\n"
                          f"settlement pending (GET /v1/settlements/{NONCE})\n")
