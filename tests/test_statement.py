"""The statement encoding (v3): canonical round trips of random statements, and a decoder that
refuses every malformed or older encoding with StatementFormatError and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from circuits.wasm_vm.statement import (MAGIC, NONCE_BYTES, TRAPS, StatementFormatError,
                                        VmStatement, decode_statement)

WORD = st.integers(0, 2**32 - 1)


@st.composite
def statements(draw: st.DrawFn) -> VmStatement:
    outcome = draw(st.sampled_from(("none", "value", "wide", "trap")))
    result = {"none": None, "trap": None, "value": draw(WORD),
              "wide": draw(st.integers(0, 2**64 - 1))}[outcome]
    out_len = draw(st.integers(0, 40))
    offset = draw(st.integers(0, 3)) if out_len else 0
    words = draw(st.lists(WORD, min_size=-(-(offset + out_len) // 4),
                          max_size=-(-(offset + out_len) // 4)))
    index = sorted(draw(st.sets(WORD, max_size=8)))
    counts = draw(st.lists(st.integers(1, 2**32 - 1), min_size=len(index), max_size=len(index)))
    return VmStatement(
        vk=draw(st.binary(min_size=32, max_size=32)), export=draw(st.text(max_size=20).filter(
            lambda s: len(s.encode()) < 256)), args=tuple(draw(st.lists(WORD, max_size=6))),
        result=result, steps=draw(WORD), log_n=draw(st.integers(0, 255)),
        mult_index=np.array(index, np.uint64), mult_count=np.array(counts, np.uint64),
        trap=draw(st.sampled_from(TRAPS)) if outcome == "trap" else None,
        input=draw(st.binary(max_size=64)), output_len=out_len, output_offset=offset,
        output_words=np.array(words, np.uint64), wide=outcome == "wide",
        nonce=draw(st.binary(min_size=NONCE_BYTES, max_size=NONCE_BYTES)))


@given(statements())
def test_random_statements_round_trip(statement: VmStatement) -> None:
    data = statement.encode()
    back, used = decode_statement(data + b"trailing")
    assert used == len(data) and back.encode() == data
    assert (back.nonce, back.vk, back.result, back.trap) == (
        statement.nonce, statement.vk, statement.result, statement.trap)


@given(statements(), st.data())
def test_truncated_or_altered_encodings_fail_only_with_the_format_error(
        statement: VmStatement, data: st.DataObject) -> None:
    encoded = statement.encode()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(StatementFormatError):
        decode_statement(encoded[:cut])
    at = data.draw(st.integers(0, len(encoded) - 1))
    altered = encoded[:at] + bytes([data.draw(st.integers(0, 255))]) + encoded[at + 1:]
    try:
        back, used = decode_statement(altered)
        assert back.encode() == altered[:used]  # whatever decodes is canonical
    except StatementFormatError:
        pass


@given(st.binary(max_size=200))
def test_arbitrary_bytes_fail_only_with_the_format_error(data: bytes) -> None:
    for candidate in (data, MAGIC + bytes([3]) + data):
        try:
            back, used = decode_statement(candidate)
            assert back.encode() == candidate[:used]
        except StatementFormatError:
            pass


def test_version_2_and_short_nonces_are_refused() -> None:
    statement = VmStatement(bytes(32), "f", (), 7, 1, 3, np.zeros(0, np.uint64),
                            np.zeros(0, np.uint64), nonce=bytes(range(32)))
    data = statement.encode()
    assert data[4] == 3 and data[37:69] == bytes(range(32))  # version, vk digest, then the nonce
    with pytest.raises(StatementFormatError, match="version"):
        decode_statement(data[:4] + bytes([2]) + data[5:])
    with pytest.raises(ValueError, match="32 bytes"):
        VmStatement(bytes(32), "f", (), 7, 1, 3, np.zeros(0, np.uint64), np.zeros(0, np.uint64),
                    nonce=bytes(31)).encode()
