"""Claim files and their verification, without the engine (embeddable).

A claim is a statement about one call of a program (:class:`circuits.wasm_vm.VmStatement`) and a
STARK proof of it; a run too long for one trace is proven in segments (continuations,
verifier.segments), each with its own statement and proof. Encoding (little-endian)::

    version 1 (one trace):
    "MJCLAIM" u8 1, u32 statement length, statement, u32 proof length, proof
    version 2 (segments; the statement has no multiplicities):
    "MJCLAIM" u8 2, u32 statement length, statement, u32 S (1 <= S <= MAX_SEGMENTS),
    S times: u32 segment statement length, segment statement, u32 proof length, proof

with no trailing bytes. ``verify_claim(claim, vk)`` checks the statement names the VK's digest,
then verifies the proof of the VM AIR against the program in the VK; ``verify_claim(claim, vk,
nonce=n)`` also requires the claim to answer nonce ``n`` (a market request's), which the proof
binds as part of the statement.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import blake3

from circuits.wasm_vm import (StatementFormatError, VkFormatError, VmAir, VmInputs, VmStatement,
                              decode_statement, decode_vk)
from circuits.wasm_vm.segment import SegmentStatement, decode_segment
from verifier.params import DEFAULT_MIN_SECURITY_BITS
from verifier.segments import verify_segments
from verifier.stark import Verdict, verify_air

MAGIC = b"MJCLAIM"
VERSION = 1
SEGMENTED = 2  # the version of a claim proven in segments
MAX_SEGMENTS = 1 << 16
MAX_STATEMENT = 64 << 20
MAX_PROOF = 64 << 20


class ClaimFormatError(ValueError):
    """The bytes are not a well-formed claim."""


@dataclass(frozen=True, eq=False)
class Claim:
    statement: VmStatement
    proof: bytes  # empty for a segmented claim
    segments: tuple[tuple[SegmentStatement, bytes], ...] = ()  # (statement, proof) in run order

    def encode(self) -> bytes:
        return encode_claim(self)


def encode_claim(claim: Claim) -> bytes:
    st = claim.statement.encode()
    if not claim.segments:
        return b"".join([MAGIC, bytes([VERSION]), struct.pack("<I", len(st)), st,
                         struct.pack("<I", len(claim.proof)), claim.proof])
    return b"".join([MAGIC, bytes([SEGMENTED]), struct.pack("<I", len(st)), st,
                     proof_bytes(claim)])


def proof_bytes(claim: Claim) -> bytes:
    """What proves a claim's statement: its proof (version 1), or (version 2) its segments
    as encoded: u32 S, then every segment's statement and proof. A digest of a claim's proof
    (a market fact's) is of these bytes."""
    if not claim.segments:
        return claim.proof
    out = [struct.pack("<I", len(claim.segments))]
    for seg, proof in claim.segments:
        body = seg.encode()
        out += [struct.pack("<I", len(body)), body, struct.pack("<I", len(proof)), proof]
    return b"".join(out)


def decode_claim(data: bytes) -> Claim:
    """Parse a claim file (every length bounded, no trailing bytes)."""
    data = bytes(data)
    head = len(MAGIC) + 1
    if len(data) < head + 4 or data[:len(MAGIC)] != MAGIC or \
            data[len(MAGIC)] not in (VERSION, SEGMENTED):
        raise ClaimFormatError("not a memjit claim (bad magic or version)")
    (slen,) = struct.unpack_from("<I", data, head)
    if slen > MAX_STATEMENT or head + 4 + slen + 4 > len(data):
        raise ClaimFormatError("bad statement length")
    body = data[head + 4:head + 4 + slen]
    try:
        st, used = decode_statement(body)
    except StatementFormatError as exc:
        raise ClaimFormatError(f"malformed statement: {exc}") from None
    if used != slen:
        raise ClaimFormatError("statement has trailing bytes")
    pos = head + 4 + slen
    if data[len(MAGIC)] == SEGMENTED:
        return Claim(st, b"", _decode_segments(data, pos))
    (plen,) = struct.unpack_from("<I", data, pos)
    if plen > MAX_PROOF or pos + 4 + plen != len(data):
        raise ClaimFormatError("bad proof length or trailing bytes")
    return Claim(st, data[pos + 4:])


def _decode_segments(data: bytes, pos: int) -> tuple[tuple[SegmentStatement, bytes], ...]:
    """The (segment statement, proof) pairs of a version-2 claim from ``pos`` to the end."""
    def length(limit: int, what: str) -> int:
        nonlocal pos
        if pos + 4 > len(data):
            raise ClaimFormatError(f"truncated claim ({what})")
        (n,) = struct.unpack_from("<I", data, pos)
        if n > limit or pos + 4 + n > len(data):
            raise ClaimFormatError(f"bad {what}")
        pos += 4
        return n

    count = length(MAX_SEGMENTS, "segment count")
    if count == 0:
        raise ClaimFormatError("a segmented claim has at least one segment")
    segments = []
    for _ in range(count):
        n = length(MAX_STATEMENT, "segment statement length")
        try:
            seg, used = decode_segment(data[pos:pos + n])
        except StatementFormatError as exc:
            raise ClaimFormatError(f"malformed segment statement: {exc}") from None
        if used != n:
            raise ClaimFormatError("segment statement has trailing bytes")
        pos += n
        n = length(MAX_PROOF, "segment proof length")
        segments.append((seg, data[pos:pos + n]))
        pos += n
    if pos != len(data):
        raise ClaimFormatError("trailing bytes after the segments")
    return tuple(segments)


def vk_digest(vk: bytes) -> bytes:
    """The 32-byte name of a verification key."""
    return blake3.blake3(bytes(vk)).digest()


def verify_claim(claim_bytes: bytes, vk: bytes,
                 min_security_bits: int = DEFAULT_MIN_SECURITY_BITS, *,
                 nonce: bytes | None = None) -> Verdict:
    """Verify a claim file against VK bytes (and, if given, the nonce it must answer); never
    raises for bad input."""
    try:
        claim = decode_claim(claim_bytes)
        program = decode_vk(vk)
    except (ClaimFormatError, VkFormatError) as exc:
        return Verdict(False, str(exc))
    if claim.statement.vk != vk_digest(vk):
        return Verdict(False, "claim is for another program (verification key mismatch)")
    if nonce is not None and claim.statement.nonce != bytes(nonce):
        return Verdict(False, "claim answers another request (nonce mismatch)")
    if claim.segments:
        return verify_segments(program, claim.statement, claim.segments, min_security_bits)
    try:
        air = VmAir(VmInputs(program, claim.statement))
    except ValueError as exc:
        return Verdict(False, f"bad statement: {exc}")
    return verify_air(air, claim.proof, min_security_bits)
