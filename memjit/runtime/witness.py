"""The VM AIR witness: the main trace columns and the statement, built from a tracer trace.

Vectorized over the trace columns: per-row masks and register values, the slots' memory
argument (keys, previous timestamps, distance limbs), the product engine and the division,
the br_table / call_indirect entries, the memory table and the multiplicities of every
public-table lookup.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from circuits.field import P, inv
from circuits.wasm_vm import VmProgram, VmStatement
from circuits.wasm_vm import tables as T
from circuits.wasm_vm.air import fp_limit, output_keys, public_init
from circuits.wasm_vm.columns import COL, NIBBLES, WIDTH, reg
from circuits.wasm_vm.control import BINARY
from circuits.wasm_vm.isa import ACCESS_BYTES, BIT_COUNTS, CALL_TRAPS, COMPARE, COUNTS, \
    DIV_TRAPS, DIVIDE, DOT_TRAPS, DOTS, EXTENDS, LOAD_TRAPS, LOADS, LOW_WORD_IN_Z, MOVES, \
    OP_IDS, POW_USERS, PRODUCT, R_CHECKED, STORE_TRAPS, STORES, TRAP_ROWS
from circuits.wasm_vm.logup import POW_KIND
from circuits.wasm_vm.tensor import TENSOR_WIDTH, uses_tensor
from memjit.errors import UnsupportedModule
from memjit.runtime.tensor_witness import fill as fill_tensor, memory_reads, tensor_calls
from memjit.runtime.tracer import Trace
from memjit.runtime.wasm.opcodes import OP_NAMES
from memjit.runtime.wasm.program import convert_args

MIN_LOG_N = 6
_M32 = np.uint64(0xFFFFFFFF)
_U16 = np.uint64(0xFFFF)
_TRAP_ROW = {(OP_IDS[op], trap): s for s, (op, trap) in TRAP_ROWS.items()}


class _Rows:
    """Per-row masks and values of a trace, in the AIR's terms (registers, slots)."""

    def __init__(self, tr: Trace, max_pages: int) -> None:
        prog, self.steps = tr.program, tr.steps
        self.max_pages = np.uint64(max_pages)
        self.op = tr.op.astype(np.int64)
        self.sel = {name: self.op == oid for name, oid in OP_IDS.items()}
        self.sel.update({s: np.zeros(self.steps, bool) for s in TRAP_ROWS})
        trap_row = _TRAP_ROW.get((int(self.op[-1]), tr.trap)) if self.steps else None
        if trap_row is not None:  # the last row proves the trap instead of running its op
            self.sel[trap_row][-1], self.sel[OP_NAMES[self.op[-1]]][-1] = True, False
        self.pc, self.fp = tr.pc.astype(np.uint64), tr.fp.astype(np.uint64)
        self.depth, self.sp = tr.depth.astype(np.uint64), tr.sp.astype(np.uint64)
        self.a1, self.a2, self.a3 = (x[tr.pc].astype(np.uint64) for x in (prog.arg1, prog.arg2, prog.arg3))
        self.sh = prog.sh[tr.pc].astype(np.uint64)
        self.imm = prog.imm[tr.pc].view(np.uint64)
        self.binary = self.any(*BINARY)
        self.divide, self.div_trap = self.any(*DIVIDE), self.any(*DIV_TRAPS)
        self.counts, self.extends = self.any(*BIT_COUNTS), self.any(*EXTENDS)
        self.loads, self.stores = self.any(*LOADS), self.any(*STORES)
        self.load_trap, self.store_trap = self.any(*LOAD_TRAPS), self.any(*STORE_TRAPS)
        self.branch, self.xfer = self.any("br_if", "br_eqz"), self.any("br", "return")
        self.keep = self.a3.astype(bool)
        self.dots, self.dot_trap = self.any(*DOTS), self.any(*DOT_TRAPS)
        self.ret_live = self.sel["return"] & (self.depth != 0)
        self.entries(tr)

    def any(self, *names: str) -> np.ndarray:
        return np.logical_or.reduce([self.sel[n] for n in names])

    def entries(self, tr: Trace) -> None:
        """The ROM entry that br_table / call_indirect rows look up (-1 elsewhere) and the
        looked-up fields u0..u4 (the entry's imm halves, drop / nparams, keep / type, sh)."""
        prog, a = tr.program, tr.a & _M32
        brt = self.sel["br_table"]
        ci = self.any("call_indirect", "call_indirect/null", "call_indirect/type")
        self.looked_up = brt | ci
        self.dflt = brt & (a >= self.imm)
        e = np.where(brt, self.pc + 1 + np.minimum(a, self.imm), self.a1 + a)
        e = np.where(self.looked_up, e, 0).astype(np.int64)
        self.entry = e
        eimm = prog.imm[e].view(np.uint64)
        etype = prog.arg3[e]
        u = np.stack([eimm & _U16, (eimm >> np.uint64(16)) & _U16, prog.arg2[e].astype(np.uint64),
                      np.where(etype < 0, P + etype, etype).astype(np.uint64),
                      prog.sh[e].astype(np.uint64)], axis=1)
        self.entry_u = np.where(self.looked_up[:, None], u, 0).astype(np.uint64)
        self.entry_target = prog.arg1[e].astype(np.uint64)
        self.ekeep = brt & (prog.arg3[e] != 0)
        self.edrop = np.where(brt, prog.arg2[e], 0).astype(np.uint64)

    def register_values(self, tr: Trace) -> dict[str, np.ndarray]:
        """X, Y, Q, R as 64-bit values (frame records: ret_pc | fp << 32) and the taken flag;
        division rows get X = |q| later (see _division)."""
        a, b, c, res = tr.a, tr.b, tr.c, tr.res
        rows = np.arange(self.steps)
        any_, sel = self.any, self.sel
        x = np.where(any_("local.get", "global.get") | self.xfer | self.counts, res, 0)
        x = np.where(any_("local.set", "local.tee", "global.set", "i32.eqz", "assert_eqz",
                          "memory.grow", "br_table", "call_indirect", *CALL_TRAPS) | self.branch
                     | self.loads
                     | self.extends | self.load_trap, a, x)
        x = np.where(self.binary | self.stores | self.div_trap | self.store_trap, b, x)
        x = np.where(sel["select"] | self.dots | self.dot_trap, c, x)
        x = np.where(sel["i32.popcnt"], _nibble_popcounts(a), x)
        x = np.where(self.xfer & ~self.keep, 0, x).astype(np.uint64)
        nz = (x & _M32) != 0
        self.taken = (sel["br_if"] & nz) | (sel["br_eqz"] & ~nz)
        y = np.where(self.binary | self.stores | self.div_trap | self.counts | self.store_trap,
                     a, 0)
        y = np.where(self.divide, b, y)
        y = np.where(sel["memory.grow"], self.max_pages - tr.pages, y)
        y = np.where(self.loads, tr.mem_value[:, 1], y)
        y = np.where(sel["select"] | self.dots | self.dot_trap, b, y)
        y = np.where((self.taken & self.keep) | self.ekeep, res, y)
        y = np.where(self.ret_live, tr.mem_value[:, 2], y).astype(np.uint64)  # frame record
        wslot = np.argmax(tr.mem_write, axis=1)  # the row's (first) write
        written = tr.mem_write[rows, wslot] == 1
        q = np.where(written, tr.mem_prev[rows, wslot], 0)
        q = np.where(self.dot_trap, a, q).astype(np.uint64)  # a, written back unchanged
        r = np.where(written, tr.mem_value[rows, wslot], 0)
        r = np.where(self.dot_trap, a, r)
        r = np.where(self.binary | self.divide | sel["i32.eqz"] | sel["select"], res, r)
        r = np.where(any_("call", "call_indirect"), self.pc + 1 | (self.fp << np.uint64(32)), r)
        return {"X": x, "Y": y, "Q": q, "R": r.astype(np.uint64)}

    def slots(self) -> tuple[np.ndarray, np.ndarray]:
        """Keys (3, steps) and activity (3, steps) of the memory slots, as the AIR constrains."""
        any_, sel, sp, fp, imm = self.any, self.sel, self.sp, self.fp, self.imm
        keep = self.keep
        mem = self.loads | self.stores
        pop1 = any_("local.set", "local.tee", "global.set", "select", "i32.eqz", "assert_eqz",
                    "memory.grow",
                    "br_table", "call_indirect", *CALL_TRAPS) | self.branch | self.binary | mem \
            | self.extends | self.div_trap | self.load_trap | self.store_trap | self.dots \
            | self.dot_trap
        act0 = pop1 | any_("local.get", "global.get") | (self.xfer & keep)
        k0 = np.where(pop1 | self.xfer, sp - 1, 0)
        k0 = np.where(sel["local.get"], fp + imm, k0)
        k0 = np.where(sel["global.get"], T.GLOBAL + imm, k0)
        act1 = self.binary | sel["select"] | self.ret_live | (self.taken & keep) | mem \
            | self.divide | self.counts | self.div_trap | self.ekeep | self.store_trap | self.dots \
            | self.dot_trap
        k1 = np.where(self.binary | any_("select", "br_table") | self.branch | self.stores
                      | self.div_trap | self.store_trap | self.dots | self.dot_trap, sp - 2, 0)
        k1 = np.where(self.divide | self.counts, sp - 1, k1)
        k1 = np.where(self.loads, T.MEMORY + self.word, k1)
        k1 = np.where(sel["return"], T.FRAME + self.depth, k1)
        act2 = self.binary | self.divide | self.counts | self.extends | mem \
            | any_("i32.eqz", "i32.const", "advice", "memory.size", "memory.grow", "select",
                   "call", *DOTS, *DOT_TRAPS,
                   "call_indirect", *MOVES) | (self.xfer & keep) | (self.taken & keep) | self.ekeep
        k2 = np.zeros(self.steps, np.uint64)
        for mask, key in ((self.binary | self.divide, sp - 2),
                          (any_("i32.eqz", "memory.grow") | self.counts | self.extends
                           | self.loads, sp - 1),
                          (self.stores, T.MEMORY + self.word),
                          (any_("i32.const", "advice", "memory.size", "local.get", "global.get"),
                           sp),
                          (any_("local.set", "local.tee"), fp + imm),
                          (sel["global.set"], T.GLOBAL + imm),
                          (sel["select"] | self.dots | self.dot_trap, sp - 3),
                          (self.xfer, sp - 1 - self.a2), (self.branch, sp - 2 - self.a2),
                          (sel["br_table"], sp - 2 - self.edrop),
                          (any_("call", "call_indirect"), T.FRAME + self.depth + 1)):
            k2 = np.where(mask, key, k2)
        return np.stack([k0, k1, k2]).astype(np.uint64), np.stack([act0, act1, act2])

    def addresses(self, tr: Trace) -> None:
        """Word index and byte offset of loads/stores (refusing accesses the AIR lacks), and
        the high halves of address and offset summed (cm2 of in-bounds accesses)."""
        mem = self.loads | self.stores
        address = tr.a & _M32
        ea = address + self.imm
        self.high = np.where(mem, (address >> np.uint64(16)) + (self.imm >> np.uint64(16)), 0)
        self.word = np.where(mem, ea >> np.uint64(2), 0).astype(np.uint64)
        self.off = np.where(mem, ea & np.uint64(3), 0).astype(np.uint64)
        width = np.where(self.any("i32.load", "i32.store"), 4,
                         np.where(self.any("i32.load16_s", "i32.load16_u", "i32.store16"), 2, 1))
        bad = np.flatnonzero(mem & (self.off % width.astype(np.uint64) != 0))
        if len(bad):  # under-aligned hints are byte accesses after lowering (wasm.access)
            t = bad[0]
            raise UnsupportedModule(
                f"this call is not provable: {OP_NAMES[self.op[t]]} at pc {tr.pc[t]} accesses "
                f"the unaligned address {int(ea[t])} though its alignment hint is natural (the "
                f"VM proves unaligned accesses where the module's hint says so, e.g. align=1)")


def _limbs(values: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """(rows, 8) register limbs: nibbles, or (low, high) 32-bit halves for frame records."""
    out = T.nibbles(values & _M32)
    out[frame] = 0
    out[frame, 0] = values[frame] & _M32
    out[frame, 1] = values[frame] >> np.uint64(32)
    return out


def _nibble_popcounts(v: np.ndarray) -> np.ndarray:
    """Each nibble of a 32-bit v replaced by its popcount (popcnt's X register)."""
    ones = np.zeros(len(v), np.uint64)
    for bit in range(4):
        ones += (v >> np.uint64(bit)) & np.uint64(0x11111111)
    return ones


def _split12(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(v).astype(np.uint64)
    return v & np.uint64(4095), v >> np.uint64(12)


def _bytes(v: np.ndarray, n: int) -> np.ndarray:
    """(rows, n) little-endian bytes of v."""
    return (v[:, None] >> (8 * np.arange(n, dtype=np.uint64))) & np.uint64(255)


def _division(rows: _Rows, a: np.ndarray, b: np.ndarray) -> dict:
    """Magnitudes of div/rem rows (a, b as 32-bit patterns): |a| = |q| |b| + |r|, the slack
    |b| - 1 - |r|, the flips (fneg: b negative, fa: a negative) and the result's sign."""
    sel = rows.sel
    signed = sel["i32.div_s"] | sel["i32.rem_s"]
    fa = rows.divide & signed & (a >> np.uint64(31)).astype(bool)
    fb = rows.divide & signed & (b >> np.uint64(31)).astype(bool)
    bit32 = np.uint64(1 << 32)
    am = np.where(fa, bit32 - a, a)
    bm = np.where(fb, bit32 - b, b)
    bm = np.where(rows.divide, bm, 1)
    qm, rm = am // bm, am % bm
    sign = np.where(sel["i32.div_s"], fa ^ fb, fa)
    mag = np.where(sel["i32.div_s"] | sel["i32.div_u"], qm, rm)
    return {"fa": fa, "fb": fb, "am": am, "qm": np.where(rows.divide, qm, 0),
            "rm": np.where(rows.divide, rm, 0), "slack": np.where(rows.divide, bm - 1 - rm, 0),
            "e0": sign & ((mag & _U16) != 0), "e1": sign & (mag != 0)}


def _engine(rows: _Rows, a: np.ndarray, b: np.ndarray, res: np.ndarray, div: dict) -> dict:
    """The product engine's witness: Y' * U with U from X's bytes (mul: b, div/rem: |q|) or
    the POW table; its multiplier bytes, 12-bit chunk carries, low word and fneg."""
    sel, n = rows.sel, rows.steps
    fneg = (sel["i32.shr_s"] & (a >> np.uint64(31)).astype(bool)) | div["fb"]
    y = np.where(rows.divide, b, a)
    y = np.where(fneg, y ^ _M32, y)
    kind = np.zeros(n, np.int64)
    for name, k in POW_KIND.items():
        kind[sel[name]] = k
    pow_users = rows.any(*POW_USERS)
    v = np.where(rows.any(*COUNTS), res, b & np.uint64(255))
    u = np.zeros((n, 5), np.uint64)
    by_b = sel["i32.mul"] | sel["i32.mulhu"]
    u[:, :4] = np.where(by_b[:, None], _bytes(b, 4),
                        np.where(rows.divide[:, None], _bytes(div["qm"], 4), 0))
    u = np.where(pow_users[:, None], T.pow_bytes(kind, v), u)
    yb = _bytes(y, 4)
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
        words[:, k] = t & _U16
        c = t >> np.uint64(16)
        if k < 3:
            carry[:, k] = c
    carry[~(by_b | pow_users)] = 0
    # div/rem: chunk0 + fneg lo|q| + lo|r| = lo(F(a)) + fa + 2^16 (cm0 - 1); cm1 = 0
    fa = div["fa"].astype(np.uint64)
    flip_a = np.where(div["fa"], a ^ _M32, a)
    t0 = (chunk[:, 0] + fneg * (div["qm"] & _U16) + (div["rm"] & _U16)).astype(np.int64)
    cm0 = (t0 - ((flip_a & _U16) + fa).astype(np.int64)) // 65536 + 1
    carry[rows.divide, 0] = cm0[rows.divide]
    carry[rows.divide, 1] = 0
    carry[rows.divide, 2] = div["slack"][rows.divide] >> np.uint64(24)
    return {"u": u, "carry": carry, "low": words[:, 0] | (words[:, 1] << np.uint64(16)),
            "fneg": fneg, "v": np.where(rows.any(*PRODUCT)[:, None], yb, 0)}


def _slack_carries(rows: _Rows, b: np.ndarray, div: dict) -> tuple[np.ndarray, np.ndarray]:
    """Carries of |r| + slack + 1 = F(b) + fneg in 12-bit chunks (div/rem rows)."""
    fb = np.where(div["fb"], b ^ _M32, b).astype(np.int64)
    rm, slack = div["rm"].astype(np.int64), div["slack"].astype(np.int64)
    k0 = ((rm & 4095) + (slack & 4095) + 1 - (fb & 4095) - div["fb"]) // 4096
    k1 = (((rm >> 12) & 4095) + ((slack >> 12) & 4095) + k0 - ((fb >> 12) & 4095)) // 4096
    return np.where(rows.divide, k0, 0), np.where(rows.divide, k1, 0)


def _cap_room(vm: VmProgram, pages: np.ndarray, grown: np.ndarray) -> np.ndarray:
    """memory.grow rows: the new page count's distance below the VK's cap."""
    return np.uint64(vm.end_pages) - pages - grown


def _past_end(rows: _Rows, address: np.ndarray,
              pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-bounds trap rows: the distance address + offset + bytes - 1 - 65536 pages of the
    access's last byte past the memory's end (32 bits; its carries above them) and the
    carries (cm0, cm1) of its two 16-bit halves."""
    last = np.zeros(rows.steps, np.uint64)
    for t in (*LOAD_TRAPS, *STORE_TRAPS):
        last[rows.sel[t]] = ACCESS_BYTES[TRAP_ROWS[t][0]] - 1
    imm = rows.imm & _M32
    low = (address & _U16) + (imm & _U16) + last
    high = (address >> np.uint64(16)) + (imm >> np.uint64(16)) + (low >> np.uint64(16))
    high = np.where(rows.load_trap | rows.store_trap, high - pages, 0)  # >= 0 on trap rows
    distance = (low & _U16) | ((high & _U16) << np.uint64(16))
    return distance, np.stack([low >> np.uint64(16), high >> np.uint64(16)], axis=1)


def _memory_argument(keys: np.ndarray, acts: np.ndarray, vals: np.ndarray,
                     reads: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict:
    """Previous timestamps of every slot access and the final (value, ts) of every key;
    ``reads`` are further reads (keys, timestamps, nibbles: the tensor table's), whose
    previous timestamps are ``read_prev``."""
    steps = keys.shape[1]
    ts = 3 * np.arange(steps, dtype=np.uint64)[None] + 1 + np.arange(3, dtype=np.uint64)[:, None]
    flat = np.flatnonzero(acts.T.ravel())  # accesses in timestamp order (row-major: t, slot)
    fkey, fts = keys.T.ravel()[flat], ts.T.ravel()[flat]
    fvals = vals.transpose(1, 0, 2).reshape(-1, NIBBLES)[flat]
    if reads is not None:
        fkey, fts = np.concatenate([fkey, reads[0]]), np.concatenate([fts, reads[1]])
        fvals = np.concatenate([fvals, reads[2]])
    order = np.lexsort((fts, fkey))
    skey, sts = fkey[order], fts[order]
    first = np.ones(len(order), bool)
    first[1:] = skey[1:] != skey[:-1]
    last = np.ones(len(order), bool)
    last[:-1] = first[1:]
    prev_all = np.empty(len(order), np.uint64)
    prev_all[order] = np.where(first, 0, np.roll(sts, 1))
    prev = (ts - 1).T.ravel().copy()  # inactive slots: distance limbs 0
    prev[flat] = prev_all[:len(flat)]
    return {"ts": ts, "prev": prev.reshape(steps, 3).T, "keys": skey[last], "fin_ts": sts[last],
            "fin_vals": fvals[order][last], "read_prev": prev_all[len(flat):]}


def _memory_table(vm: VmProgram, pub_keys: np.ndarray, pub_limbs: np.ndarray,
                  out_keys: np.ndarray, acc: dict) -> dict:
    """Keys (increasing: accessed, public, output, stack slot 0, memory word 0, end sentinel),
    flags, finals, limbs. Word 0 splits the span from the globals to the sentinel, so that
    every gap stays below 2^24."""
    end = T.MEMORY + vm.end_pages * T.PAGE_WORDS
    keys = np.unique(np.concatenate([acc["keys"], pub_keys, out_keys, [T.STACK, T.MEMORY, end]])
                     .astype(np.uint64))
    fin = np.zeros((len(keys), NIBBLES), np.uint64)
    fin[np.searchsorted(keys, pub_keys)] = pub_limbs
    fts = np.zeros(len(keys), np.uint64)
    pos = np.searchsorted(keys, acc["keys"])
    fin[pos], fts[pos] = acc["fin_vals"], acc["fin_ts"]
    gaps = np.append(np.diff(keys) - np.uint64(1), np.uint64(0))
    return {"mkey": keys, "mpub": np.isin(keys, pub_keys), "mout": np.isin(keys, out_keys),
            "mfin": fin, "mts": fts,
            "key_limbs": (*_split12(keys & np.uint64(T.LIMB ** 2 - 1)), keys >> np.uint64(24)),
            "gap_limbs": _split12(gaps)}


def _output(vm: VmProgram, tr: Trace, output_len: int) -> tuple[int, np.ndarray]:
    """The output buffer's offset in its first word and the final words covering the output."""
    if not output_len:
        return 0, np.zeros(0, np.uint64)
    lo, hi = vm.output_addr // 4, -(-(vm.output_addr + output_len) // 4)
    words = tr.final_memory[4 * lo:4 * hi].view("<u4").astype(np.uint64)
    return vm.output_addr % 4, words


def _operand_past_end(rows: _Rows, a: np.ndarray, b: np.ndarray, n: np.ndarray,
                      pages: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precompile calls' trap rows (circuits.wasm_vm.tensor.trap_constraints): which operand
    leaves the memory (1: b, when a fits), its last byte's distance op + n - 1 - 65536 pages
    past the end (32 bits) and the carries (cm0, cm1) of the distance's halves."""
    use_b = rows.dot_trap & (a + n <= pages * np.uint64(65536))
    op = np.where(use_b, b, a)
    low = (op & _U16) + (n & _U16) + _U16
    high = (op >> np.uint64(16)) + (n >> np.uint64(16)) + (low >> np.uint64(16))
    high = np.where(rows.dot_trap, high - np.uint64(1) - pages, 0)  # >= 0 on trap rows
    distance = (low & _U16) | ((high & _U16) << np.uint64(16))
    return distance, np.stack([low >> np.uint64(16), high >> np.uint64(16)], axis=1), use_b


def _operands_inside(rows: _Rows, a: np.ndarray, b: np.ndarray, n: np.ndarray,
                     pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precompile calls' rows (circuits.wasm_vm.tensor.cpu_constraints): the words left in
    memory after each operand, (65536 pages - a - n) / 4 and (65536 pages - b - n) / 4."""
    size = pages * np.uint64(65536)
    room = [np.where(rows.dots & (x + n <= size), (size - x - n) >> np.uint64(2), 0)
            for x in (a, b)]
    return room[0].astype(np.uint64), room[1].astype(np.uint64)


def witness(tr: Trace, vm: VmProgram, input_bytes: bytes = b"", output_len: int = 0,
            public_memory: Callable[[np.ndarray], tuple] | None = None
            ) -> tuple[np.ndarray, VmStatement]:
    """The main trace (WIDTH, n) of a call (returned, or trapped with a provable trap) and its
    statement; ``input_bytes`` is the input the trace was run on, ``output_len`` the number
    of output bytes to bind. A segment of a run (memjit.runtime.segments) gives
    ``public_memory``: from the keys it accesses, its public keys, their limbs, and the keys
    whose final values it binds. Long on purpose: it fills the column families in the order their
    values depend on each other, over whole columns, sharing the row masks between them."""
    rows_ = _Rows(tr, vm.max_pages)
    steps, sel = tr.steps, rows_.sel
    rows_.addresses(tr)
    val = rows_.register_values(tr)
    cmp, divide = rows_.any(*COMPARE), rows_.divide
    a, b = tr.a & _M32, tr.b & _M32
    div = _division(rows_, np.where(divide, a, 0), np.where(divide, b, 0))
    prod = _engine(rows_, a, b, tr.res & _M32, div)
    val["X"] = np.where(divide, div["qm"], val["X"])
    calls = rows_.any("call", "call_indirect")  # carry columns: the new frame's room below
    popped = np.where(sel["call"], rows_.a2, rows_.entry_u[:, 2] + 1)  # the fp limit
    room = np.uint64(fp_limit(vm)) - (rows_.fp + rows_.sh - popped)
    prod["carry"][calls, 0], prod["carry"][calls, 1] = (x[calls] for x in _split12(room))
    mem = rows_.loads | rows_.stores  # and the accessed word's distance below the page count
    below = tr.pages.astype(np.uint64) * np.uint64(T.PAGE_WORDS) - np.uint64(1) - rows_.word
    prod["carry"][mem, 0], prod["carry"][mem, 1] = (x[mem] for x in _split12(below))
    prod["carry"][mem, 2] = rows_.high[mem]
    grow = sel["memory.grow"]
    grown = np.where(a <= val["Y"], a, 0)
    room = _cap_room(vm, tr.pages.astype(np.uint64), grown)
    prod["carry"][grow, 0], prod["carry"][grow, 1] = (x[grow] for x in _split12(room))
    oob = rows_.load_trap | rows_.store_trap
    past_end, carries = _past_end(rows_, a, tr.pages.astype(np.uint64))
    prod["carry"][oob, :2] = carries[oob]
    dot_trap, dots = rows_.dot_trap, rows_.dots
    operand_past, carries, use_b = _operand_past_end(rows_, a, b, tr.c & _M32,
                                                     tr.pages.astype(np.uint64))
    prod["carry"][dot_trap, :2] = carries[dot_trap]
    inside = _operands_inside(rows_, a, b, tr.c & _M32, tr.pages.astype(np.uint64))
    prod["carry"][dots, 0], prod["carry"][dots, 1] = (x[dots] for x in _split12(inside[0]))
    z = np.where(cmp, (a - b) & _M32, val["R"])
    z = np.where(sel["memory.grow"], (val["Y"] - a) & _M32, z)
    z = np.where(oob, past_end, z)
    z = np.where(dot_trap, operand_past, z)
    z = np.where(rows_.any(*LOW_WORD_IN_Z), prod["low"], z)
    z = np.where(divide, div["rm"], z)
    z = np.where(rows_.looked_up, 0, z)
    z = np.where(rows_.dflt, (a - rows_.imm) & _M32, z)
    val["Z"] = np.where(sel["call_indirect/bounds"], (a - rows_.a2) & _M32, z)
    regs = {"X": _limbs(val["X"], np.zeros(steps, bool)), "Y": _limbs(val["Y"], rows_.ret_live),
            **{r: _limbs(val[r], calls) for r in ("Q", "R", "Z")}}
    keys, acts = rows_.slots()
    tensor = uses_tensor(vm.rom)
    dot_calls = tensor_calls(tr) if tensor else None
    acc = _memory_argument(keys, acts, np.stack([regs["X"], regs["Y"], regs["R"]]),
                           memory_reads(dot_calls) if tensor else None)
    st = run_statement(tr, vm, input_bytes, output_len)
    if public_memory is None:
        pub_keys, pub_vals = public_init(vm, st.args, input_bytes)
        public = pub_keys, T.nibbles(pub_vals), output_keys(vm, len(st.output_words))
    else:
        public = public_memory(acc["keys"])
    table = _memory_table(vm, *public, acc)
    M = len(table["mkey"])
    table_rows = len(dot_calls["clk"]) if tensor else 0
    n = 1 << max(MIN_LOG_N, int(steps).bit_length(), int(M).bit_length(),
                 int(table_rows).bit_length())

    m = np.zeros((WIDTH + (TENSOR_WIDTH if tensor else 0), n), dtype=np.uint64)
    cpu = slice(0, steps)

    def put(name: str, v) -> None:  # integers of either sign (64-bit two's complement)
        m[COL[name], cpu] = T.to_field(np.asarray(v).astype(np.uint64))

    m[COL["clk"]] = np.arange(n, dtype=np.uint64)
    m[COL["s_pad"], steps:] = 1
    imm = rows_.imm
    for name, v in (("pc", rows_.pc), ("fp", rows_.fp), ("depth", rows_.depth), ("pages", tr.pages),
                    ("imm_lo", imm & np.uint64(0xFFFF)), ("a1", rows_.a1), ("a2", rows_.a2),
                    ("imm_hi", (imm >> np.uint64(16)) & np.uint64(0xFFFF)), ("a3", rows_.a3),
                    ("sh", rows_.sh), ("dinv", inv(rows_.depth)),
                    ("npc", np.where(rows_.looked_up, rows_.entry_target,
                                     np.append(rows_.pc[1:], 0))),
                    ("w", np.where(rows_.looked_up, rows_.entry,  # memory.grow: pages grown
                                   np.where(grow, grown, rows_.word))),
                    ("o0", np.where(divide, div["e0"], np.where(dot_trap, use_b,
                                                                 rows_.off & np.uint64(1)))),
                    ("o1", np.where(divide, div["e1"], rows_.off >> np.uint64(1))),
                    ("fneg", prod["fneg"])):
        put(name, v)
    for name, s in sel.items():
        put("s_" + name, s)
    for r, limbs in regs.items():
        m[reg(r), cpu] = limbs.T
    put("xinv", inv(regs["X"].sum(axis=1).astype(np.uint64)))
    m[COL["xz"]], m[COL["dz"]] = 1, 1  # padding rows: X = 0, depth 0
    put("xz", regs["X"].sum(axis=1) == 0)
    put("dz", rows_.depth == 0)
    for i in range(4):
        put(f"v{i}", prod["v"][:, i])
    put("zinv", inv(regs["Z"].sum(axis=1).astype(np.uint64)))
    sx, sy = regs["X"][:, 7] >> np.uint64(3), regs["Y"][:, 7] >> np.uint64(3)
    put("sx", sx)
    put("sy", sy)
    # carries: add (y + x = r), sub (r + x = y), comparisons (z + x = y)
    u = np.where(sel["i32.add"], val["Y"], np.where(sel["i32.sub"], val["R"], val["Z"])) & _M32
    w = val["X"] & _M32
    adder = sel["i32.add"] | sel["i32.sub"] | cmp | sel["memory.grow"]
    c0 = np.where(adder, ((u & _U16) + (w & _U16)) >> np.uint64(16), 0)
    c1 = np.where(adder, (u + w) >> np.uint64(32), 0)
    k0, k1 = _slack_carries(rows_, b, div)
    c0, c1 = np.where(divide, k0, c0), np.where(divide, k1, c1)
    # br_table's default (index - n = Z) and call_indirect's bound (index - size = Z) borrows
    bound = np.where(rows_.dflt, rows_.imm & _U16, np.where(sel["call_indirect/bounds"],
                                                             rows_.a2, 0))
    borrow = ((val["Z"] & _U16) + bound - (a & _U16)) >> np.uint64(16)
    put("c0", np.where(rows_.dflt | sel["call_indirect/bounds"], borrow, c0))
    put("c1", np.where(rows_.dflt, 1, c1))
    u_cols = np.where(rows_.looked_up[:, None], rows_.entry_u, prod["u"])
    for j in range(5):
        put(f"u{j}", u_cols[:, j])
    slack = np.where(dots, inside[1], div["slack"])  # division's bound, b's room in memory
    put("d0", slack & np.uint64(4095))
    put("d1", np.where(rows_.any("i32.load8_s", "i32.load8_u", "i32.store8"), rows_.off == 3,
                       (slack >> np.uint64(12)) & np.uint64(4095)))
    mismatch = sel["call_indirect/type"]  # inverse of (type - expected) (type + 1)
    if mismatch.any():
        t = rows_.entry_u[mismatch, 3].astype(object)
        gap = [int(x) for x in (t - rows_.imm[mismatch].astype(object) % P) * (t + 1) % P]
        m[COL["d1"], np.flatnonzero(mismatch)] = gap
        m[COL["d0"], np.flatnonzero(mismatch)] = inv(np.array(gap, np.uint64))
    for k in range(3):
        put(f"cm{k}", prod["carry"][:, k])
    # sub-word loads: the selected byte's / halfword's top nibble and its sign
    ynib, off = regs["Y"], rows_.off.astype(np.int64)
    hn = np.where(rows_.any("i32.load8_s", "i32.load8_u"), ynib[np.arange(steps), 2 * off + 1], 0)
    hn = np.where(rows_.any("i32.load16_s", "i32.load16_u"),
                  ynib[np.arange(steps), np.where(off >= 2, 7, 3)], hn)
    # pinned top nibbles: of the extended operand, clz's low word, the dividend
    hn = np.where(sel["i32.extend8_s"], regs["X"][:, 1], hn)
    hn = np.where(sel["i32.extend16_s"], regs["X"][:, 3], hn)
    hn = np.where(sel["i32.clz"], regs["Z"][:, 7], hn)
    hn = np.where(divide, regs["Q"][:, 7], hn)
    hn = np.where(rows_.dots, regs["R"][:, 7], hn).astype(np.uint64)  # the result's sign
    put("hn", hn)
    put("sb", hn >> np.uint64(3))
    signed_cmp = rows_.any("i32.lt_s", "i32.gt_s", "i32.le_s", "i32.ge_s")
    put("sg", np.where(signed_cmp, sx ^ sy, np.where(sel["i32.div_s"], (hn >> np.uint64(3)) ^ sy, 0)))
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
    (m[COL["mk0"], mt], m[COL["mk1"], mt], m[COL["mk2"], mt]), \
        (m[COL["mg0"], mt], m[COL["mg1"], mt]) = table["key_limbs"], table["gap_limbs"]

    # multiplicities of the public tables
    L = len(vm.rom)
    idx = [rows_.pc.astype(np.int64), rows_.entry[rows_.looked_up]]
    tag = np.select([sel["i32.and"], sel["i32.or"], sel["i32.xor"]],
                    [T.AND_BASE, T.OR_BASE, T.XOR_BASE], T.R3_BASE)
    nib = {r: regs[r].astype(np.int64) for r in ("X", "Y", "Z", "R")}
    z_weight = np.where(tag == T.R3_BASE, 256, 0)
    triple_rows = ~rows_.any("call", "return")
    popc = sel["i32.popcnt"]
    for i in range(NIBBLES):
        x, y, z = nib["X"][:, i], nib["Y"][:, i], nib["Z"][:, i]
        t = np.where(popc, T.POPC_BASE + y + 16 * z, tag + x + 16 * y + z_weight * z)
        idx.append((L + t)[triple_rows])
    rn = np.concatenate([nib["R"], np.zeros((steps, 1), np.int64)], axis=1)
    for j in (0, 3, 6):
        idx.append((L + T.R3_BASE + rn[:, j] + 16 * rn[:, j + 1] + 256 * rn[:, j + 2])
                   [rows_.any(*R_CHECKED)])
    kind = np.zeros(steps, np.int64)
    for name, k in POW_KIND.items():
        kind[sel[name]] = k
    pow_rows = rows_.any(*POW_USERS)
    idx.append((L + T.POW_BASE + T.pow_index(kind, nib["X"][:, 0] + 16 * nib["X"][:, 1]))
               [pow_rows])
    u12 = [m[COL[f"{p}{k}"], cpu][acts[k]] for k in range(3) for p in ("tl", "th")]
    u12 += [512 * (regs["Y"][:, 7] - 8 * sy), 512 * (regs["X"][:, 7] - 8 * sx),
            512 * (hn - 8 * (hn >> np.uint64(3))), *table["key_limbs"][:2], *table["gap_limbs"]]
    u12 += [prod["carry"][:, k] for k in range(3)]
    u12 += [m[COL[d], cpu][divide | dots] for d in ("d0", "d1")]
    u12 = [np.asarray(v, dtype=np.uint64) for v in u12]  # a value past 12 bits has no entry
    idx += [L + T.U12_BASE + v[v < T.LIMB].astype(np.int64) for v in u12]
    if tensor:  # the result's sign pin, the table's lookups
        r7 = regs["R"][rows_.dots, 7].astype(np.int64)
        idx.append(L + T.U12_BASE + 1024 * (r7 - 12 * (r7 >> 3)))
        idx += [L + i for i in fill_tensor(m, dot_calls, acc["read_prev"])]
    counts = np.bincount(np.concatenate(idx), minlength=L + T.N_FIXED)
    used = np.flatnonzero(counts)
    return m, replace(st, log_n=n.bit_length() - 1, mult_index=used.astype(np.uint64),
                      mult_count=counts[used].astype(np.uint64))


def run_statement(tr: Trace, vm: VmProgram, input_bytes: bytes = b"",
                  output_len: int = 0) -> VmStatement:
    """What the traced call did (export, argument words, outcome, steps, input, output words),
    without a trace length or multiplicities: the statement of a segmented claim."""
    sig = tr.program.signature(tr.export)
    args = tuple(int(x) for x in convert_args(sig, tr.export, tr.args))  # slot words
    out_offset, out_words = _output(vm, tr, output_len)
    wide = sig.results == ("i64",)
    result = None if not tr.results else int(tr.results[0]) & ((1 << (32 << wide)) - 1)
    none = np.zeros(0, np.uint64)
    return VmStatement(vm.digest(), tr.export, args, result, tr.steps, 0, none, none, tr.trap,
                       bytes(input_bytes), output_len, out_offset, out_words, wide)


