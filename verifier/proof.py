"""The STARK proof and its canonical binary encoding (version 2).

Layout, all integers little-endian, field elements as u32 (< p), extension elements as 4 of them:

    header       magic "MJSTARK", version u8, AIR name (u8 length + bytes),
                 log_blowup, num_queries, grinding_bits, fri_log_folding, fri_log_final,
                 commit_grinding_bits (u8 each),
                 log_trace_length u8, main_width u16, aux_width u16, num_segments u8
    commitments  main root, aux root (only if aux_width > 0), composition root (32 bytes each)
    ood          main trace at z and g*z, aux trace at z and g*z, composition segments at z
    fri          one root per FRI layer, the remainder polynomial's coefficients,
                 u8 count + the proof-of-work nonces before the trace-sized challenges (u64 each,
                 protocol order: lookup challenges, z, DEEP coefficients, every folding
                 challenge), the query grinding nonce u64
    openings     unique query count u8; main rows, aux rows, composition rows at those positions;
                 then for each tree (main, aux, composition, every FRI layer) its leaf values and
                 a u16 count of Merkle siblings followed by the siblings

Every length is either fixed by the header or written explicitly and bounded before anything is
allocated; decoding refuses trailing bytes and non-canonical field elements. The verifier later
checks that every explicit count equals the one the protocol derives.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from circuits.field import P
from verifier.params import MAX_LOG_TRACE, ProofParams

MAGIC = b"MJSTARK"
VERSION = 2
DIGEST = 32
MAX_NAME = 64
MAX_WIDTH = 4096
MAX_AUX_WIDTH = 512
MAX_SEGMENTS = 16


class ProofFormatError(ValueError):
    """The bytes are not a well-formed proof."""


@dataclass
class TreeOpening:
    """Leaf values opened at a sorted set of leaves, with their Merkle multiproof."""

    values: np.ndarray  # (num_leaves, leaf_width) base-field elements
    siblings: list[bytes]


@dataclass
class Proof:
    air_name: str
    params: ProofParams
    log_trace_length: int
    main_width: int
    aux_width: int
    num_segments: int
    main_root: bytes
    aux_root: bytes | None
    comp_root: bytes
    ood_main: np.ndarray  # (2, main_width, 4): at z and at g*z
    ood_aux: np.ndarray  # (2, aux_width, 4)
    ood_comp: np.ndarray  # (num_segments, 4)
    fri_roots: list[bytes]
    fri_final: np.ndarray  # (remainder length, 4) coefficients
    challenge_nonces: list[int]  # proof of work before each trace-sized challenge
    nonce: int  # proof of work before the queries
    main_open: TreeOpening
    aux_open: TreeOpening | None
    comp_open: TreeOpening
    fri_open: list[TreeOpening] = field(default_factory=list)

    def remainder_length(self) -> int:
        return 1 << (self.log_trace_length - self.params.fri_log_folding
                     * self.params.num_fri_layers(self.log_trace_length))


# --- encoding ---------------------------------------------------------------------------------

def _u32s(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<u4").tobytes()


def _opening(out: list[bytes], op: TreeOpening) -> None:
    out.append(_u32s(op.values))
    out.append(struct.pack("<H", len(op.siblings)))
    out.extend(op.siblings)


def encode(proof: Proof) -> bytes:
    """Serialize a proof canonically."""
    pr = proof.params
    name = proof.air_name.encode()
    out = [MAGIC, struct.pack("<BB", VERSION, len(name)), name,
           struct.pack("<6B", pr.log_blowup, pr.num_queries, pr.grinding_bits,
                       pr.fri_log_folding, pr.fri_log_final, pr.commit_grinding_bits),
           struct.pack("<BHHB", proof.log_trace_length, proof.main_width, proof.aux_width,
                       proof.num_segments),
           proof.main_root]
    if proof.aux_width:
        out.append(proof.aux_root)
    out.append(proof.comp_root)
    out += [_u32s(proof.ood_main), _u32s(proof.ood_aux), _u32s(proof.ood_comp)]
    out += proof.fri_roots
    out += [_u32s(proof.fri_final), struct.pack("<B", len(proof.challenge_nonces)),
            struct.pack(f"<{len(proof.challenge_nonces)}Q", *proof.challenge_nonces),
            struct.pack("<Q", proof.nonce)]
    out.append(struct.pack("<B", len(proof.main_open.values)))
    for op in [proof.main_open, proof.aux_open, proof.comp_open]:
        if op is not None:
            _opening(out, op)
    for op in proof.fri_open:
        out.append(struct.pack("<B", len(op.values)))
        _opening(out, op)
    return b"".join(out)


# --- decoding ---------------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProofFormatError("proof is truncated")
        chunk = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def digest(self) -> bytes:
        return self.take(DIGEST)

    def elements(self, *shape: int) -> np.ndarray:
        count = int(np.prod(shape))
        arr = np.frombuffer(self.take(4 * count), dtype="<u4").astype(np.uint64).reshape(shape)
        if count and int(arr.max()) >= P:
            raise ProofFormatError("non-canonical field element")
        return arr

    def opening(self, leaves: int, leaf_width: int, max_siblings: int) -> TreeOpening:
        values = self.elements(leaves, leaf_width)
        (count,) = self.unpack("<H")
        if count > max_siblings:
            raise ProofFormatError("too many Merkle siblings")
        blob = self.take(DIGEST * count)
        return TreeOpening(values, [blob[i:i + DIGEST] for i in range(0, len(blob), DIGEST)])


def decode(data: bytes) -> Proof:
    """Parse a proof, refusing anything that is not exactly a canonical encoding."""
    r = _Reader(data)
    if r.take(len(MAGIC)) != MAGIC:
        raise ProofFormatError("not a memjit STARK proof")
    version, name_len = r.unpack("<BB")
    if version != VERSION:
        raise ProofFormatError(f"unsupported proof version {version}")
    if name_len > MAX_NAME:
        raise ProofFormatError("AIR name too long")
    try:
        air_name = r.take(name_len).decode("ascii")
    except UnicodeDecodeError:
        raise ProofFormatError("AIR name is not ASCII") from None
    params = ProofParams(*r.unpack("<6B"))
    log_n, width, aux_width, segments = r.unpack("<BHHB")
    if log_n > MAX_LOG_TRACE or not 1 <= width <= MAX_WIDTH or aux_width > MAX_AUX_WIDTH \
            or not 1 <= segments <= MAX_SEGMENTS:
        raise ProofFormatError("proof shape out of range")
    try:
        params.check_ranges()
        params.check_shape(log_n)
    except ValueError as exc:
        raise ProofFormatError(str(exc)) from None

    main_root = r.digest()
    aux_root = r.digest() if aux_width else None
    comp_root = r.digest()
    ood_main = r.elements(2, width, 4)
    ood_aux = r.elements(2, aux_width, 4)
    ood_comp = r.elements(segments, 4)
    layers = params.num_fri_layers(log_n)
    fri_roots = [r.digest() for _ in range(layers)]
    remainder = 1 << (log_n - params.fri_log_folding * layers)
    fri_final = r.elements(remainder, 4)
    (count,) = r.unpack("<B")
    if count > layers + 3:
        raise ProofFormatError("too many proof-of-work nonces")
    challenge_nonces = list(r.unpack(f"<{count}Q"))
    (nonce,) = r.unpack("<Q")

    (q,) = r.unpack("<B")
    if not 1 <= q <= params.num_queries:
        raise ProofFormatError("query count out of range")
    lde_depth = log_n + params.log_blowup
    bound = q * lde_depth
    main_open = r.opening(q, width, bound)
    aux_open = r.opening(q, 4 * aux_width, bound) if aux_width else None
    comp_open = r.opening(q, 4 * segments, bound)
    fri_open = []
    for i in range(layers):
        (leaves,) = r.unpack("<B")
        if not 1 <= leaves <= q:
            raise ProofFormatError("FRI leaf count out of range")
        depth = lde_depth - (i + 1) * params.fri_log_folding
        fri_open.append(r.opening(leaves, 4 * params.folding, leaves * depth))
    if r.pos != len(data):
        raise ProofFormatError("trailing bytes after proof")
    return Proof(air_name, params, log_n, width, aux_width, segments, main_root, aux_root,
                 comp_root, ood_main, ood_aux, ood_comp, fri_roots, fri_final, challenge_nonces, nonce,
                 main_open, aux_open, comp_open, fri_open)
