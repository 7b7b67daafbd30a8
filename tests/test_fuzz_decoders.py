"""Structured fuzzing of every decoder: claim, proof, verification key, statement, the WASM
front end, batch header and batch data.

Each input, up to 1 MB, must end either in a decoded value or in the decoder's own documented
error (its format error type, or BadInput for the WASM front end); anything else (IndexError,
struct.error, MemoryError, OverflowError, ...) is a bug. Inputs are valid encodings mutated the
way a hostile peer would (flip bytes, truncate, extend, insert, overwrite a word, a length field
most likely, with boundary values up to 2^64 - 1) and plain random bytes, with or without the
format's magic. Every input is also held to the resource bounds: at most 256 MB allocated
(tracemalloc's peak, which numpy's buffers report too) and at most 2 s of CPU time (process
time, so that a loaded machine cannot fail the test); the worst of both is printed.
"""

from __future__ import annotations

import random
import struct
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits.wasm_vm import program as vk_format
from circuits.wasm_vm import statement as statement_format
from circuits.wasm_vm.program import VkFormatError, decode_vk
from circuits.wasm_vm.statement import StatementFormatError, decode_statement
from memjit.errors import BadInput
from memjit.market.facts import Fact, Weighing
from memjit.rollup import header as header_format
from memjit.rollup.batcher import DATA_MAGIC, DATA_VERSION, BatchData, decode_data
from memjit.rollup.header import BatchFormatError, Header, decode_header
from memjit.runtime.claims import prove_claim, vk_of
from memjit.runtime.wasm import load
from memjit.workers import WORKERS_DIR
from verifier import claims as claim_format
from verifier import proof as proof_format
from verifier.claims import ClaimFormatError, decode_claim
from verifier.proof import ProofFormatError, decode

MAX_INPUT = 1 << 20
MAX_BYTES = 256 << 20
MAX_CPU_S = 2.0
BOUNDARY = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 32,
            (1 << 63) - 1, (1 << 64) - 1)


@dataclass
class Target:
    """A decoder, the one error type it may raise, and valid encodings to mutate."""

    decode: Callable[[bytes], object]
    error: type[Exception]
    seeds: list[bytes]
    magic: bytes


def _magic(fmt: ModuleType) -> bytes:
    """A format's magic and version byte: random bytes after them reach the decoder's body."""
    return fmt.MAGIC + bytes([fmt.VERSION])


def _module(name: str) -> bytes:
    return (WORKERS_DIR / f"{name}.wasm").read_bytes()


@pytest.fixture(scope="module")
def targets() -> dict[str, Target]:
    """Every decoder with real encodings: a claim with input and output bytes (proven once,
    about a second), the keys of three workers, a signed-shape header, batch data."""
    dense = _module("dense")
    claim = prove_claim(dense, "dense", [32], input_bytes=bytes(range(32)), output_len="result")
    statement = claim.statement.encode()
    worker = "ab" * 32
    facts = (Fact(worker, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 1_000_000, 199,
                  "bafkr4idnqrq2lcasxqxeawe5e7lhb4b7lyod7qyf2jxa2ernui7tapkfzy"),
             Fact(worker, b"\x04" * 32, b"\x05" * 32, b"\x06" * 32, 0, 0, None,
                  Weighing(200_000, 5, 86_400, 7, 2**53 - 1, 10_000)))
    header = Header(3, b"\x11" * 32, b"\x12" * 32, b"\x13" * 32, b"\x14" * 32, 2, 199, 1_700_000_000_000, ((bytes.fromhex(worker), 1_000_000),),
                    (b"\x21" * 48, b"\x22" * 48)).signed(b"\x33" * 96)
    return {
        "claim": Target(decode_claim, ClaimFormatError, [claim.encode()], _magic(claim_format)),
        "proof": Target(decode, ProofFormatError, [claim.proof], _magic(proof_format)),
        "vk": Target(decode_vk, VkFormatError,
                     [vk_of(_module(n)) for n in ("dense", "fnptr", "mix64")], _magic(vk_format)),
        "statement": Target(decode_statement, StatementFormatError, [statement], _magic(statement_format)),
        "wasm": Target(lambda data: load(data, crosscheck=False), BadInput,
                       [_module(n) for n in ("dense", "fnptr", "mix64")], b"\0asm\x01\0\0\0"),
        "header": Target(decode_header, BatchFormatError, [header.encode()], _magic(header_format)),
        "batch data": Target(decode_data, BatchFormatError,
                             [BatchData(3, facts).encode()], DATA_MAGIC + bytes([DATA_VERSION])),
    }


def _filler(seed: int, n: int) -> bytes:
    """n bytes from a seeded generator: long runs without drawing them byte by byte."""
    kind = seed % 3
    if kind == 0:
        return bytes(n)
    if kind == 1:
        return b"\xff" * n
    return random.Random(seed).randbytes(n)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], magic: bytes) -> bytes:
    """A valid encoding after 1-3 mutations, or random bytes (after the magic, or not)."""
    if draw(st.integers(0, 4)) == 0:
        head = magic if draw(st.booleans()) else b""
        return head + draw(st.binary(max_size=2048))
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(("flip", "truncate", "extend", "insert", "word")))
        # Headers and length fields sit near the start: half the positions are drawn there.
        near = draw(st.booleans())
        pos = draw(st.integers(0, max(0, min(len(data), 96 if near else len(data)) - 1)))
        if kind == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind in ("extend", "insert"):
            n = draw(st.sampled_from((1, 7, 4096, MAX_INPUT - len(data))))
            run = _filler(draw(st.integers(0, 1 << 30)), max(0, min(n, MAX_INPUT - len(data))))
            at = len(data) if kind == "extend" else pos
            data[at:at] = run
        elif kind == "word":
            width = draw(st.sampled_from((1, 2, 4, 8)))
            value = draw(st.sampled_from(BOUNDARY + (len(data), len(data) + 1))) % (1 << 8 * width)
            order = draw(st.sampled_from(("<", ">")))
            word = struct.pack(order + {1: "B", 2: "H", 4: "I", 8: "Q"}[width], value)
            data[pos:pos + width] = word
    return bytes(data[:MAX_INPUT])


WORST: dict[str, tuple[float, int, int]] = {}


def _check(name: str, target: Target, data: bytes) -> None:
    """Decode once under the bounds; record the worst CPU time and allocation peak."""
    assert len(data) <= MAX_INPUT
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.process_time()
    try:
        target.decode(data)
    except target.error:
        pass
    except Exception as exc:  # noqa: BLE001 - anything else is the bug this test looks for
        raise AssertionError(f"{name}: {type(exc).__name__}: {exc} on {len(data)} bytes "
                             f"starting {data[:24].hex()}") from exc
    finally:
        cpu = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    worst = WORST.get(name, (0.0, 0, 0))
    WORST[name] = (max(worst[0], cpu), max(worst[1], peak), max(worst[2], len(data)))
    assert peak <= MAX_BYTES, f"{name}: allocated {peak / 2**20:.0f} MB for {len(data)} bytes"
    assert cpu <= MAX_CPU_S, f"{name}: {cpu:.2f} s of CPU for {len(data)} bytes"


@pytest.mark.parametrize("name", ["claim", "proof", "vk", "statement", "wasm", "header",
                                  "batch data"])
def test_every_input_ends_in_the_decoders_own_error(name: str, targets: dict[str, Target]) -> None:
    target = targets[name]
    for seed in target.seeds:  # the seeds themselves decode
        target.decode(seed)

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(target.seeds, target.magic))
    def fuzz(data: bytes) -> None:
        _check(name, target, data)

    fuzz()
    cpu, peak, longest = WORST[name]
    print(f"{name}: worst {cpu * 1e3:.1f} ms CPU, {peak / 2**20:.1f} MB peak; longest input "
          f"{longest} bytes")


def test_huge_declared_lengths_are_refused_before_allocating(targets: dict[str, Target]) -> None:
    """Length fields set to their largest values, in every decoder that has one at a known
    place, end in the format error at once (nothing is allocated for what is not there)."""
    claim = targets["claim"].seeds[0]
    cases = {
        "claim": [claim[:8] + b"\xff\xff\xff\xff" + claim[12:],
                  claim[:8] + struct.pack("<I", 64 << 20) + claim[12:]],
        "batch data": [DATA_MAGIC + bytes([DATA_VERSION]) + struct.pack(">QI", 1, 0xFFFFFFFF),
                       DATA_MAGIC + bytes([DATA_VERSION]) + struct.pack(">QI", 1, 1 << 24)
                       + bytes(200)],
        "header": [targets["header"].seeds[0][:8 + 8 + 128 + 4 + 16] + b"\xff" * 4],
    }
    for name, inputs in cases.items():
        for data in inputs:
            with pytest.raises(targets[name].error):
                targets[name].decode(data)
            _check(name, targets[name], data)
