"""Tuple fingerprints, the key spaces of the memory argument, and the public lookup tables.

Every lookup is a tuple ``(tag, f1, f2, ...)`` fingerprinted as ``tag + b f1 + b^2 f2 + ...``
and entered into LogUp as ``m / (alpha - fingerprint)``. The public tables (program ROM, nibble
triples, bitwise ops, 12-bit range) are never committed: the statement carries how often each
entry is used, and the verifier adds their side of the sum itself, in time linear in the
number of used entries.
"""

from __future__ import annotations

import numpy as np

from circuits.field import P, ext_batch_inv, ext_powers, ext_scale, lincomb, sub

# tuple tags
ROM, MEM, PUBKEY, R3, AND, OR, XOR, U12, POW, PUBOUT = range(1, 11)
TUPLE_LEN = 11  # the longest tuple: (MEM, key, 8 limbs, ts)

# memory key spaces: key = base + address, every key < 2^24
SPACE_BITS = 22
STACK, FRAME, GLOBAL, MEMORY = (i << SPACE_BITS for i in range(4))
MAX_ADDR = 1 << SPACE_BITS
LIMB = 1 << 12  # range-check limb size (U12 table)

# offsets of the sub-tables after the ROM in the concatenated public table
N_R3 = 16 ** 3
N_OP = 16 ** 2
N_POW = 2 * 256  # (kind, x0, x1): kind 0 gives 2^s, kind 1 gives 2^(32-s), s = (x0 + 16 x1) % 32
R3_BASE, AND_BASE, OR_BASE, XOR_BASE, U12_BASE = 0, N_R3, N_R3 + N_OP, N_R3 + 2 * N_OP, N_R3 + 3 * N_OP
POW_BASE = U12_BASE + LIMB
N_FIXED = POW_BASE + N_POW


def pow_bytes(kind: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The 5 little-endian bytes of 2^s (kind 0) or 2^(32-s) (kind 1), s in [0, 32); (..., 5)."""
    e = np.where(kind == 1, 32 - s, s).astype(np.uint64)
    v = np.left_shift(np.uint64(1), e)
    return (v[..., None] >> (8 * np.arange(5, dtype=np.uint64))) & np.uint64(255)


def fixed_table() -> np.ndarray:
    """The program-independent entries (N_FIXED, TUPLE_LEN): R3, AND, OR, XOR, U12, POW."""
    i = np.arange(N_R3, dtype=np.uint64)
    r3 = np.stack([np.full(N_R3, R3, np.uint64), i & 15, (i >> 4) & 15, i >> 8], axis=1)
    j = np.arange(N_OP, dtype=np.uint64)
    x, y = j & 15, j >> 4
    ops = [np.stack([np.full(N_OP, tag, np.uint64), x, y, f], axis=1)
           for tag, f in ((AND, x & y), (OR, x | y), (XOR, x ^ y))]
    v = np.arange(LIMB, dtype=np.uint64)
    u12 = np.stack([np.full(LIMB, U12, np.uint64), v, 0 * v, 0 * v], axis=1)
    k = np.arange(N_POW, dtype=np.uint64)
    kind, x0, x1 = k >> 8, k & 15, (k >> 4) & 15
    pw = np.concatenate([np.stack([np.full(N_POW, POW, np.uint64), x0, x1, kind], axis=1),
                         pow_bytes(kind, (x0 + 16 * x1) % 32)], axis=1)
    return np.concatenate([pad_tuples(t) for t in (r3, *ops, u12, pw)])



def rom_tuples(rom: np.ndarray) -> np.ndarray:
    """ROM rows (L, 7) = (pc, op, imm, arg1, arg2, arg3, sh) as tuples (L, 9) of field elements."""
    imm = rom[:, 2]
    fields = [np.full(len(rom), ROM, np.uint64), rom[:, 0], rom[:, 1], imm & 0xFFFF,
              (imm >> 16) & 0xFFFF, rom[:, 3], rom[:, 4], rom[:, 5], rom[:, 6]]
    return np.stack([_to_field(np.asarray(f, dtype=np.uint64)) for f in fields], axis=1)


def _to_field(v: np.ndarray) -> np.ndarray:
    """Two's-complement int64 bit patterns (as uint64) to field elements: -x maps to p - x."""
    s = v.view(np.int64)
    return np.where(s < 0, np.uint64(P) - (-s).astype(np.uint64) % np.uint64(P),
                    v % np.uint64(P)).astype(np.uint64)


def nibbles(v: np.ndarray) -> np.ndarray:
    """32-bit values (...) as 8 little-endian nibbles (..., 8)."""
    v = np.asarray(v, dtype=np.uint64)
    return (v[..., None] >> (4 * np.arange(8, dtype=np.uint64))) & np.uint64(15)


def fingerprints(tuples: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """sum_j beta^j t_j for tuples (m, k) of field elements; (m, 4)."""
    k = tuples.shape[1]
    return lincomb(np.ascontiguousarray(tuples.T), ext_powers(beta, k))


def logup_sum(tuples: np.ndarray, mult: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """sum_i mult_i / (alpha - fingerprint(tuple_i)) as one extension element (4,)."""
    if len(tuples) == 0:
        return np.zeros(4, dtype=np.uint64)
    inv = ext_batch_inv(sub(alpha[None], fingerprints(tuples, beta)))
    terms = ext_scale(inv, np.asarray(mult, dtype=np.uint64) % np.uint64(P))
    return (terms.sum(axis=0, dtype=np.uint64) % np.uint64(P)).astype(np.uint64)


def pad_tuples(t: np.ndarray) -> np.ndarray:
    """Right-pad tuples with zero fields to TUPLE_LEN (fingerprints are unchanged)."""
    out = np.zeros((len(t), TUPLE_LEN), dtype=np.uint64)
    out[:, :t.shape[1]] = t
    return out


FIXED = fixed_table()
