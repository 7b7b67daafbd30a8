"""Number-theoretic transforms over BabyBear (p = 2^31 - 2^27 + 1), numba kernels.

Every function works on the last axis of a uint64 array of any leading shape, whose length is a
power of two; values are canonical (in [0, p)) on input and on output. The primitive n-th root
of unity is omega_n = 31^((p - 1) / n), the same everywhere in the project.

Internals: radix-2 Cooley-Tukey (DIT, bit-reversed in / natural out) and Gentleman-Sande (DIF,
natural in / bit-reversed out) butterflies with Montgomery multiplication (R = 2^32) against
uint32 twiddle tables kept in Montgomery form. The stages that stay inside a 4096-element block
run block by block in L1; the others run in passes of up to six stages over 64 x 64 tiles copied
to L1, so even 2^23-point transforms touch memory only three times. Work is split into tasks over
(row, tile), so several rows or one long row use every core.

Coset evaluation needs no zero-padded copy: in bit-reversed order the n coefficients of a
degree < n polynomial land on multiples of B = size / n, and the first log B DIT stages just
copy each one across its B slots; so the kernel spreads the scaled coefficients and runs the
remaining log n stages in place in the output. An LDE never permutes: the inverse DIF leaves the
coefficients bit-reversed, which is exactly the order that spreading wants.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from circuits.field import P, TWO_ADICITY, root_of_unity
from circuits.parallel import one_thread_if_small

__all__ = ["coset_intt", "coset_ntt", "intt", "lde", "ntt", "root_of_unity"]

_P = np.uint64(P)
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_NPINV = np.uint64((-pow(P, -1, 1 << 32)) % (1 << 32))  # -p^-1 mod 2^32
_R = (1 << 32) % P  # Montgomery form of 1

_BLOCK = 1 << 12  # elements transformed together while they sit in L1 (32 KiB of uint64)
_GROUP = 6  # stages per pass over a large array (tiles of 2^6 rows x 2^6 columns)
_QBITS = 5  # bit-reversal tiles are 2^5 x 2^5 elements
_SMALL = 1 << 14  # transforms with fewer output elements run on one thread


def _check_size(n: int) -> None:
    if n < 1 or n & (n - 1) or n > 1 << TWO_ADICITY:
        raise ValueError(f"size must be a power of two in [1, 2^{TWO_ADICITY}], got {n}")


def _to_mont(x: int) -> int:
    return x * _R % P


# --------------------------------------------------------------------------- arithmetic


@njit(inline="always")
def _mont(x, y):
    """x * y / 2^32 mod p, canonical; x < p and y < 2^32 (y a Montgomery-form constant)."""
    t = (x & _M32) * (y & _M32)
    m = ((t & _M32) * _NPINV) & _M32
    u = (t + m * _P) >> _S32
    return min(u, u - _P)


@njit(inline="always")
def _add(x, y):
    s = x + y
    return min(s, s - _P)


@njit(inline="always")
def _sub(x, y):
    s = x + _P - y
    return min(s, s - _P)


@njit(inline="always")
def _dit_run(lo, hi, w):
    for j in range(lo.shape[0]):
        u = lo[j]
        v = _mont(hi[j], np.uint64(w[j]))
        lo[j] = _add(u, v)
        hi[j] = _sub(u, v)


@njit(inline="always")
def _dif_run(lo, hi, w):
    for j in range(lo.shape[0]):
        u = lo[j]
        v = hi[j]
        lo[j] = _add(u, v)
        hi[j] = _mont(_sub(u, v), np.uint64(w[j]))


# --------------------------------------------------------------------------- twiddle tables


@njit(cache=True)
def _fill_twiddles(tw, w_top):
    """tw[h + j] = omega_{2h}^j (Montgomery form) for every power of two h < len(tw).

    w_top is omega_{len(tw)} in Montgomery form. The top level is 1024 sequential powers times
    per-segment constants (vectorizable); lower levels are strided copies, since
    omega_{2h}^j = omega_{4h}^{2j}.
    """
    half = tw.shape[0] // 2
    seg = min(half, 1024)
    tw[half] = _R
    for j in range(1, seg):
        tw[half + j] = _mont(np.uint64(tw[half + j - 1]), w_top)
    step = _mont(np.uint64(tw[half + seg - 1]), w_top)  # w^seg
    c = np.uint64(_R)
    for b in range(seg, half, seg):
        c = _mont(c, step)
        for j in range(seg):
            tw[half + b + j] = _mont(np.uint64(tw[half + j]), c)
    h = half // 2
    while h >= 1:
        for j in range(h):
            tw[h + j] = tw[2 * h + 2 * j]
        h //= 2
    tw[0] = 0


_TWIDDLES: dict[bool, np.ndarray] = {}


def _twiddles(n: int, inverse: bool) -> np.ndarray:
    """A uint32 Montgomery-form table valid for every size <= its length (>= n); cached, grown."""
    tw = _TWIDDLES.get(inverse)
    if tw is None or tw.shape[0] < n:
        size = max(n, _BLOCK)
        w = root_of_unity(size)
        if inverse:
            w = pow(w, P - 2, P)
        tw = np.empty(size, np.uint32)
        _fill_twiddles(tw, np.uint64(_to_mont(w)))
        _TWIDDLES[inverse] = tw
    return tw


@njit(cache=True)
def _doubling_table(out, scale, mults):
    """out[i] = scale * prod over set bits b of i of mults[b] (all Montgomery form)."""
    out[0] = scale
    span = 1
    b = 0
    while span < out.shape[0]:
        g = np.uint64(mults[b])
        for i in range(span):
            out[span + i] = _mont(np.uint64(out[i]), g)
        span *= 2
        b += 1


def _power_table(g: int, n: int, scale: int, bitrev: bool) -> np.ndarray:
    """uint32 Montgomery table of scale * g^i (or scale * g^rev(i) if bitrev), i < n."""
    log = n.bit_length() - 1
    mults = np.array([_to_mont(pow(g, 1 << (log - 1 - b if bitrev else b), P)) for b in range(log)]
                     + [0], np.uint32)  # the pad keeps the array non-empty (one type for numba)
    out = np.empty(n, np.uint32)
    _doubling_table(out, np.uint32(_to_mont(scale)), mults)
    return out


def _split_powers(g: int, n: int, scale: int, bitrev: bool) -> tuple[np.ndarray, np.ndarray]:
    """Two small tables (lo, hi) with scale * g^e(i) = lo[i % len(lo)] * hi[i // len(lo)], where
    e(i) = i, or rev(i) over log2(n) bits if bitrev: powers for n elements in O(sqrt n) memory."""
    lo_n = min(n, _BLOCK)
    hi_n = n // lo_n
    if bitrev:  # rev_n(hi * lo_n + lo) = rev(lo) * hi_n + rev(hi)
        return _power_table(pow(g, hi_n, P), lo_n, 1, True), _power_table(g, hi_n, scale, True)
    return _power_table(g, lo_n, 1, False), _power_table(pow(g, lo_n, P), hi_n, scale, False)


# --------------------------------------------------------------------------- transforms


@njit(cache=True)
def _dit_local(a, tw, h0):
    """DIT stages h = h0, 2 h0, ..., len(a)/2 of a; from h0 = 1 the first three are fused."""
    n = a.shape[0]
    h = h0
    if h == 1 and n >= 8:
        w4 = np.uint64(tw[3])
        w8 = np.uint64(tw[5])
        w83 = np.uint64(tw[7])
        b = a.reshape((n // 8, 8))
        for s in range(n // 8):
            x0, x1 = _add(b[s, 0], b[s, 1]), _sub(b[s, 0], b[s, 1])
            x2, x3 = _add(b[s, 2], b[s, 3]), _sub(b[s, 2], b[s, 3])
            x4, x5 = _add(b[s, 4], b[s, 5]), _sub(b[s, 4], b[s, 5])
            x6, x7 = _add(b[s, 6], b[s, 7]), _sub(b[s, 6], b[s, 7])
            x3 = _mont(x3, w4)
            x7 = _mont(x7, w4)
            x0, x2 = _add(x0, x2), _sub(x0, x2)
            x1, x3 = _add(x1, x3), _sub(x1, x3)
            x4, x6 = _add(x4, x6), _sub(x4, x6)
            x5, x7 = _add(x5, x7), _sub(x5, x7)
            x5 = _mont(x5, w8)
            x6 = _mont(x6, w4)
            x7 = _mont(x7, w83)
            b[s, 0], b[s, 4] = _add(x0, x4), _sub(x0, x4)
            b[s, 1], b[s, 5] = _add(x1, x5), _sub(x1, x5)
            b[s, 2], b[s, 6] = _add(x2, x6), _sub(x2, x6)
            b[s, 3], b[s, 7] = _add(x3, x7), _sub(x3, x7)
        h = 8
    while h < n:
        for s in range(0, n, 2 * h):
            _dit_run(a[s : s + h], a[s + h : s + 2 * h], tw[h : 2 * h])
        h *= 2


@njit(cache=True)
def _dif_local(a, tw):
    """All DIF stages of a: radix-2 stages down to h = 8, then the last three fused."""
    n = a.shape[0]
    h = n // 2
    while h >= 8:
        for s in range(0, n, 2 * h):
            _dif_run(a[s : s + h], a[s + h : s + 2 * h], tw[h : 2 * h])
        h //= 2
    if n >= 8:
        w4 = np.uint64(tw[3])
        w8 = np.uint64(tw[5])
        w83 = np.uint64(tw[7])
        b = a.reshape((n // 8, 8))
        for s in range(n // 8):
            x0, x4 = _add(b[s, 0], b[s, 4]), _sub(b[s, 0], b[s, 4])
            x1, x5 = _add(b[s, 1], b[s, 5]), _sub(b[s, 1], b[s, 5])
            x2, x6 = _add(b[s, 2], b[s, 6]), _sub(b[s, 2], b[s, 6])
            x3, x7 = _add(b[s, 3], b[s, 7]), _sub(b[s, 3], b[s, 7])
            x5 = _mont(x5, w8)
            x6 = _mont(x6, w4)
            x7 = _mont(x7, w83)
            x0, x2 = _add(x0, x2), _sub(x0, x2)
            x1, x3 = _add(x1, x3), _sub(x1, x3)
            x4, x6 = _add(x4, x6), _sub(x4, x6)
            x5, x7 = _add(x5, x7), _sub(x5, x7)
            x3 = _mont(x3, w4)
            x7 = _mont(x7, w4)
            b[s, 0], b[s, 1] = _add(x0, x1), _sub(x0, x1)
            b[s, 2], b[s, 3] = _add(x2, x3), _sub(x2, x3)
            b[s, 4], b[s, 5] = _add(x4, x5), _sub(x4, x5)
            b[s, 6], b[s, 7] = _add(x6, x7), _sub(x6, x7)
    else:
        while h >= 1:
            for s in range(0, n, 2 * h):
                _dif_run(a[s : s + h], a[s + h : s + 2 * h], tw[h : 2 * h])
            h //= 2


@njit(cache=True)
def _group(row, tw, top, k, b, j0, tile, dit):
    """k consecutive stages of one transform on one tile, in L1.

    The stages are h = top, top/2, ..., top/2^(k-1); in each block of 2*top elements they pair
    up T = 2^k rows at stride 2*top/T. The tile is block b's columns j0..j0+J of those rows,
    copied to `tile` (T * J elements). DIF runs the stages top-down, DIT bottom-up; the twiddle
    of row t, column j at stage h is tw[h + j + (t mod 2h/stride) * stride], contiguous in j.
    """
    T = 1 << k
    J = tile.shape[0] // T
    stride = 2 * top // T
    base = b * 2 * top + j0
    for t in range(T):
        tile[t * J : (t + 1) * J] = row[base + t * stride : base + t * stride + J]
    for step in range(k):
        s = k - 1 - step if dit else step
        ht = T >> (s + 1)  # pair distance in rows
        h = top >> s
        for t0 in range(0, T, 2 * ht):
            for i in range(ht):
                lo = (t0 + i) * J
                hi = lo + ht * J
                w0 = h + j0 + i * stride
                if dit:
                    _dit_run(tile[lo : lo + J], tile[hi : hi + J], tw[w0 : w0 + J])
                else:
                    _dif_run(tile[lo : lo + J], tile[hi : hi + J], tw[w0 : w0 + J])
    for t in range(T):
        row[base + t * stride : base + t * stride + J] = tile[t * J : (t + 1) * J]


@njit(cache=True, parallel=True)
def _group_passes(buf, tw, h_lo, h_hi, dit):
    """Stages h_lo <= h <= h_hi (h_lo >= _BLOCK) of every row, in passes of <= _GROUP stages:
    ascending for DIT, descending for DIF."""
    m, n = buf.shape
    stages = 0
    while (h_lo << stages) <= h_hi:
        stages += 1
    done = 0
    while done < stages:
        left = stages - done
        passes = (left + _GROUP - 1) // _GROUP
        k = (left + passes - 1) // passes
        if dit:
            top = h_lo << (done + k - 1)
        else:
            top = h_hi >> done
        T = 1 << k
        J = _BLOCK // T
        stride = 2 * top // T
        per_block = stride // J
        ntiles = n // _BLOCK
        for task in prange(m * ntiles):
            r = task // ntiles
            q = task - r * ntiles
            b = q // per_block
            tile = np.empty(_BLOCK, np.uint64)
            _group(buf[r], tw, top, k, b, (q - b * per_block) * J, tile, dit)
        done += k


@njit(cache=True, parallel=True)
def _local_dit_pass(buf, tw, h0):
    """_dit_local on every block of every row."""
    m, n = buf.shape
    blk = min(n, _BLOCK)
    nb = n // blk
    for t in prange(m * nb):
        r = t // nb
        b = t - r * nb
        _dit_local(buf[r, b * blk : (b + 1) * blk], tw, h0)


@njit(cache=True, parallel=True)
def _local_dif_pass(buf, tw):
    """_dif_local on every block of every row."""
    m, n = buf.shape
    blk = min(n, _BLOCK)
    nb = n // blk
    for t in prange(m * nb):
        r = t // nb
        b = t - r * nb
        _dif_local(buf[r, b * blk : (b + 1) * blk], tw)


def _dit_rows(buf: np.ndarray, tw: np.ndarray, h0: int = 1) -> None:
    """In-place DIT stages h = h0 .. n/2 of every row of buf (m, n). With h0 = 1 this maps
    bit-reversed input to natural-order output."""
    n = buf.shape[1]
    blk = min(n, _BLOCK)
    if h0 < blk:
        _local_dit_pass(buf, tw, h0)
    h_lo = max(h0, blk)
    if h_lo < n:
        _group_passes(buf, tw, h_lo, n // 2, True)


def _dif_rows(buf: np.ndarray, tw: np.ndarray) -> None:
    """In-place DIF of every row of buf (m, n): natural-order input, bit-reversed output."""
    n = buf.shape[1]
    if n > _BLOCK:
        _group_passes(buf, tw, _BLOCK, n // 2, False)
    _local_dif_pass(buf, tw)


@njit(inline="always")
def _bitrev(i, log):
    """i's lowest `log` bits reversed (log >= 1)."""
    x = np.uint64(i)
    x = ((x >> np.uint64(1)) & np.uint64(0x5555555555555555)) | ((x & np.uint64(0x5555555555555555)) << np.uint64(1))
    x = ((x >> np.uint64(2)) & np.uint64(0x3333333333333333)) | ((x & np.uint64(0x3333333333333333)) << np.uint64(2))
    x = ((x >> np.uint64(4)) & np.uint64(0x0F0F0F0F0F0F0F0F)) | ((x & np.uint64(0x0F0F0F0F0F0F0F0F)) << np.uint64(4))
    x = ((x >> np.uint64(8)) & np.uint64(0x00FF00FF00FF00FF)) | ((x & np.uint64(0x00FF00FF00FF00FF)) << np.uint64(8))
    x = ((x >> np.uint64(16)) & np.uint64(0x0000FFFF0000FFFF)) | ((x & np.uint64(0x0000FFFF0000FFFF)) << np.uint64(16))
    x = (x >> np.uint64(32)) | (x << np.uint64(32))
    return np.int64(x >> np.uint64(64 - log))


@njit(inline="always")
def _split_scale(x, i, lo, hi, lo_bits):
    """x * lo[i % len(lo)] * hi[i // len(lo)] (tables from _split_powers)."""
    s = _mont(np.uint64(lo[i & (lo.shape[0] - 1)]), np.uint64(hi[i >> lo_bits]))
    return _mont(x, s)


@njit(cache=True, parallel=True)
def _bitrev_inplace(buf, lo, hi, by_src):
    """In place, row by row: new[x] = old[rev(x)] * S(rev(x) if by_src else x), with S from the
    split power tables (lo, hi).

    Cache-blocked: index bits split as (a | b | c), a and c _QBITS wide; rev maps (a, b, c) to
    (rev c, rev b, rev a), so tiles b and rev(b) (2^_QBITS x 2^_QBITS elements each) trade
    places, read whole lines and written whole lines; one task reads both, then writes both.
    """
    m, n = buf.shape
    log = 0
    while (1 << log) < n:
        log += 1
    lo_bits = 0
    while (1 << lo_bits) < lo.shape[0]:
        lo_bits += 1
    if log < 2 * _QBITS:
        for r in prange(m):
            row = buf[r]
            for x in range(n):
                y = _bitrev(x, log) if log > 0 else 0
                if x < y:
                    vx = row[x]
                    row[x] = _split_scale(row[y], y if by_src else x, lo, hi, lo_bits)
                    row[y] = _split_scale(vx, x if by_src else y, lo, hi, lo_bits)
                elif x == y:
                    row[x] = _split_scale(row[x], x, lo, hi, lo_bits)
        return
    q = 1 << _QBITS
    mid = log - 2 * _QBITS
    top = log - _QBITS
    qrev = np.empty(q, np.int64)
    for a in range(q):
        qrev[a] = _bitrev(a, _QBITS)
    nt = 1 << mid
    for task in prange(m * nt):
        r = task // nt
        b = task - r * nt
        rb = _bitrev(b, mid) if mid > 0 else 0
        if rb < b:
            continue  # the pair was handled by task rb
        row = buf[r]
        tiles = np.empty((2, q, q), np.uint64)
        for side in range(2):
            bb = b if side == 0 else rb
            for a in range(q):
                base = (a << top) | (bb << _QBITS)
                for c in range(q):
                    tiles[side, a, c] = row[base | c]
        for side in range(2 if rb != b else 1):
            bb = b if side == 0 else rb  # source tile; its elements land in tile rev(bb)
            rbb = rb if side == 0 else b
            for c in range(q):
                xbase = (qrev[c] << top) | (rbb << _QBITS)
                for a in range(q):
                    y = (a << top) | (bb << _QBITS) | c
                    x = xbase | qrev[a]
                    row[x] = _split_scale(tiles[side, a, c], y if by_src else x, lo, hi, lo_bits)


@njit(cache=True, parallel=True)
def _spread(cbr, out, lo, hi):
    """out[r, k*B + u] = cbr[r, k] * S(k) for u < B = out_len / n: the first log B DIT stages
    of a size-(n*B) transform whose bit-reversed input is nonzero only on multiples of B."""
    m, n = cbr.shape
    nb = out.shape[1] // n
    lo_bits = 0
    while (1 << lo_bits) < lo.shape[0]:
        lo_bits += 1
    per = max(1, _BLOCK // nb)
    per = min(per, n)
    nt = n // per
    for task in prange(m * nt):
        r = task // nt
        k0 = (task - r * nt) * per
        for k in range(k0, k0 + per):
            v = _split_scale(cbr[r, k], k, lo, hi, lo_bits)
            for u in range(k * nb, (k + 1) * nb):
                out[r, u] = v


# --------------------------------------------------------------------------- public API


def _rows(x, writable: bool) -> tuple[np.ndarray, tuple[int, ...]]:
    """x as a C-contiguous uint64 (m, n) array and its leading shape; when `writable`, the
    array never shares memory with the caller's x."""
    a = np.asarray(x, dtype=np.uint64)
    if a.ndim == 0:
        raise ValueError("expected at least one axis")
    _check_size(a.shape[-1])
    lead = a.shape[:-1]
    rows = np.ascontiguousarray(a.reshape(-1, a.shape[-1]))
    if writable and isinstance(x, np.ndarray) and np.may_share_memory(rows, x):
        rows = rows.copy()
    return rows, lead


def _check_shift(shift: int) -> int:
    shift = int(shift) % P
    if shift == 0:
        raise ValueError("coset shift must be nonzero")
    return shift


def _evaluate_bitrev(cbr: np.ndarray, size: int, shift: int, scale: int) -> np.ndarray:
    """(m, size) evaluations on shift * <omega_size> of the polynomials whose coefficients,
    times 1/scale, are the rows of cbr (m, n) in bit-reversed order."""
    m, n = cbr.shape
    lo, hi = _split_powers(shift, n, scale, bitrev=True)
    out = np.empty((m, size), np.uint64)
    _spread(cbr, out, lo, hi)
    _dit_rows(out, _twiddles(size, False), size // n)
    return out


def ntt(coeffs: np.ndarray) -> np.ndarray:
    """Evaluations on <omega_n>: evals[i] = sum_j coeffs[j] * omega_n^(i*j), natural order."""
    a = np.asarray(coeffs, dtype=np.uint64)
    _check_size(a.shape[-1] if a.ndim else 0)
    return coset_ntt(a, a.shape[-1], 1)


def intt(evals: np.ndarray) -> np.ndarray:
    """Coefficients of the polynomial of degree < n taking `evals` on <omega_n> (inverse of ntt)."""
    return coset_intt(evals, 1)


def coset_ntt(coeffs: np.ndarray, size: int, shift: int) -> np.ndarray:
    """Evaluations of the polynomial (coefficients zero-padded to `size`) at shift * omega_size^i,
    i = 0..size-1, natural order. The last axis of coeffs may be any length <= size."""
    _check_size(size)
    shift = _check_shift(shift)
    a = np.asarray(coeffs, dtype=np.uint64)
    if a.ndim == 0:
        raise ValueError("expected at least one axis")
    k = a.shape[-1]
    if k > size:
        raise ValueError(f"{k} coefficients do not fit in size {size}")
    lead = a.shape[:-1]
    m = int(np.prod(lead, dtype=np.int64))
    n = 1 << max(k - 1, 0).bit_length()  # coefficients padded to a power of two
    rows = np.zeros((m, n), np.uint64)  # a fresh copy: every step below works in place
    rows[:, :k] = a.reshape(m, k)
    with one_thread_if_small(m * size, _SMALL):
        if n == size:  # plain transform: permute with the coset scaling, then all stages
            _bitrev_inplace(rows, *_split_powers(shift, n, 1, bitrev=False), True)
            _dit_rows(rows, _twiddles(n, False))
            out = rows
        else:
            _bitrev_inplace(rows, *_split_powers(1, n, 1, bitrev=False), True)
            out = _evaluate_bitrev(rows, size, shift, 1)
    return out.reshape(*lead, size)


def coset_intt(evals: np.ndarray, shift: int) -> np.ndarray:
    """Coefficients of the polynomial of degree < n taking `evals` at shift * omega_n^i."""
    shift = _check_shift(shift)
    buf, lead = _rows(evals, writable=True)
    n = buf.shape[1]
    lo, hi = _split_powers(pow(shift, P - 2, P), n, pow(n, P - 2, P), bitrev=False)
    with one_thread_if_small(buf.size, _SMALL):
        _dif_rows(buf, _twiddles(n, True))
        _bitrev_inplace(buf, lo, hi, False)
    return buf.reshape(*lead, n)


def lde(evals: np.ndarray, blowup: int, shift: int) -> np.ndarray:
    """Low-degree extension: given evaluations on <omega_n> (natural order), return the same
    polynomial's evaluations on shift * <omega_{n*blowup}>, natural order, shape (..., n*blowup)."""
    _check_size(blowup)
    shift = _check_shift(shift)
    buf, lead = _rows(evals, writable=True)
    n = buf.shape[1]
    _check_size(n * blowup)
    with one_thread_if_small(buf.size * blowup, _SMALL):
        _dif_rows(buf, _twiddles(n, True))  # n * coefficients, bit-reversed
        out = _evaluate_bitrev(buf, n * blowup, shift, pow(n, P - 2, P))
    return out.reshape(*lead, n * blowup)
