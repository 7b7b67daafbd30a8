"""The verification key holds all of a fresh instance's start state, and a module whose
instantiation traps has none (issue 14, part 1).

A module with a data or element segment out of bounds can never be instantiated: wasmtime
traps, so every call of every export traps. Its key used to leave the memory image out, and a
prover tracing the program as if instantiation had worked proved an ordinary "f returned 0".
Now `vk`, `prove`, `verify --program` and `worker add` refuse it with one line (exit 2), and
the forged claim (made with the prover's own code) has no key of this module to verify under.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import wasmtime
from helpers import cli
from hypothesis import HealthCheck, given, settings, strategies as st

from circuits.wasm_vm import decode_vk
from circuits.wasm_vm.program import VkFormatError
from memjit.errors import Trap, UnsupportedModule
from memjit.runtime.claims import prove_claim, vk_of, vm_program, witness
from memjit.runtime.sandbox import run
from memjit.runtime.tracer import trace
from memjit.runtime.wasm import load
from prover import prove
from test_vm_air import FAST
from verifier.claims import Claim, verify_claim
from circuits.wasm_vm import VmAir, VmInputs

WORKER = '''(module (memory 1) (table 2 funcref)
  (global (export "memjit_input") i32 (i32.const 1024))
  (func $one (result i32) (i32.const 1))
  (func (export "classify") (result i32) (i32.load (i32.const 65532)))
  {segment})'''
"""A module that serves the digits task (classify() -> i32, a 64-byte input buffer)."""
SEGMENTS = {
    "data": ('(data (i32.const 65534) "\\07\\07\\07")', "data segment 0 (3 bytes at 65534) lies "
             "outside the initial memory of 65536 bytes"),
    "element": ("(elem (i32.const 1) $one $one)", "element segment 0 (2 entries at 1) lies "
                "outside the table of 2 entries"),
}


def trapping(kind: str) -> bytes:
    return wasmtime.wat2wasm(WORKER.format(segment=SEGMENTS[kind][0]))


@pytest.mark.parametrize("kind", SEGMENTS)
def test_a_module_whose_instantiation_traps_gets_no_key(kind):
    module, why = trapping(kind), SEGMENTS[kind][1]
    with pytest.raises(Trap):  # wasmtime agrees: the instance never exists
        run(module, "classify")
    for derive in (lambda: vk_of(module), lambda: prove_claim(module, "classify")):
        with pytest.raises(UnsupportedModule, match=re.escape(f"cannot be instantiated: {why}")) \
                as exc:
            derive()
        assert exc.value.exit_code == 2


def forge(module: bytes) -> tuple[bytes, bytes]:
    """The old key derivation (no memory image, instantiation assumed to work) and a claim
    proven under it with the prover's own code: "classify() returned 0"."""
    prog = load(module)
    as_if = dataclasses.replace(prog, data_segments=(), init_trap=None, init_fault=None)
    vm = vm_program(as_if)
    main, statement = witness(trace(as_if, "classify"), vm)
    return vm.encode(), Claim(statement, prove(VmAir(VmInputs(vm, statement)), main, FAST)).encode()


@pytest.mark.parametrize("kind", SEGMENTS)
def test_a_forged_claim_has_no_key_of_the_module_to_verify_under(kind, tmp_path, capsys,
                                                                  monkeypatch):
    module = trapping(kind)
    forged_vk, claim = forge(module)
    # the forged key is the key of another module, the same without its segment: the claim
    # is (at best) a true statement about that one, and this module has no key at all
    assert verify_claim(claim, forged_vk, min_security_bits=0).valid
    assert forged_vk == vk_of(wasmtime.wat2wasm(WORKER.format(segment="")))
    (tmp_path / "m.wasm").write_bytes(module)
    (tmp_path / "c.claim").write_bytes(claim)
    code, out, err = cli(capsys, monkeypatch, "verify", str(tmp_path / "c.claim"),
                         "--program", str(tmp_path / "m.wasm"))
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert "cannot be instantiated" in err and SEGMENTS[kind][0].split()[0][1:] in err


@pytest.mark.parametrize("kind", SEGMENTS)
def test_the_cli_refuses_the_module_in_one_line(kind, tmp_path, capsys, monkeypatch):
    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(trapping(kind))
    home = str(tmp_path / "home")
    for argv in (("vk", str(wasm)),
                 ("prove", str(wasm), "--export", "classify", "--out", str(tmp_path / "c")),
                 ("--home", home, "worker", "add", str(wasm), "--stake", "500", "--owner", "eve")):
        code, out, err = cli(capsys, monkeypatch, *argv)
        assert code == 2 and out == "", argv
        assert err.count("\n") == 1 and f"cannot be instantiated: {SEGMENTS[kind][1]}" in err
    assert not (tmp_path / "c").exists()


# --- the key holds the whole start state ------------------------------------------------------

BASE = '''(module (memory {min} {max}) (table 3 funcref)
  (global $g (mut i32) (i32.const {glob}))
  (global (export "memjit_input") i32 (i32.const {buf}))
  (func $a (result i32) (i32.const 1)) (func $b (result i32) (i32.const 2))
  (elem (i32.const {elem}) $a $b)
  (data (i32.const 16) "{data}")
  (func (export "{name}") (param i32) (result i32)
    (i32.add (global.get $g) (call_indirect (result i32) (local.get 0)))
    {grow}))'''
PARTS = dict(min=1, max=4, glob=5, buf=64, elem=0, data="\\01\\02", name="f", grow="")
VARIANTS = [("data", "\\01\\03"), ("elem", 1), ("glob", 6), ("min", 2), ("buf", 68),
            ("name", "g")]


def key(memory_mb: int = 64, **changes) -> bytes:
    return vk_of(wasmtime.wat2wasm(BASE.format(**{**PARTS, **changes})), memory_mb)


def test_every_part_of_the_start_state_changes_the_key():
    base = key()
    keys = {base} | {key(**{part: value}) for part, value in VARIANTS}
    assert len(keys) == 1 + len(VARIANTS)
    # the limits of a memory that grows: its declared maximum and the sandbox's cap
    grows = dict(grow="(drop (memory.grow (i32.const 1)))", max="")
    assert len({key(**grows), key(**{**grows, "max": 9}), key(1, **grows)}) == 3


def test_the_key_of_a_grown_memory_decodes_to_its_limits():
    prog = decode_vk(key(2, grow="(drop (memory.grow (i32.const 1)))", max=""))
    assert (prog.mem_pages, prog.max_pages, prog.end_pages) == (1, 65536, 32)
    prog = decode_vk(key(2, grow="(drop (memory.grow (i32.const 1)))", max=9))
    assert (prog.mem_pages, prog.max_pages, prog.end_pages) == (1, 9, 9)
    prog = decode_vk(key())  # without memory.grow the cap is the initial memory
    assert (prog.mem_pages, prog.max_pages, prog.end_pages) == (1, 4, 1)


def _reencode(vk: bytes, **changes) -> bytes:
    return dataclasses.replace(decode_vk(vk), **changes).encode()


@pytest.mark.parametrize("changes, message", [
    (dict(cap_pages=3), "cap of a program without memory.grow"),
    (dict(max_pages=0), "initial <= cap <= maximum"),
    (dict(max_pages=70000), "initial <= cap <= maximum"),
    (dict(cap_pages=0), "initial <= cap <= maximum"),
])
def test_memory_limits_are_checked_when_decoding(changes, message):
    with pytest.raises(VkFormatError, match=message):
        decode_vk(_reencode(key(), **changes))


def test_a_load_offset_of_2_to_the_32_is_refused_when_decoding():
    prog = decode_vk(vk_of(wasmtime.wat2wasm(WORKER.format(segment=""))))
    rom = prog.rom.copy()
    rom[rom[:, 1] == 21, 2] = 1 << 32  # an i32.load whose offset does not fit 32 bits
    assert (rom[:, 1] == 21).any()
    with pytest.raises(VkFormatError, match="offset"):
        decode_vk(dataclasses.replace(prog, rom=rom).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_decoding_a_mutated_key_fails_cleanly_or_is_canonical(data):
    vk = bytearray(key(grow="(drop (memory.grow (i32.const 1)))", max=""))
    kind = data.draw(st.sampled_from(["flip", "truncate", "append", "insert"]))
    at = data.draw(st.integers(0, len(vk) - 1))
    if kind == "flip":
        vk[at] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        del vk[at:]
    elif kind == "append":
        vk += data.draw(st.binary(min_size=1, max_size=16))
    else:
        vk[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    try:
        prog = decode_vk(bytes(vk))
    except VkFormatError:
        return
    assert prog.encode() == bytes(vk)  # what decodes is exactly what it encodes to
