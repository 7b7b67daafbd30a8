"""The operator of digits_liar.wasm: it proves its worker's run, then claims another answer.

digits_liar's classify() answers -1 whatever the image, which is cheap to prove. Its operator
runs a good model off the books (digits_large), proves its own worker's honest run on the
input, and swaps the statement's result for the good model's answer before handing the claim
in, hoping to be paid for an answer it never proved. The result is a public input of the
proof, so the claim does not verify and the oracle slashes the worker.
"""

from __future__ import annotations

from dataclasses import replace

from memjit.market.pool import Operator, prove_on_input
from memjit.runtime.store import cid_of
from memjit.runtime.sandbox import Limits, run
from memjit.workers import WORKERS_DIR
from verifier.claims import Claim, decode_claim

MODULE = WORKERS_DIR / "digits_liar.wasm"
COPIED = WORKERS_DIR / "digits_large.wasm"


def operate(module: bytes, export: str, input_bytes: bytes, nonce: bytes,
            limits: Limits) -> bytes:
    """A claim that `module` returned digits_large's answer, with the proof of its real run."""
    honest = decode_claim(prove_on_input(module, export, input_bytes, nonce, limits))
    (copied,) = run(COPIED.read_bytes(), export, (), limits, input_bytes=input_bytes).results
    return Claim(replace(honest.statement, result=copied & 0xFFFFFFFF), honest.proof).encode()


def operators() -> dict[str, Operator]:
    """The liar's operator by its worker's CID: what the demo and the tests hand to the pool."""
    return {cid_of(MODULE.read_bytes()): operate}
