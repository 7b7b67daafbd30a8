"""The VM AIR witness: the main trace columns and the statement, built from a tracer trace.

Vectorized over the trace columns: per-row masks and register values, the slots' memory
argument (keys, previous timestamps, distance limbs), the memory table and the multiplicities
of every public-table lookup.
"""

from __future__ import annotations

import numpy as np

from circuits.field import P, inv
from circuits.wasm_vm import VmProgram, VmStatement
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.air import fp_limit, output_keys, public_init
from circuits.wasm_vm.columns import COL, NIBBLES, WIDTH, reg
from circuits.wasm_vm.isa import BITWISE, COMPARE, LOADS, MOVES, OP_IDS, PRODUCTS, SHIFTS, STORES
from memjit.errors import UnsupportedModule
from memjit.tracer import Trace
from memjit.wasm.opcodes import OP_NAMES

MIN_LOG_N = 6
_M32 = np.uint64(0xFFFFFFFF)


class _Rows:
    """Per-row masks and values of a trace, in the AIR's terms (registers, slots)."""

    def __init__(self, tr: Trace) -> None:
        prog, self.steps = tr.program, tr.steps
        self.op = tr.op.astype(np.int64)
        self.sel = {name: self.op == oid for name, oid in OP_IDS.items()}
        self.pc, self.fp = tr.pc.astype(np.uint64), tr.fp.astype(np.uint64)
        self.depth, self.sp = tr.depth.astype(np.uint64), tr.sp.astype(np.uint64)
        self.a1, self.a2, self.a3 = (x[tr.pc].astype(np.uint64) for x in (prog.arg1, prog.arg2, prog.arg3))
        self.sh = prog.sh[tr.pc].astype(np.uint64)
        self.imm = prog.imm[tr.pc].view(np.uint64)
        self.binary = self.any(*COMPARE, "i32.add", "i32.sub", *BITWISE, *PRODUCTS)
        self.loads, self.stores = self.any(*LOADS), self.any(*STORES)
        self.branch, self.xfer = self.any("br_if", "br_eqz"), self.any("br", "return")
        self.keep = self.a3.astype(bool)
        self.ret_live = self.sel["return"] & (self.depth != 0)

    def any(self, *names: str) -> np.ndarray:
        return np.logical_or.reduce([self.sel[n] for n in names])

    def register_values(self, tr: Trace) -> dict[str, np.ndarray]:
        """X, Y, Q, R as 64-bit values (frame records: ret_pc | fp << 32) and the taken flag."""
        a, b, c, res = tr.a, tr.b, tr.c, tr.res
        rows = np.arange(self.steps)
        any_, sel = self.any, self.sel
        x = np.where(any_("local.get", "global.get") | self.xfer, res, 0)
        x = np.where(any_("local.set", "local.tee", "global.set", "i32.eqz") | self.branch
                     | self.loads, a, x)
        x = np.where(self.binary | self.stores, b, x)
        x = np.where(sel["select"], c, x)
        x = np.where(self.xfer & ~self.keep, 0, x).astype(np.uint64)
        nz = (x & _M32) != 0
        self.taken = (sel["br_if"] & nz) | (sel["br_eqz"] & ~nz)
        y = np.where(self.binary | self.stores, a, 0)
        y = np.where(self.loads, tr.mem_value[:, 1], y)
        y = np.where(sel["select"], b, y)
        y = np.where(self.taken & self.keep, res, y)
        y = np.where(self.ret_live, tr.mem_value[:, 2], y).astype(np.uint64)  # frame record
        wslot = np.argmax(tr.mem_write, axis=1)  # the row's (first) write
        written = tr.mem_write[rows, wslot] == 1
        q = np.where(written, tr.mem_prev[rows, wslot], 0).astype(np.uint64)
        r = np.where(written, tr.mem_value[rows, wslot], 0)
        r = np.where(self.binary | sel["i32.eqz"] | sel["select"], res, r)
        r = np.where(sel["call"], self.pc + 1 | (self.fp << np.uint64(32)), r).astype(np.uint64)
        return {"X": x, "Y": y, "Q": q, "R": r}

    def slots(self) -> tuple[np.ndarray, np.ndarray]:
        """Keys (3, steps) and activity (3, steps) of the memory slots, as the AIR constrains."""
        any_, sel, sp, fp, imm = self.any, self.sel, self.sp, self.fp, self.imm
        keep = self.keep
        mem = self.loads | self.stores
        pop1 = any_("local.set", "local.tee", "global.set", "select", "i32.eqz") | self.branch \
            | self.binary | mem
        act0 = pop1 | any_("local.get", "global.get") | (self.xfer & keep)
        k0 = np.where(pop1 | self.xfer, sp - 1, 0)
        k0 = np.where(sel["local.get"], fp + imm, k0)
        k0 = np.where(sel["global.get"], T.GLOBAL + imm, k0)
        act1 = self.binary | sel["select"] | self.ret_live | (self.taken & keep) | mem
        k1 = np.where(self.binary | sel["select"] | self.branch | self.stores, sp - 2, 0)
        k1 = np.where(self.loads, T.MEMORY + self.word, k1)
        k1 = np.where(sel["return"], T.FRAME + self.depth, k1)
        act2 = self.binary | any_("i32.eqz", "i32.const", "select", "call", *MOVES) | mem \
            | (self.xfer & keep) | (self.taken & keep)
        k2 = np.zeros(self.steps, np.uint64)
        for mask, key in ((self.binary, sp - 2), (sel["i32.eqz"] | self.loads, sp - 1),
                          (self.stores, T.MEMORY + self.word),
                          (any_("i32.const", "local.get", "global.get"), sp),
                          (any_("local.set", "local.tee"), fp + imm),
                          (sel["global.set"], T.GLOBAL + imm), (sel["select"], sp - 3),
                          (self.xfer, sp - 1 - self.a2), (self.branch, sp - 2 - self.a2),
                          (sel["call"], T.FRAME + self.depth + 1)):
            k2 = np.where(mask, key, k2)
        return np.stack([k0, k1, k2]).astype(np.uint64), np.stack([act0, act1, act2])

    def addresses(self, tr: Trace) -> None:
        """Word index and byte offset of loads/stores (refusing accesses the AIR lacks)."""
        mem = self.loads | self.stores
        ea = tr.a + self.imm
        self.word = np.where(mem, ea >> np.uint64(2), 0).astype(np.uint64)
        self.off = np.where(mem, ea & np.uint64(3), 0).astype(np.uint64)
        width = np.where(self.any("i32.load", "i32.store"), 4,
                         np.where(self.any("i32.load16_s", "i32.load16_u", "i32.store16"), 2, 1))
        bad = np.flatnonzero(mem & (self.off % width.astype(np.uint64) != 0))
        if len(bad):
            raise UnsupportedModule(f"unaligned {OP_NAMES[self.op[bad[0]]]} at pc "
                                    f"{tr.pc[bad[0]]} is not provable yet")


def _limbs(values: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """(rows, 8) register limbs: nibbles, or (low, high) 32-bit halves for frame records."""
    out = T.nibbles(values & _M32)
    out[frame] = 0
    out[frame, 0] = values[frame] & _M32
    out[frame, 1] = values[frame] >> np.uint64(32)
    return out


def _split12(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(v).astype(np.uint64)
    return v & np.uint64(4095), v >> np.uint64(12)


def _products(sel: dict, a: np.ndarray, b: np.ndarray) -> dict:
    """Witness of the product engine: multiplier bytes, chunk carries, low word, fneg."""
    n = len(a)
    shr = sel["i32.shr_u"] | sel["i32.shr_s"]
    shift = sel["i32.shl"] | shr
    fneg = sel["i32.shr_s"] & (a >> np.uint64(31)).astype(bool)
    y = np.where(fneg, a ^ _M32, a)
    nb = T.nibbles(b)
    u = np.zeros((n, 5), np.uint64)
    u[:, :4] = np.where(sel["i32.mul"][:, None], nb[:, 0::2] + 16 * nb[:, 1::2], 0)
    u = np.where(shift[:, None], T.pow_bytes(shr.astype(np.uint64), b & np.uint64(31)), u)
    yb = (y[:, None] >> (8 * np.arange(4, dtype=np.uint64))) & np.uint64(255)
    conv = np.zeros((n, 8), np.uint64)
    for i in range(4):
        for j in range(5):
            conv[:, i + j] += yb[:, i] * u[:, j]
    chunk = conv[:, 0::2] + 256 * conv[:, 1::2]
    carry = np.zeros((n, 3), np.uint64)
    words = np.zeros((n, 4), np.uint64)
    c = np.zeros(n, np.uint64)
    for k in range(4):
        t = chunk[:, k] + c
        words[:, k] = t & np.uint64(0xFFFF)
        c = t >> np.uint64(16)
        if k < 3:
            carry[:, k] = c
    carry[~(sel["i32.mul"] | shift)] = 0
    return {"u": u, "carry": carry, "low": words[:, 0] | (words[:, 1] << np.uint64(16)),
            "fneg": fneg}


def _memory_argument(keys: np.ndarray, acts: np.ndarray, vals: np.ndarray) -> dict:
    """Previous timestamps of every slot access and the final (value, ts) of every key."""
    steps = keys.shape[1]
    ts = 3 * np.arange(steps, dtype=np.uint64)[None] + 1 + np.arange(3, dtype=np.uint64)[:, None]
    flat = np.flatnonzero(acts.T.ravel())  # accesses in timestamp order (row-major: t, slot)
    fkey, fts = keys.T.ravel()[flat], ts.T.ravel()[flat]
    order = np.lexsort((fts, fkey))
    skey, sts = fkey[order], fts[order]
    first = np.ones(len(order), bool)
    first[1:] = skey[1:] != skey[:-1]
    last = np.ones(len(order), bool)
    last[:-1] = first[1:]
    prev = (ts - 1).T.ravel().copy()  # inactive slots: distance limbs 0
    prev[flat[order]] = np.where(first, 0, np.roll(sts, 1))
    final_vals = vals.transpose(1, 0, 2).reshape(-1, NIBBLES)[flat[order]][last]
    return {"ts": ts, "prev": prev.reshape(steps, 3).T, "keys": skey[last], "fin_ts": sts[last],
            "fin_vals": final_vals}


def _memory_table(vm: VmProgram, args: tuple[int, ...], input_bytes: bytes, out_keys: np.ndarray,
                  acc: dict) -> dict:
    """Keys (increasing: accessed, public, output, stack slot 0, end sentinel), flags, finals,
    limbs."""
    pub_keys, pub_vals = public_init(vm, args, input_bytes)
    end = T.MEMORY + vm.mem_pages * 16384
    keys = np.unique(np.concatenate([acc["keys"], pub_keys, out_keys, [T.STACK, end]])
                     .astype(np.uint64))
    fin = np.zeros((len(keys), NIBBLES), np.uint64)
    fin[np.searchsorted(keys, pub_keys)] = T.nibbles(pub_vals)
    fts = np.zeros(len(keys), np.uint64)
    pos = np.searchsorted(keys, acc["keys"])
    fin[pos], fts[pos] = acc["fin_vals"], acc["fin_ts"]
    gaps = np.append(np.diff(keys) - np.uint64(1), np.uint64(0))
    return {"mkey": keys, "mpub": np.isin(keys, pub_keys), "mout": np.isin(keys, out_keys),
            "mfin": fin, "mts": fts,
            "key_limbs": _split12(keys), "gap_limbs": _split12(gaps)}


def _output(vm: VmProgram, tr: Trace, output_len: int) -> tuple[int, np.ndarray]:
    """The output buffer's offset in its first word and the final words covering the output."""
    if not output_len:
        return 0, np.zeros(0, np.uint64)
    lo, hi = vm.output_addr // 4, -(-(vm.output_addr + output_len) // 4)
    words = tr.final_memory[4 * lo:4 * hi].view("<u4").astype(np.uint64)
    return vm.output_addr % 4, words


def witness(tr: Trace, vm: VmProgram, input_bytes: bytes = b"",
            output_len: int = 0) -> tuple[np.ndarray, VmStatement]:
    """The main trace (WIDTH, n) of a call (returned, or trapped at ``unreachable``) and its
    statement; ``input_bytes`` is the input the trace was run on, ``output_len`` the number
    of output bytes to bind."""
    rows_ = _Rows(tr)
    steps, sel = tr.steps, rows_.sel
    rows_.addresses(tr)
    val = rows_.register_values(tr)
    cmp, shr = rows_.any(*COMPARE), rows_.any("i32.shr_u", "i32.shr_s")
    prod = _products(sel, tr.a & _M32, tr.b & _M32)
    call = sel["call"]  # the carry columns hold the new frame's distance to the fp limit
    room = np.uint64(fp_limit(vm)) - (rows_.fp + rows_.sh - rows_.a2)
    prod["carry"][call, 0], prod["carry"][call, 1] = (x[call] for x in _split12(room))
    val["Z"] = np.where(cmp, (tr.a - tr.b) & _M32, np.where(shr, prod["low"], val["R"]))
    frame_qr = sel["call"]
    regs = {"X": _limbs(val["X"], np.zeros(steps, bool)), "Y": _limbs(val["Y"], rows_.ret_live),
            **{r: _limbs(val[r], frame_qr) for r in ("Q", "R", "Z")}}
    keys, acts = rows_.slots()
    acc = _memory_argument(keys, acts, np.stack([regs["X"], regs["Y"], regs["R"]]))
    args = tuple(int(x) & 0xFFFFFFFF for x in tr.args)
    out_offset, out_words = _output(vm, tr, output_len)
    table = _memory_table(vm, args, input_bytes, output_keys(vm, len(out_words)), acc)
    M = len(table["mkey"])
    n = 1 << max(MIN_LOG_N, int(steps).bit_length(), int(M).bit_length())

    m = np.zeros((WIDTH, n), dtype=np.uint64)
    cpu = slice(0, steps)

    def put(name: str, v) -> None:
        m[COL[name], cpu] = np.asarray(v, dtype=np.uint64) % np.uint64(P)

    m[COL["clk"]] = np.arange(n, dtype=np.uint64)
    m[COL["s_pad"], steps:] = 1
    imm = rows_.imm
    for name, v in (("pc", rows_.pc), ("fp", rows_.fp), ("depth", rows_.depth),
                    ("imm_lo", imm & np.uint64(0xFFFF)), ("a1", rows_.a1), ("a2", rows_.a2),
                    ("imm_hi", (imm >> np.uint64(16)) & np.uint64(0xFFFF)), ("a3", rows_.a3),
                    ("sh", rows_.sh), ("dinv", inv(rows_.depth)), ("npc", np.append(rows_.pc[1:], 0)),
                    ("w", rows_.word), ("o0", rows_.off & np.uint64(1)), ("o1", rows_.off >> np.uint64(1)),
                    ("fneg", prod["fneg"])):
        put(name, v)
    for name, s in sel.items():
        put("s_" + name, s)
    for r, limbs in regs.items():
        m[reg(r), cpu] = limbs.T
    put("xinv", inv(regs["X"].sum(axis=1).astype(np.uint64)))
    put("zinv", inv(regs["Z"].sum(axis=1).astype(np.uint64)))
    sx, sy = regs["X"][:, 7] >> np.uint64(3), regs["Y"][:, 7] >> np.uint64(3)
    put("sx", sx)
    put("sy", sy)
    # carries: add (y + x = r), sub (r + x = y), comparisons (z + x = y)
    u = np.where(sel["i32.add"], val["Y"], np.where(sel["i32.sub"], val["R"], val["Z"])) & _M32
    w = val["X"] & _M32
    adder = sel["i32.add"] | sel["i32.sub"] | cmp
    put("c0", np.where(adder, ((u & np.uint64(0xFFFF)) + (w & np.uint64(0xFFFF))) >> np.uint64(16), 0))
    put("c1", np.where(adder, (u + w) >> np.uint64(32), 0))
    for j in range(5):
        put(f"u{j}", prod["u"][:, j])
    for k in range(3):
        put(f"cm{k}", prod["carry"][:, k])
    # sub-word loads: the selected byte's / halfword's top nibble and its sign
    ynib, off = regs["Y"], rows_.off.astype(np.int64)
    hn = np.where(rows_.any("i32.load8_s", "i32.load8_u"), ynib[np.arange(steps), 2 * off + 1], 0)
    hn = np.where(rows_.any("i32.load16_s", "i32.load16_u"),
                  ynib[np.arange(steps), np.where(off >= 2, 7, 3)], hn).astype(np.uint64)
    put("hn", hn)
    put("sb", hn >> np.uint64(3))
    # memory slots; padding rows get inactive slots with consistent timestamps
    dist = acc["ts"] - acc["prev"] - np.uint64(1)
    for k in range(3):
        put(f"k{k}", keys[k])
        put(f"act{k}", acts[k])
        put(f"p{k}", acc["prev"][k])
        lo, hi = _split12(dist[k])
        put(f"tl{k}", lo)
        put(f"th{k}", hi)
        m[COL[f"p{k}"], steps:] = 3 * np.arange(steps, n, dtype=np.uint64) + k
    # memory table
    mt = slice(0, M)
    m[COL["mact"], mt] = 1
    for name in ("mkey", "mpub", "mout", "mts"):
        m[COL[name], mt] = table[name]
    m[reg("mfin"), mt] = table["mfin"].T % np.uint64(P)
    (m[COL["mk0"], mt], m[COL["mk1"], mt]), (m[COL["mg0"], mt], m[COL["mg1"], mt]) = \
        table["key_limbs"], table["gap_limbs"]

    # multiplicities of the public tables
    L = len(vm.rom)
    idx = [rows_.pc.astype(np.int64)]
    tag = np.select([sel["i32.and"], sel["i32.or"], sel["i32.xor"]],
                    [T.AND_BASE, T.OR_BASE, T.XOR_BASE], T.R3_BASE)
    nib = {r: regs[r].astype(np.int64) for r in ("X", "Y", "Z", "R")}
    z_weight = np.where(tag == T.R3_BASE, 256, 0)
    triple_rows = ~rows_.any("call", "return")
    for i in range(NIBBLES):
        idx.append((L + tag + nib["X"][:, i] + 16 * nib["Y"][:, i] + z_weight * nib["Z"][:, i])
                   [triple_rows])
    rn = np.concatenate([nib["R"], np.zeros((steps, 1), np.int64)], axis=1)
    for j in (0, 3, 6):
        idx.append((L + T.R3_BASE + rn[:, j] + 16 * rn[:, j + 1] + 256 * rn[:, j + 2])[shr])
    kind = shr.astype(np.int64)
    idx.append((L + T.POW_BASE + 256 * kind + nib["X"][:, 0] + 16 * nib["X"][:, 1])
               [rows_.any(*SHIFTS)])
    u12 = [m[COL[f"{p}{k}"], cpu][acts[k]] for k in range(3) for p in ("tl", "th")]
    u12 += [512 * (regs["Y"][:, 7] - 8 * sy), 512 * (regs["X"][:, 7] - 8 * sx),
            512 * (hn - 8 * (hn >> np.uint64(3))), *table["key_limbs"], *table["gap_limbs"]]
    u12 += [prod["carry"][:, k] for k in range(3)]
    idx += [L + T.U12_BASE + np.asarray(v, dtype=np.int64) for v in u12]
    counts = np.bincount(np.concatenate(idx), minlength=L + T.N_FIXED)
    used = np.flatnonzero(counts)
    result = None if not tr.results else int(tr.results[0]) & 0xFFFFFFFF
    st = VmStatement(vm.digest(), tr.export, args, result, steps, n.bit_length() - 1,
                     used.astype(np.uint64), counts[used].astype(np.uint64), tr.trap,
                     bytes(input_bytes), output_len, out_offset, out_words)
    return m, st


