"""Tensor inputs and outputs: placed identically by the sandbox and the tracer, public in the
statement, bound by the proof (a changed input or output byte, or a prover that skips the
binding, is rejected), and usable from the CLI."""

from __future__ import annotations

import dataclasses
import json

import blake3
import numpy as np
import pytest
import wasmtime

from circuits.wasm_vm import VmAir, VmInputs
from circuits.wasm_vm.columns import COL
from memjit.runtime.claims import prove_claim, vk_of, vm_program
from memjit.errors import BadInput, UnsupportedModule
from memjit.runtime.sandbox import run
from memjit.runtime.tracer import trace_checked
from memjit.runtime.wasm import load
from memjit.runtime.witness import witness
from memjit.workers import WORKERS_DIR
from prover import prove
from helpers import cli
from verifier.claims import Claim, verify_claim

DENSE = (WORKERS_DIR / "dense.wasm").read_bytes()
X = ((np.arange(32) * 37) % 256 - 128).astype(np.int8)


def dense_ref(x: np.ndarray) -> np.ndarray:
    """numpy reference of dense.c: relu(W x + b) over the first n inputs."""
    o, i = np.arange(8)[:, None], np.arange(len(x))[None]
    w = ((o * 7 + i * 13) & 15) - 8
    return np.maximum(w @ x.astype(np.int64) + np.arange(8) - 4, 0).astype("<i4")


@pytest.fixture(scope="module")
def claim() -> Claim:
    return prove_claim(DENSE, "dense", [32], input_bytes=X.tobytes(), output_len="result")


def test_sandbox_and_tracer_place_the_input_alike() -> None:
    for n in (1, 7, 32):
        result = run(DENSE, "dense", [n], input_bytes=X[:n].tobytes())
        address = load(DENSE).buffers["memjit_output"]
        out = np.frombuffer(result.memory[address:address + 32], "<i4")
        np.testing.assert_array_equal(out, dense_ref(X[:n]))
        tr = trace_checked(DENSE, "dense", [n], input_bytes=X[:n].tobytes())  # agrees with wasmtime
        assert tr.final_memory.tobytes() == result.memory


def test_claim_binds_input_and_output(claim: Claim) -> None:
    st = claim.statement
    assert st.input == X.tobytes() and st.result == 32 and st.output_len == 32
    np.testing.assert_array_equal(np.frombuffer(st.output, "<i4"), dense_ref(X))
    vk = vk_of(DENSE)
    assert verify_claim(claim.encode(), vk).valid
    changed_input = bytearray(st.input)
    changed_input[5] ^= 1
    words = st.output_words.copy()
    words[3] += 1
    for forged in (dataclasses.replace(st, input=bytes(changed_input)),
                   dataclasses.replace(st, output_words=words),
                   dataclasses.replace(st, input=b""),
                   dataclasses.replace(st, output_len=28, output_words=st.output_words[:7])):
        verdict = verify_claim(Claim(forged, claim.proof).encode(), vk)
        assert not verdict.valid, forged


def test_unaligned_output_and_partial_words() -> None:
    """An output that starts and ends inside words: the statement carries the covering words."""
    module = wasmtime.wat2wasm(
        '(module (memory (export "memory") 1) (global (export "memjit_output") i32 (i32.const 18))'
        ' (func (export "f") (result i32) i32.const 16 i32.const 0x44332211 i32.store'
        '  i32.const 20 i32.const 0x88776655 i32.store i32.const 5)'
        ' (data (i32.const 24) "\\99"))')
    c = prove_claim(module, "f", output_len="result")
    assert c.statement.output == bytes.fromhex("3344556677")
    assert (c.statement.output_offset, len(c.statement.output_words)) == (2, 2)
    assert verify_claim(c.encode(), vk_of(module)).valid


def _malicious(tr_input: bytes, claimed_input: bytes, clear_output_flag: bool = False) -> bool:
    """Prove (skipping the prover's checks) a witness whose public part claims `claimed_input`
    for a run on `tr_input`, or whose memory table drops the output binding; verify it."""
    prog = load(DENSE)
    vm = vm_program(prog)
    tr = trace_checked(DENSE, "dense", [32], input_bytes=tr_input)
    main, st = witness(tr, vm, claimed_input, 32)
    if clear_output_flag:
        main[COL["mout"]] = 0
    air = VmAir(VmInputs(vm, st))
    proof = prove(air, main, check=False)
    return verify_claim(Claim(st, proof).encode(), vk_of(DENSE)).valid


def test_malicious_prover_cannot_claim_another_input() -> None:
    other = bytearray(X.tobytes())
    other[0] ^= 0x40
    assert _malicious(X.tobytes(), X.tobytes())  # the honest control verifies
    assert not _malicious(X.tobytes(), bytes(other))


def test_malicious_prover_cannot_skip_the_output_binding() -> None:
    assert not _malicious(X.tobytes(), X.tobytes(), clear_output_flag=True)


def test_bad_io_requests_are_refused() -> None:
    with pytest.raises(BadInput, match="does not fit"):
        prove_claim(DENSE, "dense", [1], input_bytes=bytes(200_000))
    with pytest.raises(BadInput, match="memjit_input"):
        prove_claim((WORKERS_DIR / "fib.wasm").read_bytes(), "fib", [3], input_bytes=b"x")
    with pytest.raises(BadInput, match="memjit_output"):
        prove_claim((WORKERS_DIR / "fib.wasm").read_bytes(), "fib", [3], output_len=4)
    with pytest.raises(BadInput, match="exceeds"):
        prove_claim(DENSE, "dense", [1], output_len=1 << 21)
    mutable = wasmtime.wat2wasm('(module (memory 1) (global (export "memjit_input") (mut i32) '
                                '(i32.const 0)) (func (export "f")))')
    with pytest.raises(UnsupportedModule, match="immutable i32"):
        load(mutable)


def test_cli_run_prove_verify_with_io(tmp_path, capsys, monkeypatch) -> None:
    wasm = WORKERS_DIR / "dense.wasm"
    inp, claim_path, out = tmp_path / "x.bin", tmp_path / "c.claim", tmp_path / "o.bin"
    inp.write_bytes(X.tobytes())
    expected = dense_ref(X).tobytes()
    code, stdout, _ = cli(capsys, monkeypatch, "run", str(wasm), "--export", "dense", "--args",
                          "32", "--input", str(inp), "--output-len", "result", "--json")
    assert code == 0 and bytes.fromhex(json.loads(stdout)["output_hex"]) == expected
    code, stdout, _ = cli(capsys, monkeypatch, "prove", str(wasm), "--export", "dense", "--args",
                          "32", "--input", str(inp), "--output-len", "32", "--out", str(claim_path))
    assert code == 0 and blake3.blake3(expected).hexdigest() in stdout
    code, stdout, _ = cli(capsys, monkeypatch, "verify", str(claim_path), "--program", str(wasm),
                          "--output", str(out))
    assert code == 0 and out.read_bytes() == expected
    assert blake3.blake3(X.tobytes()).hexdigest() in stdout
    code, _, stderr = cli(capsys, monkeypatch, "run", str(wasm), "--export", "dense",
                          "--output-len", "many")
    assert code == 2 and stderr.count("\n") == 1
