"""Tuple fingerprints, the key spaces of the memory argument, and the public lookup tables.

Every lookup is a tuple ``(tag, f1, f2, ...)`` fingerprinted as ``tag + b f1 + b^2 f2 + ...``
and entered into LogUp as ``m / (alpha - fingerprint)``. The public tables (program ROM, nibble
triples, bitwise ops, popcounts, 12-bit range, powers of two) are never committed: the
statement carries how often each entry is used, and the verifier adds their side of the sum
itself, in time linear in the number of used entries.
"""

from __future__ import annotations

import numpy as np

from circuits.air import ZeroDenominator
from circuits.field import P, ext_batch_inv, ext_powers, ext_scale, lincomb, sub

# tuple tags
ROM, MEM, PUBKEY, R3, AND, OR, XOR, U12, POW, PUBOUT = range(1, 11)
POPC = 11
TUPLE_LEN = 11  # the longest tuple: (MEM, key, 8 limbs, ts)

# memory key spaces: key = base + address, every key < 2^25 (KEY_BITS). The value stack, the
# call frames and the globals have 2^22 addresses each; linear memory 2^24 32-bit words (64 MiB).
SPACE_BITS = 22
STACK, FRAME, GLOBAL, MEMORY = (i << SPACE_BITS for i in range(4))
MAX_ADDR = 1 << SPACE_BITS
MEMORY_WORDS = 1 << 24
PAGE_WORDS = 16384  # a 64 KiB WebAssembly page
MAX_MEMORY_PAGES = MEMORY_WORDS // PAGE_WORDS  # 1024 pages: the largest memory the VM proves
KEY_BITS = 25
LIMB = 1 << 12  # range-check limb size (U12 table)

# offsets of the sub-tables after the ROM in the concatenated public table
N_R3 = 16 ** 3
N_OP = 16 ** 2
N_POW_MOD = 256  # kinds 0, 1: (x0, x1) -> s = (x0 + 16 x1) % 32
N_POW_CNT = 33  # kinds 2, 3: v = x0 + 16 x1 in [0, 32]
N_POW = 2 * N_POW_MOD + 2 * N_POW_CNT
R3_BASE, AND_BASE, OR_BASE, XOR_BASE, U12_BASE = 0, N_R3, N_R3 + N_OP, N_R3 + 2 * N_OP, N_R3 + 3 * N_OP
POW_BASE = U12_BASE + LIMB
POPC_BASE = POW_BASE + N_POW
N_FIXED = POPC_BASE + N_OP


def pow_exponent(kind: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The exponent of the POW entry (kind, v): 2^s (kind 0: shl, rotl) or 2^(32-s) (kind 1:
    shr, rotr) with s = v % 32; 2^v (kind 2: clz, v <= 32); 2^(31-v), or 2^32 for v = 32
    (kind 3: ctz). A count of 32 (zero operand) thus multiplies by 2^32 (u4 = 1)."""
    kind, v = np.asarray(kind, np.int64), np.asarray(v, np.int64)
    s = v % 32
    return np.select([kind == 0, kind == 1, kind == 2], [s, 32 - s, v],
                     np.where(v == 32, 32, 31 - v)).astype(np.uint64)


def pow_bytes(kind: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The 5 little-endian bytes of the POW entry (kind, v); (..., 5)."""
    w = np.left_shift(np.uint64(1), pow_exponent(kind, v))
    return (w[..., None] >> (8 * np.arange(5, dtype=np.uint64))) & np.uint64(255)


def pow_index(kind: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Offset of the POW entry (kind, v) in the POW sub-table (v < 256 for kinds 0, 1)."""
    kind, v = np.asarray(kind, np.int64), np.asarray(v, np.int64)
    return np.where(kind < 2, N_POW_MOD * kind + v, 2 * N_POW_MOD + N_POW_CNT * (kind - 2) + v)


def fixed_table() -> np.ndarray:
    """The program-independent entries (N_FIXED, TUPLE_LEN): R3, AND, OR, XOR, U12, POW, POPC
    (popcount(y), y, z): a nibble's popcount with two range-checked nibbles."""
    i = np.arange(N_R3, dtype=np.uint64)
    r3 = np.stack([np.full(N_R3, R3, np.uint64), i & 15, (i >> 4) & 15, i >> 8], axis=1)
    j = np.arange(N_OP, dtype=np.uint64)
    x, y = j & 15, j >> 4
    ops = [np.stack([np.full(N_OP, tag, np.uint64), x, y, f], axis=1)
           for tag, f in ((AND, x & y), (OR, x | y), (XOR, x ^ y))]
    v = np.arange(LIMB, dtype=np.uint64)
    u12 = np.stack([np.full(LIMB, U12, np.uint64), v, 0 * v, 0 * v], axis=1)
    kind = np.concatenate([np.repeat([0, 1], N_POW_MOD), np.repeat([2, 3], N_POW_CNT)])
    v = np.concatenate([np.tile(np.arange(N_POW_MOD), 2), np.tile(np.arange(N_POW_CNT), 2)])
    pw = np.concatenate([np.stack([np.full(N_POW, POW), v & 15, v >> 4, kind], axis=1),
                         pow_bytes(kind, v)], axis=1).astype(np.uint64)
    pc = np.stack([np.full(N_OP, POPC, np.uint64), np.array([bin(int(i)).count("1") for i in x],
                                                            np.uint64), x, y], axis=1)
    return np.concatenate([pad_tuples(t) for t in (r3, *ops, u12, pw, pc)])



def rom_tuples(rom: np.ndarray) -> np.ndarray:
    """ROM rows (L, 7) = (pc, op, imm, arg1, arg2, arg3, sh) as tuples (L, 9) of field elements."""
    imm = rom[:, 2]
    fields = [np.full(len(rom), ROM, np.uint64), rom[:, 0], rom[:, 1], imm & 0xFFFF,
              (imm >> 16) & 0xFFFF, rom[:, 3], rom[:, 4], rom[:, 5], rom[:, 6]]
    return np.stack([to_field(np.asarray(f, dtype=np.uint64)) for f in fields], axis=1)


def to_field(v: np.ndarray) -> np.ndarray:
    """Two's-complement int64 bit patterns (as uint64) to field elements: -x maps to p - x.
    Integers the witness computes in 64-bit arithmetic (a key sp - 1 at sp = 0 is -1) keep
    their value mod p only through this map, never through ``% p`` of the wrapped bits."""
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
    """sum_i mult_i / (alpha - fingerprint(tuple_i)) as one extension element (4,). Raises
    ZeroDenominator if some fingerprint equals alpha (the sum is then undefined)."""
    if len(tuples) == 0:
        return np.zeros(4, dtype=np.uint64)
    den = sub(alpha[None], fingerprints(tuples, beta))
    if not den.any(axis=1).all():
        raise ZeroDenominator("a public LogUp denominator is zero: alpha equals the fingerprint "
                              "of a public tuple")
    inv = ext_batch_inv(den)
    terms = ext_scale(inv, np.asarray(mult, dtype=np.uint64) % np.uint64(P))
    return (terms.sum(axis=0, dtype=np.uint64) % np.uint64(P)).astype(np.uint64)


def pad_tuples(t: np.ndarray) -> np.ndarray:
    """Right-pad tuples with zero fields to TUPLE_LEN (fingerprints are unchanged)."""
    out = np.zeros((len(t), TUPLE_LEN), dtype=np.uint64)
    out[:, :t.shape[1]] = t
    return out


FIXED = fixed_table()
