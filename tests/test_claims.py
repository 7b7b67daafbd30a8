"""Claims: prove/verify round trips, VKs, tampered claim files, refused modules."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import wasmtime

from circuits.wasm_vm import decode_vk
from circuits.wasm_vm.program import VkFormatError
from memjit.runtime.claims import prove_claim, vk_of
from memjit.errors import BadInput, Trap, UnsupportedModule
from memjit.runtime.sandbox import Limits, run
from memjit.workers import load
from verifier.claims import Claim, decode_claim, verify_claim


@pytest.fixture(scope="module")
def fib_claim():
    module = load("fib")
    return module, vk_of(module), prove_claim(module, "fib", [7]).encode()


def test_claim_verifies_and_reencodes(fib_claim):
    module, vk, data = fib_claim
    verdict = verify_claim(data, vk)
    assert verdict.valid and verdict.security_bits >= 100, verdict.reason
    claim = decode_claim(data)
    assert claim.encode() == data
    assert claim.statement.result == run(module, "fib", [7]).results[0]
    assert claim.statement.export == "fib" and claim.statement.args == (7,)


def test_mlp_claim_verifies():
    module = load("mlp")
    claim = prove_claim(module, "classify", [3])
    assert claim.statement.result == run(module, "classify", [3]).results[0]
    assert verify_claim(claim.encode(), vk_of(module)).valid


def test_negative_arguments_and_results():
    module = wasmtime.wat2wasm('(module (func (export "neg") (param i32) (result i32) '
                               '(i32.sub (i32.const 0) (local.get 0))))')
    claim = prove_claim(module, "neg", [-5])
    assert claim.statement.args == (2 ** 32 - 5,) and claim.statement.result == 5
    assert verify_claim(claim.encode(), vk_of(module)).valid


def test_the_nonce_is_bound_by_the_proof(fib_claim):
    module, vk, plain = fib_claim
    nonce, other = bytes(range(32)), bytes(range(1, 33))
    data = prove_claim(module, "fib", [7], nonce=nonce).encode()
    assert decode_claim(plain).statement.nonce == bytes(32)  # a proof of no request
    assert verify_claim(data, vk).valid and verify_claim(data, vk, nonce=nonce).valid
    verdict = verify_claim(data, vk, nonce=other)
    assert not verdict.valid and "another request" in verdict.reason
    # re-labelling the proof with another nonce changes the transcript: the proof fails
    claim = decode_claim(data)
    moved = Claim(dataclasses.replace(claim.statement, nonce=other), claim.proof).encode()
    assert not verify_claim(moved, vk).valid and not verify_claim(moved, vk, nonce=other).valid
    with pytest.raises(BadInput, match="32 bytes"):
        prove_claim(module, "fib", [7], nonce=bytes(31))


def test_vk_is_deterministic_and_canonical(fib_claim):
    module, vk, _ = fib_claim
    assert vk_of(module) == vk
    assert decode_vk(vk).encode() == vk
    with pytest.raises(VkFormatError):
        decode_vk(vk + b"\0")
    assert vk_of(load("crc32")) != vk


def test_claim_under_another_vk_rejected(fib_claim):
    _, _, data = fib_claim
    verdict = verify_claim(data, vk_of(load("sort")))
    assert not verdict.valid and "another program" in verdict.reason


def test_every_sampled_byte_change_rejected(fib_claim):
    _, vk, data = fib_claim
    positions = np.unique(np.concatenate([np.arange(0, 200, 3),
                                          np.linspace(0, len(data) - 1, 60).astype(int)]))
    for pos in positions:
        for flip in (0x01, 0x80):
            bad = bytearray(data)
            bad[pos] ^= flip
            assert not verify_claim(bytes(bad), vk).valid, f"byte {pos} ^ {flip:#x} accepted"
    assert not verify_claim(data + b"\0", vk).valid
    assert not verify_claim(data[:-1], vk).valid
    assert not verify_claim(b"", vk).valid


def test_corrupted_vk_rejected(fib_claim):
    _, vk, data = fib_claim
    for pos in (0, 10, len(vk) // 2, len(vk) - 1):
        bad = bytearray(vk)
        bad[pos] ^= 1
        assert not verify_claim(data, bytes(bad)).valid


@pytest.mark.parametrize("memory, memory_mb, message", [
    ("(memory 1)", 128, "can reach 2048 pages; the VM proves at most 1024"),  # grows past 64 MiB
    ("(memory 1025 2000)", 128, "can reach 2000 pages"),
    ("(memory 20)", 1, "initial memory of 20 pages exceeds the memory cap of 1 MiB"),
])
def test_memory_the_vm_cannot_prove_refused(memory, memory_mb, message):
    module = wasmtime.wat2wasm(f'(module {memory} (func (export "f") (param i32) (result i32) '
                               '(memory.grow (local.get 0))))')
    with pytest.raises(UnsupportedModule, match=message) as exc:
        prove_claim(module, "f", [1], limits=Limits(memory_mb=memory_mb))
    assert exc.value.exit_code == 2
    with pytest.raises(UnsupportedModule, match=message):
        vk_of(module, memory_mb)


TRAPPING = '(module (func (export "f") (param i32) (result i32) (if (local.get 0) (then (call 1))) ' \
    '(i32.const 1)) (func (if (i32.const 1) (then unreachable))))'


def test_trap_statement_verifies_and_never_as_a_result():
    module = wasmtime.wat2wasm(TRAPPING)
    vk = vk_of(module)
    claim = prove_claim(module, "f", [1])  # traps inside a call (depth 1)
    assert claim.statement.trap == "unreachable" and claim.statement.result is None
    assert verify_claim(claim.encode(), vk).valid
    as_result = dataclasses.replace(claim.statement, trap=None, result=1)
    assert not verify_claim(Claim(as_result, claim.proof).encode(), vk).valid
    returned = prove_claim(module, "f", [0])
    assert returned.statement.result == 1 and verify_claim(returned.encode(), vk).valid
    as_trap = dataclasses.replace(returned.statement, trap="unreachable", result=None)
    assert not verify_claim(Claim(as_trap, returned.proof).encode(), vk).valid


def test_other_traps_refused():
    module = wasmtime.wat2wasm('(module (func $f (export "f") (param i32) (result i32) '
                               '(call $f (local.get 0))))')
    with pytest.raises(Trap, match="stack_overflow"):
        prove_claim(module, "f", [1])


def test_claim_verifier_imports_no_engine():
    code = ("import sys, verifier.claims; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert not set(out.stdout.split()) & {"prover", "memjit", "wasmtime", "benchmarks"}
