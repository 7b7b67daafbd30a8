"""The instrumented runtime: execute a lowered program and record its execution trace.

The interpreter is one numba ``@njit`` loop over the program's struct-of-arrays ROM. A call
runs it twice: a counting run (every step overwrites row 0; it also settles faults such as
running out of fuel without allocating anything), then a recording run into columns of exactly
that many rows. Semantics are WebAssembly's, with the sandbox's operator limits: fuel exactly
as wasmtime counts it (:func:`memjit.runtime.wasm.opcodes.wasm_fuel`), the memory cap, and a
call-depth limit standing in for wasmtime's native stack.

Trace columns (row ``t`` = the ``t``-th executed instruction, state *before* it)::

    pc, op, imm             ROM row executed (op/imm copied from the ROM)
    sp, fp, depth, pages    value-stack pointer, frame pointer, call depth, memory pages
    a, b, c, res            operands and result: 32-bit words (the ROM is i32-only: the lowering
                            expands i64 instructions into i32 rows, memjit.runtime.wasm.int64)
    mem_space[t, k]         access slot k = 0..4: 0 unused, 1 stack, 2 global, 3 memory,
    mem_addr[t, k]          4 frame; address = stack slot, global index, 32-bit word index
    mem_value[t, k]         (byte address >> 2) or call depth; value read or written
    mem_prev[t, k]          value before the access (= value for reads)
    mem_write[t, k]         1 for a write

Operands and slots per instruction (``s`` = sp before; slot timestamps ``t * 5 + k``)::

    const, memory.size   res                     0: W s
    local.get i          res                     0: R fp+i        1: W s
    local.set/tee i      a                       0: R s-1         1: W fp+i
    global.get i         res                     0: R g[i]        1: W s
    global.set i         a                       0: R s-1         1: W g[i]
    unary, memory.grow   a -> res                0: R s-1         1: W s-1
    binary               a, b -> res             0: R s-1 (b)     1: R s-2 (a)     2: W s-2
    select               a, b, c -> res          0: R s-1 (c)     1: R s-2 (b)     2: R s-3 (a)
                                                 3: W s-3
    load                 a (address) -> res      0: R s-1         1-3: R words     4: W s-1
    store                a (address), b (value)  0: R s-1 (b)     1: R s-2 (a)     2-4: words
                                                 (mem_prev = word before, value = after)
    br                   res (kept value)        if keep: 0: R s-1        1: W s-1-drop
    br_if, br_eqz        a (condition), res      0: R s-1; if taken and keep: 1: R s-2,
    br_table             a (index), res                                       2: W s-2-drop
    return               res (kept value)        if keep: 0: R s-1        1: W s-1-drop;
                                                 unless depth 0: 2: R frame[depth]
    call                 -                       0: W frame[depth+1] = return pc | fp << 32
    call_indirect        a (table index)         0: R s-1         1: W frame[depth+1]
    advice (lowering)    res (the prover's word) 0: W s
    assert_eqz (lowering) a (must be 0)          0: R s-1
    memjit.dot_*         a, b, c (n) -> res      0: R s-1 (n)     1: R s-2 (b)     2: R s-3 (a)
                         (precompile)            3: W s-3; the operand bytes are the AIR's
                                                 tensor table's reads, not slots

A trapping instruction is the last row (its reads recorded, no writes); ``trap`` names it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numba
import numpy as np

from memjit.errors import BadInput, InternalError, MemoryCapExceeded, OutOfFuel, Trap, \
    WorkerFault
from memjit.runtime.sandbox import TRAP_CODES, Limits, RunResult
from memjit.runtime.sandbox import run as run_wasmtime
from memjit.runtime.tensor_io import input_placement
from memjit.runtime.wasm import Program, load
from memjit.runtime.wasm.opcodes import ADVICE, BR, BR_EQZ, BR_IF, BR_TABLE, CALL, CALL_INDIRECT, \
    DOT_I8I8, GLOBAL_GET, GLOBAL_SET, I32_BIN_BASE, I32_CONST, I32_MULHU, LOAD_BASE, LOAD_OPS, \
    LOCAL_GET, LOCAL_SET, LOCAL_TEE, MEMORY_GROW, MEMORY_SIZE, NOP, OP_NAMES, RETURN, SELECT, \
    STORE_BASE, STORE_OPS, UNARY_BASE, UNREACHABLE
from memjit.runtime.wasm.program import PAGE, convert_args, typed_results

NSLOTS = 5
SPACE_NONE, SPACE_STACK, SPACE_GLOBAL, SPACE_MEMORY, SPACE_FRAME = range(5)
SPACE_NAMES = ("none", "stack", "global", "memory", "frame")
MAX_DEPTH = 1 << 16
"""Call-depth limit (wasmtime's 512 KiB native stack always overflows first)."""
STACK_SLOTS = 1 << 22
"""Value-stack size in 32-bit slots; a call whose frame would not fit is a stack overflow."""
DEFAULT_MAX_STEPS = 1 << 24
"""Trace length limit (171 bytes per recorded row): a longer run raises TraceTooLong."""

COLUMNS = ("pc", "op", "imm", "sp", "fp", "depth", "pages", "a", "b", "c", "res",
           "mem_space", "mem_addr", "mem_value", "mem_prev", "mem_write")
"""Names of the trace columns, in :meth:`Trace.save` order."""

# kernel status codes and trap numbers (trap k > 0 is TRAP_CODES[k - 1])
_DONE, _TOO_LONG, _TRAP, _OUT_OF_FUEL, _MEMORY_CAP = range(5)
(_T_UNREACHABLE, _T_DIV0, _T_OVERFLOW, _T_OOB, _T_SIG, _T_TABLE, _T_NULL,
 _T_STACK) = range(1, 9)
assert TRAP_CODES[_T_STACK - 1] == "stack_overflow" and TRAP_CODES[_T_DIV0 - 1] == \
    "integer_divide_by_zero"

# register indices of the kernel's state vector
_PC, _FP, _DEPTH, _PAGES, _FUEL, _T, _TRAPCODE = range(7)  # _T: steps executed

_LOAD_WIDTH = np.array([w for _, w, _, _ in LOAD_OPS], dtype=np.int64)
_LOAD_SIGNED = np.array([s for _, _, s, _ in LOAD_OPS], dtype=np.uint8)
_STORE_WIDTH = np.array([w for _, w, _ in STORE_OPS], dtype=np.int64)

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_M8 = np.uint64(0xFF)
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_I32_MIN = np.uint64(0x80000000)

_jit = numba.njit(cache=True, error_model="numpy")
_K_MULHU = I32_MULHU - I32_BIN_BASE


class TraceTooLong(WorkerFault):
    """The run needs more trace rows than the tracer's ``max_steps``."""


class TraceMismatch(InternalError):
    """The tracer and wasmtime disagree on a run: a bug in memjit, never the user's fault."""


# --- integer semantics ----------------------------------------------------------------------


@_jit
def _s32(x: np.uint64) -> np.int64:
    """The signed value of a zero-extended i32."""
    v = np.int64(x)
    return v - np.int64(0x100000000) if x >= _I32_MIN else v


@_jit
def _popcnt(x: np.uint64) -> np.uint64:
    x = x - ((x >> _U1) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@_jit
def _clz64(x: np.uint64) -> np.uint64:
    if x == _U0:
        return np.uint64(64)
    n = _U0
    step = np.uint64(32)
    while step > _U0:
        if (x >> (np.uint64(64) - step)) == _U0:
            n += step
            x = x << step
        step = step >> _U1
    return n


@_jit
def _ctz64(x: np.uint64) -> np.uint64:
    if x == _U0:
        return np.uint64(64)
    return _popcnt((x & (_U0 - x)) - _U1)


@_jit
def _sext(x: np.uint64, bits: np.uint64) -> np.uint64:
    """Sign-extend the low ``bits`` of x to 64 bits."""
    s = np.uint64(64) - bits
    return np.uint64(np.int64(x << s) >> np.int64(s))


@_jit
def _divrem_s(a: np.int64, b: np.int64, rem: bool) -> np.uint64:
    """Truncating signed division or remainder, as 64-bit two's complement bits (b != 0, no
    overflow case)."""
    ua = np.uint64(a) if a >= 0 else _U0 - np.uint64(a)
    ub = np.uint64(b) if b >= 0 else _U0 - np.uint64(b)
    if rem:
        r = ua % ub
        return _U0 - r if a < 0 else r
    q = ua // ub
    return _U0 - q if (a < 0) != (b < 0) else q


@_jit
def _binary(k: np.int64, a: np.uint64, b: np.uint64) -> tuple:
    """i32 binary op ``k`` (opcodes.BINARY order) on zero-extended words.

    Returns (result bits, trap number or 0).
    """
    sa, sb, sm = _s32(a), _s32(b), np.uint64(31)
    if k == 10:
        return (a + b) & _M32, 0
    if k == 11:
        return (a - b) & _M32, 0
    if k == 17:
        return a & b, 0
    if k == 18:
        return a | b, 0
    if k == 19:
        return a ^ b, 0
    if k == 20:
        return (a << (b & sm)) & _M32, 0
    if k == 22:
        return a >> (b & sm), 0
    if k == 21:
        return np.uint64(sa >> np.int64(b & sm)) & _M32, 0
    if k == 12:
        return (a * b) & _M32, 0
    if k == _K_MULHU:
        return (a * b) >> _S32, 0
    if k < 10:
        if k == 0:
            r = a == b
        elif k == 1:
            r = a != b
        elif k == 2:
            r = sa < sb
        elif k == 3:
            r = a < b
        elif k == 4:
            r = sa > sb
        elif k == 5:
            r = a > b
        elif k == 6:
            r = sa <= sb
        elif k == 7:
            r = a <= b
        elif k == 8:
            r = sa >= sb
        else:
            r = a >= b
        return _U1 if r else _U0, 0
    if k == 23 or k == 24:
        s = b & sm
        if k == 24:
            s = (_S32 - s) & sm
        if s == _U0:
            return a, 0
        return ((a << s) | (a >> (_S32 - s))) & _M32, 0
    # division and remainder (k = 13..16)
    if b == _U0:
        return _U0, _T_DIV0
    if k == 14:
        return a // b, 0
    if k == 16:
        return a % b, 0
    if k == 13 and a == _I32_MIN and b == _M32:
        return _U0, _T_OVERFLOW
    return _divrem_s(sa, sb, k == 15) & _M32, 0


@_jit
def _dot(mem, a: np.int64, b: np.int64, n: np.int64, b_signed: bool) -> np.uint64:
    """The precompile dot_i8i8 (b_signed) or dot_i8u8 on linear memory (uint32 words), as a
    zero-extended i32 (the sum wraps)."""
    raw = mem.view(np.uint8)
    total = np.int64(0)
    for i in range(n):
        x = np.int64(raw[a + i])
        y = np.int64(raw[b + i])
        x = x - 256 if x >= 128 else x
        if b_signed and y >= 128:
            y = y - 256
        total += x * y
    return np.uint64(total) & _M32


@_jit
def _advice(stack, at: np.int64, kind: np.int64) -> np.uint64:
    """The advice word ``kind`` (opcodes.ADVICE_KINDS) of the unsigned division of the i64 in
    stack slots (at, at + 1) by the i64 in (at + 2, at + 3); 0 for a zero divisor."""
    n = stack[at] | (stack[at + 1] << _S32)
    d = stack[at + 2] | (stack[at + 3] << _S32)
    if d == _U0:
        return _U0
    v = n // d if kind < 2 else n % d
    return (v >> _S32) if kind & 1 else (v & _M32)


@_jit
def _unary(k: np.int64, a: np.uint64) -> np.uint64:
    """i32 unary op ``k`` (opcodes.UNARY_OPS order; the lowering leaves no i64 op) on a
    zero-extended word."""
    if k == 0:
        return _U1 if a == _U0 else _U0
    if k == 2:
        return _clz64(a) - _S32
    if k == 3:
        return _S32 if a == _U0 else _ctz64(a)
    if k == 4:
        return _popcnt(a)
    if k == 11:
        return _sext(a, np.uint64(8)) & _M32
    return _sext(a, np.uint64(16)) & _M32


# --- the interpreter ------------------------------------------------------------------------


@_jit
def _run(op, imm, arg1, arg2, arg3, sh, fuel_cost, loop_header, func_frame,
         stack, frames, glob, mem, state, fuel_limit, mem_max, cap_pages, max_steps, rowmask,
         regs, vals, mspace, maddr, mval, mprev, mwrite):
    """Execute from ``state`` until done, trapped, out of fuel, capped or ``max_steps`` rows.

    Step ``t`` is recorded in row ``t & rowmask`` of the columns: ``rowmask`` -1 records the
    whole trace, 0 overwrites row 0 (a counting run). ``mem`` is linear memory as uint32
    words; ``regs`` rows are (pc, sp, fp, depth, pages), ``vals`` rows (a, b, c, res).
    Returns a status; ``state`` holds the final registers and the number of steps.
    Long on purpose: one compiled loop with a branch per op, since a call per instruction
    would cost more than the instruction.
    """
    pc, fp = state[_PC], state[_FP]
    depth, pages, fuel, t = state[_DEPTH], state[_PAGES], state[_FUEL], state[_T]
    nstack = stack.shape[0]
    status = _DONE
    trap = 0
    while True:
        if t >= max_steps:
            status = _TOO_LONG
            break
        if loop_header[pc] and fuel > fuel_limit:
            status = _OUT_OF_FUEL
            break
        o = op[pc]
        sp = fp + sh[pc]  # heights are static: drop and nop left no rows behind
        row = t & rowmask
        regs[row, 0] = pc
        regs[row, 1] = sp
        regs[row, 2] = fp
        regs[row, 3] = depth
        regs[row, 4] = pages
        fuel += fuel_cost[pc]
        nxt = pc + 1
        if o == LOCAL_GET:
            v = stack[fp + imm[pc]]
            _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, fp + imm[pc], v, v, 0)
            _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_STACK, sp, v, stack[sp], 1)
            stack[sp] = v
            vals[row, 3] = v
        elif o >= ADVICE:  # the lowering's advice and checks, the precompiles
            if o >= DOT_I8I8:  # a (sp-3), b (sp-2), n (sp-1) -> the dot product at sp-3
                n = stack[sp - 1]
                b = stack[sp - 2]
                a = stack[sp - 3]
                vals[row, 0] = a
                vals[row, 1] = b
                vals[row, 2] = n
                _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, n, n, 0)
                _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_STACK, sp - 2, b, b, 0)
                _acc(mspace, maddr, mval, mprev, mwrite, row, 2, SPACE_STACK, sp - 3, a, a, 0)
                fuel += np.int64((n + np.uint64(3)) >> np.uint64(2))  # opcodes.precompile_fuel
                if fuel > fuel_limit:
                    t += 1
                    status = _OUT_OF_FUEL
                    break
                if np.int64(a + n) > pages * PAGE or np.int64(b + n) > pages * PAGE:
                    trap = _T_OOB
                    break
                r = _dot(mem, np.int64(a), np.int64(b), np.int64(n), o == DOT_I8I8)
                _acc(mspace, maddr, mval, mprev, mwrite, row, 3, SPACE_STACK, sp - 3, r, a, 1)
                stack[sp - 3] = r
                vals[row, 3] = r
            elif o == ADVICE:
                v = _advice(stack, fp + (imm[pc] >> 2), imm[pc] & 3)
                _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp, v, stack[sp], 1)
                stack[sp] = v
                vals[row, 3] = v
            else:  # assert_eqz: honest advice always passes; the AIR refuses a non-zero word
                a = stack[sp - 1]
                vals[row, 0] = a
                _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, a, a, 0)
        elif o >= I32_BIN_BASE:
            if o < UNARY_BASE or o == I32_MULHU:
                b = stack[sp - 1]
                a = stack[sp - 2]
                r, trap = _binary(o - I32_BIN_BASE, a, b)
                vals[row, 0] = a
                vals[row, 1] = b
                _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, b, b, 0)
                _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_STACK, sp - 2, a, a, 0)
                if trap:
                    break
                _acc(mspace, maddr, mval, mprev, mwrite, row, 2, SPACE_STACK, sp - 2, r, a, 1)
                stack[sp - 2] = r
                vals[row, 3] = r
            else:
                a = stack[sp - 1]
                r = _unary(o - UNARY_BASE, a)
                vals[row, 0] = a
                vals[row, 3] = r
                _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, a, a, 0)
                _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_STACK, sp - 1, r, a, 1)
                stack[sp - 1] = r
        elif o == I32_CONST:
            v = np.uint64(imm[pc])
            _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp, v, stack[sp], 1)
            stack[sp] = v
            vals[row, 3] = v
        elif o == LOCAL_SET or o == LOCAL_TEE:  # same effect; local.set's sh is one lower after
            v = stack[sp - 1]
            dst = fp + imm[pc]
            _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, v, v, 0)
            _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_STACK, dst, v, stack[dst], 1)
            stack[dst] = v
            vals[row, 0] = v
        elif o >= LOAD_BASE:
            if o < STORE_BASE:
                k = o - LOAD_BASE
                width = _LOAD_WIDTH[k]
                a = stack[sp - 1]
                vals[row, 0] = a
                _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, a, a, 0)
                ea = np.int64(a) + imm[pc]
                if ea + width > pages * PAGE:
                    trap = _T_OOB
                    break
                w0 = ea >> 2
                w1 = (ea + width - 1) >> 2
                for w in range(w0, w1 + 1):
                    x = np.uint64(mem[w])
                    _acc(mspace, maddr, mval, mprev, mwrite, row, 1 + w - w0, SPACE_MEMORY, w,
                         x, x, 0)
                if (ea & 3) == 0 and width == 4:
                    r = np.uint64(mem[w0])
                else:
                    r = _U0
                    for i in range(width):
                        word = np.uint64(mem[(ea + i) >> 2])
                        byte = (word >> np.uint64(8 * ((ea + i) & 3))) & _M8
                        r |= byte << np.uint64(8 * i)
                if _LOAD_SIGNED[k]:
                    r = _sext(r, np.uint64(8 * width)) & _M32
                _acc(mspace, maddr, mval, mprev, mwrite, row, 4, SPACE_STACK, sp - 1, r, a, 1)
                stack[sp - 1] = r
                vals[row, 3] = r
            else:
                width = _STORE_WIDTH[o - STORE_BASE]
                b = stack[sp - 1]
                a = stack[sp - 2]
                vals[row, 0] = a
                vals[row, 1] = b
                _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, b, b, 0)
                _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_STACK, sp - 2, a, a, 0)
                ea = np.int64(a) + imm[pc]
                if ea + width > pages * PAGE:
                    trap = _T_OOB
                    break
                w0 = ea >> 2
                w1 = (ea + width - 1) >> 2
                for w in range(w0, w1 + 1):
                    mprev[row, 2 + w - w0] = mem[w]
                if (ea & 3) == 0 and width == 4:
                    mem[w0] = np.uint32(b)
                else:
                    for i in range(width):
                        s = np.uint32(8 * ((ea + i) & 3))
                        byte = np.uint32((b >> np.uint64(8 * i)) & _M8)
                        wi = (ea + i) >> 2
                        mem[wi] = (mem[wi] & ~(np.uint32(0xFF) << s)) | (byte << s)
                for w in range(w0, w1 + 1):
                    _acc(mspace, maddr, mval, mprev, mwrite, row, 2 + w - w0, SPACE_MEMORY, w,
                         np.uint64(mem[w]), mprev[row, 2 + w - w0], 1)
        elif o == BR_IF or o == BR_EQZ or o == BR_TABLE:
            a = stack[sp - 1]
            vals[row, 0] = a
            _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, a, a, 0)
            e = pc  # the ROM row holding (target, drop, keep); -1: not taken
            if o == BR_TABLE:
                e = pc + 1 + min(np.int64(a), imm[pc])
            elif (a != _U0) != (o == BR_IF):
                e = -1
            if e >= 0:
                _transfer(stack, sp - 1, arg2[e], arg3[e], row, 1, vals,
                          mspace, maddr, mval, mprev, mwrite)
                nxt = arg1[e]
        elif o == BR:
            _transfer(stack, sp, arg2[pc], arg3[pc], row, 0, vals,
                      mspace, maddr, mval, mprev, mwrite)
            nxt = arg1[pc]
        elif o == CALL or o == CALL_INDIRECT:
            f = imm[pc]
            entry = arg1[pc]
            nparams = arg2[pc]
            slot = 0
            if o == CALL_INDIRECT:
                a = stack[sp - 1]
                vals[row, 0] = a
                _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, a, a, 0)
                sp -= 1
                slot = 1
                if a >= np.uint64(arg2[pc]):
                    trap = _T_TABLE
                    break
                e = arg1[pc] + np.int64(a)
                if imm[e] < 0:
                    trap = _T_NULL
                    break
                if arg3[e] != imm[pc]:
                    trap = _T_SIG
                    break
                f = imm[e]
                entry = arg1[e]
                nparams = arg2[e]
            new_fp = sp - nparams
            if depth + 1 >= MAX_DEPTH or new_fp + func_frame[f] > nstack:
                trap = _T_STACK
                break
            rec = np.uint64(nxt) | (np.uint64(fp) << _S32)
            _acc(mspace, maddr, mval, mprev, mwrite, row, slot, SPACE_FRAME, depth + 1, rec,
                 frames[depth + 1], 1)
            frames[depth + 1] = rec
            depth += 1
            fp = new_fp
            nxt = entry
            fuel += 1  # the callee's entry
            if fuel > fuel_limit:
                t += 1
                pc = nxt
                status = _OUT_OF_FUEL
                break
        elif o == RETURN:
            _transfer(stack, sp, arg2[pc], arg3[pc], row, 0, vals,
                      mspace, maddr, mval, mprev, mwrite)
            if depth == 0:
                t += 1
                break
            rec = frames[depth]
            _acc(mspace, maddr, mval, mprev, mwrite, row, 2, SPACE_FRAME, depth, rec, rec, 0)
            nxt = np.int64(rec & _M32)
            fp = np.int64(rec >> _S32)
            depth -= 1
        elif o == GLOBAL_GET:
            g = imm[pc]
            v = glob[g]
            _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_GLOBAL, g, v, v, 0)
            _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_STACK, sp, v, stack[sp], 1)
            stack[sp] = v
            vals[row, 3] = v
        elif o == GLOBAL_SET:
            g = imm[pc]
            v = stack[sp - 1]
            _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, v, v, 0)
            _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_GLOBAL, g, v, glob[g], 1)
            glob[g] = v
            vals[row, 0] = v
        elif o == SELECT:
            c = stack[sp - 1]
            b = stack[sp - 2]
            a = stack[sp - 3]
            r = a if c != _U0 else b
            vals[row, 0] = a
            vals[row, 1] = b
            vals[row, 2] = c
            vals[row, 3] = r
            _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, c, c, 0)
            _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_STACK, sp - 2, b, b, 0)
            _acc(mspace, maddr, mval, mprev, mwrite, row, 2, SPACE_STACK, sp - 3, a, a, 0)
            _acc(mspace, maddr, mval, mprev, mwrite, row, 3, SPACE_STACK, sp - 3, r, a, 1)
            stack[sp - 3] = r
        elif o == MEMORY_SIZE:
            v = np.uint64(pages)
            _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp, v, stack[sp], 1)
            stack[sp] = v
            vals[row, 3] = v
        elif o == MEMORY_GROW:
            a = stack[sp - 1]
            vals[row, 0] = a
            _acc(mspace, maddr, mval, mprev, mwrite, row, 0, SPACE_STACK, sp - 1, a, a, 0)
            new_pages = pages + np.int64(a)
            if new_pages > mem_max:
                r = _M32
            elif new_pages > cap_pages:
                t += 1
                status = _MEMORY_CAP
                break
            else:
                r = np.uint64(pages)
                pages = new_pages
            _acc(mspace, maddr, mval, mprev, mwrite, row, 1, SPACE_STACK, sp - 1, r, a, 1)
            stack[sp - 1] = r
            vals[row, 3] = r
            if r != _M32 and fuel_cost[pc] == 1:  # charged at run time, then checked
                fuel += np.int64(a)
                if fuel > fuel_limit:
                    t += 1
                    status = _OUT_OF_FUEL
                    break
        elif o == UNREACHABLE:
            trap = _T_UNREACHABLE
            break
        elif o != NOP:  # br_entry / table_entry rows are data: reaching one is a bug
            raise RuntimeError("tracer reached a data row of the ROM")
        pc = nxt
        t += 1
    if trap:
        t += 1
        status = _TRAP
    state[_PC], state[_FP] = pc, fp
    state[_DEPTH], state[_PAGES], state[_FUEL], state[_T] = depth, pages, fuel, t
    state[_TRAPCODE] = trap
    return status


@_jit
def _acc(mspace, maddr, mval, mprev, mwrite, t, k, space, addr, value, prev, write):
    """Record access slot ``k`` of row ``t``."""
    mspace[t, k] = space
    maddr[t, k] = addr
    mval[t, k] = value
    mprev[t, k] = prev
    mwrite[t, k] = write


@_jit
def _transfer(stack, sp, drop, keep, row, slot, vals, mspace, maddr, mval, mprev, mwrite):
    """Move the top ``keep`` (0 or 1) of the ``sp`` values down by ``drop`` slots."""
    if keep:
        v = stack[sp - 1]
        dst = sp - 1 - drop
        _acc(mspace, maddr, mval, mprev, mwrite, row, slot, SPACE_STACK, sp - 1, v, v, 0)
        _acc(mspace, maddr, mval, mprev, mwrite, row, slot + 1, SPACE_STACK, dst, v, stack[dst], 1)
        stack[dst] = v
        vals[row, 3] = v


# --- the Python API -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Trace:
    """One traced call: the columns of :data:`COLUMNS` (``steps`` rows) and its outcome.

    ``fuel`` is what wasmtime charges for the call (the sandbox's ``fuel_used``); the
    initial/final memories are the linear memory before the call and after it.
    """

    program: Program
    export: str
    args: tuple[int, ...]
    steps: int
    columns: dict[str, np.ndarray]
    results: tuple[int, ...]
    trap: str | None
    fuel: int
    initial_memory: np.ndarray
    final_memory: np.ndarray
    initial_globals: np.ndarray
    final_globals: np.ndarray

    def __getattr__(self, name: str) -> np.ndarray:
        columns = self.__dict__.get("columns", {})
        if name in columns:
            return columns[name]
        raise AttributeError(name)

    def opcode_histogram(self) -> dict[str, int]:
        """Executed rows per op, most frequent first."""
        counts = np.bincount(self.columns["op"], minlength=len(OP_NAMES))
        order = np.argsort(-counts, kind="stable")
        return {OP_NAMES[i]: int(counts[i]) for i in order if counts[i]}

    def memory_footprint(self) -> dict[str, int]:
        """Linear-memory and stack usage: pages, distinct words and pages touched, etc."""
        space = self.columns["mem_space"]
        words = np.unique(self.columns["mem_addr"][space == SPACE_MEMORY])
        writes = (space == SPACE_MEMORY) & (self.columns["mem_write"] == 1)
        written = self.columns["mem_addr"][writes]
        return {
            "pages": len(self.final_memory) // PAGE,
            "memory_bytes": len(self.final_memory),
            "pages_touched": len(np.unique(words // (PAGE // 4))),
            "bytes_touched": 4 * len(words),
            "bytes_written": 4 * len(np.unique(written)),
            "stack_slots": int(self.columns["sp"].max(initial=0)),
            "max_depth": int(self.columns["depth"].max(initial=0)),
        }

    def save(self, path: str | Path) -> None:
        """Write the trace as a compressed ``.npz`` (columns, memories, globals, metadata)."""
        meta = {"export": self.export, "args": list(self.args), "steps": self.steps,
                "results": list(self.results), "trap": self.trap, "fuel": self.fuel,
                "columns": list(COLUMNS), "spaces": list(SPACE_NAMES), "ops": list(OP_NAMES)}
        np.savez_compressed(
            path, **self.columns, initial_memory=self.initial_memory,
            final_memory=self.final_memory, initial_globals=self.initial_globals,
            final_globals=self.final_globals, rom=self.program.to_rows(),
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


class _Execution:
    """One execution of a call in the kernel, resumable: :meth:`until` runs it on to a step
    count, recording each step into the row ``t & rowmask`` of the given columns."""

    def __init__(self, prog: Program, func: int, argv: Sequence[int], limits: Limits,
                 cap_pages: int, initial_memory: np.ndarray) -> None:
        self.prog, self.limits, self.cap_pages = prog, limits, cap_pages
        self.mem = np.zeros(min(prog.mem_max, cap_pages) * (PAGE // 4) if prog.has_memory
                            else 0, dtype=np.uint32)
        self.mem.view(np.uint8)[:len(initial_memory)] = initial_memory
        self.stack = np.zeros(STACK_SLOTS, dtype=np.uint64)
        self.stack[:len(argv)] = argv
        self.frames = np.zeros(MAX_DEPTH + 1, np.uint64)
        self.glob = prog.globals_init.copy()
        self.state = np.zeros(7, dtype=np.int64)
        self.state[_PC] = prog.func_entry[func]
        self.state[_PAGES] = prog.mem_min
        self.state[_FUEL] = 1

    def until(self, max_steps: int, rowmask: int, bufs: tuple[np.ndarray, ...]) -> int:
        """Run until done or ``max_steps`` steps in all; the kernel's status."""
        prog = self.prog
        return _run(prog.op, prog.imm, prog.arg1, prog.arg2, prog.arg3, prog.sh, prog.fuel,
                    prog.loop_header, prog.func_frame, self.stack, self.frames, self.glob,
                    self.mem, self.state, np.int64(self.limits.fuel), np.int64(prog.mem_max),
                    np.int64(self.cap_pages), np.int64(max_steps), np.int64(rowmask), *bufs)

    @property
    def steps(self) -> int:
        return int(self.state[_T])


@dataclass(frozen=True, eq=False)
class TraceStream:
    """A traced call whose columns are recorded on demand. ``head`` is the call's outcome
    (steps, results or trap, fuel, final memory and globals) as a :class:`Trace` without
    columns, known from a counting run; :meth:`chunks` executes the call again, recording a
    fixed number of rows at a time (a 2^24-step trace is 2.9 GB at once, a 2^16-row chunk
    11 MB), and :meth:`whole` records every row into one trace."""

    head: Trace
    start: Callable[[], _Execution]

    def __getattr__(self, name: str):
        """The outcome's fields (steps, program, results, trap, fuel, memories) are the
        head's; its columns are not there (AttributeError)."""
        if name == "head":
            raise AttributeError(name)
        return getattr(self.head, name)

    def chunks(self, rows: int) -> Iterator[dict[str, np.ndarray]]:
        """The columns of rows [0, rows), [rows, 2 rows), ... (``rows`` a power of two; the
        last chunk may be shorter)."""
        if rows < 1 or rows & (rows - 1):
            raise ValueError(f"chunks of {rows} rows: need a power of two")
        run = self.start() if self.steps else None
        for t0 in range(0, self.steps, rows):
            bufs = _empty_columns(min(rows, self.steps - t0))
            run.until(t0 + len(bufs[0]), rows - 1, bufs)
            yield _columns(self.program, bufs)
        if run is not None and run.steps != self.steps:
            raise InternalError("the recording run diverged from the counting run")

    def whole(self) -> Trace:
        """Every row, recorded at once (171 bytes a row: the kernel's columns, op and imm)."""
        columns = next(self.chunks(1 << max(self.steps - 1, 0).bit_length()), None)
        return replace(self.head, columns=columns or _columns(self.program, _empty_columns(0)))


def trace_stream(module: bytes | Program, export: str, args: Sequence[int] = (),
                 limits: Limits = Limits(), max_steps: int = DEFAULT_MAX_STEPS,
                 input_bytes: bytes = b"") -> TraceStream:
    """Execute ``export(*args)`` on a fresh instance, ``input_bytes`` written to its input
    buffer first (memjit.runtime.tensor_io), counting its steps: the call's outcome, with its
    rows recorded on demand (:class:`TraceStream`).

    A trap ends the trace (``Trace.trap``); running out of fuel, hitting the memory cap or
    exceeding ``max_steps`` raise OutOfFuel, MemoryCapExceeded, TraceTooLong. The wall-clock
    deadline of ``limits`` is the sandbox's alone: the tracer's work is bounded by
    ``max_steps``. The counting run overwrites one row per step: it settles every fault
    without allocating a trace.
    """
    prog = module if isinstance(module, Program) else load(module)
    sig = prog.signature(export)
    argv = convert_args(sig, export, list(args))
    cap_pages = (limits.memory_mb << 20) // PAGE
    if prog.mem_min > cap_pages:
        raise MemoryCapExceeded(f"memory cap exceeded: instantiation needed more than "
                                f"{limits.memory_mb} MiB")
    initial_memory = prog.memory_image()
    args = tuple(int(a) for a in args)
    if prog.init_trap is not None:
        glob = prog.globals_init.copy()
        head = Trace(prog, export, args, 0, {}, (), prog.init_trap, 0, initial_memory,
                     initial_memory, glob, glob)
        return TraceStream(head, lambda: None)
    placement = input_placement(prog, input_bytes)
    if placement is not None:
        address, data = placement
        initial_memory = initial_memory.copy()
        initial_memory[address:address + len(data)] = np.frombuffer(data, np.uint8)
    if prog.init_fuel > limits.fuel:
        raise OutOfFuel(
            f"out of fuel: instantiation used more than its budget of {limits.fuel} fuel")
    if limits.fuel < 1:  # the export's entry costs 1 fuel and is a check point
        raise _out_of_fuel(export, limits)

    def start() -> _Execution:
        return _Execution(prog, sig.func, argv, limits, cap_pages, initial_memory)

    run = start()
    status = run.until(max_steps, 0, _empty_columns(1))
    state = run.state
    if status == _TOO_LONG:
        raise TraceTooLong(f"trace too long: {export!r} runs more than {max_steps} steps")
    if status == _OUT_OF_FUEL or (status == _DONE and state[_FUEL] > limits.fuel):
        raise _out_of_fuel(export, limits)
    if status == _MEMORY_CAP:
        raise MemoryCapExceeded(f"memory cap exceeded: {export!r} needed more than "
                                f"{limits.memory_mb} MiB")
    trap = TRAP_CODES[state[_TRAPCODE] - 1] if status == _TRAP else None
    results = () if trap else typed_results(sig.results, run.stack)
    final_memory = run.mem.view(np.uint8)[:state[_PAGES] * PAGE].copy()
    head = Trace(prog, export, args, run.steps, {}, results, trap, int(state[_FUEL]),
                 initial_memory, final_memory, prog.globals_init.copy(), run.glob)
    return TraceStream(head, start)


def trace(module: bytes | Program, export: str, args: Sequence[int] = (),
          limits: Limits = Limits(), max_steps: int = DEFAULT_MAX_STEPS,
          input_bytes: bytes = b"") -> Trace:
    """Execute ``export(*args)`` and record its whole trace (:func:`trace_stream`, whose
    faults it raises): a counting run, then a recording run into columns of that length."""
    return trace_stream(module, export, args, limits, max_steps, input_bytes).whole()


def _out_of_fuel(export: str, limits: Limits) -> OutOfFuel:
    return OutOfFuel(f"out of fuel: {export!r} used more than its budget of {limits.fuel} fuel")


def _empty_columns(n: int) -> tuple[np.ndarray, ...]:
    """Zeroed kernel columns: regs, vals, mem_space, mem_addr, mem_value, mem_prev, mem_write."""
    return (np.zeros((n, 5), np.uint32), np.zeros((n, 4), np.uint64),
            np.zeros((n, NSLOTS), np.uint8), np.zeros((n, NSLOTS), np.uint32),
            np.zeros((n, NSLOTS), np.uint64), np.zeros((n, NSLOTS), np.uint64),
            np.zeros((n, NSLOTS), np.uint8))


def _columns(prog: Program, bufs: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """The trace columns (:data:`COLUMNS`) of the kernel's recorded rows."""
    regs, vals, space, addr, value, prev, write = bufs
    pc = regs[:, 0]
    return {
        "pc": pc, "op": prog.op[pc], "imm": prog.imm[pc].view(np.uint64), "sp": regs[:, 1],
        "fp": regs[:, 2], "depth": regs[:, 3], "pages": regs[:, 4], "a": vals[:, 0],
        "b": vals[:, 1], "c": vals[:, 2], "res": vals[:, 3], "mem_space": space,
        "mem_addr": addr, "mem_value": value, "mem_prev": prev, "mem_write": write,
    }


def trace_checked(module: bytes, export: str, args: Sequence[int] = (),
                  limits: Limits = Limits(), max_steps: int = DEFAULT_MAX_STEPS,
                  input_bytes: bytes = b"", *, stream: bool = False) -> Trace | TraceStream:
    """:func:`trace` (with ``stream``, :func:`trace_stream`, its rows checked chunk by
    chunk), cross-checked against the wasmtime run of the same call.

    Results, trap code, final memory and fuel must agree (the trace's fuel is the sum of the
    executed rows' wasmtime costs plus one per function entry); a disagreement raises
    :class:`TraceMismatch`. A call that wasmtime ends by fuel or memory cap raises that fault
    after the tracer confirmed it (within ``max_steps``); a deadline is raised as is.
    """
    if not isinstance(module, (bytes, bytearray, memoryview)):
        raise BadInput(f"module must be bytes, not {type(module).__name__}")
    data = bytes(module)
    prog = load(data)
    convert_args(prog.signature(export), export, list(args))
    call = f"{export}({', '.join(str(a) for a in args)})"
    expected, expected_trap = None, None
    try:
        expected = run_wasmtime(data, export, args, limits, input_bytes)
    except Trap as exc:
        expected_trap = exc.code
    except (OutOfFuel, MemoryCapExceeded) as fault:
        try:
            tr = trace_stream(prog, export, args, limits, max_steps, input_bytes).head
        except TraceTooLong:
            raise fault from None
        except type(fault):
            raise fault from None
        except WorkerFault as exc:
            raise TraceMismatch(f"{call}: wasmtime raised {fault!r}, the tracer {exc!r}") from exc
        raise TraceMismatch(f"{call}: wasmtime raised {fault!r}, the tracer "
                            f"{'trapped with ' + tr.trap if tr.trap else 'returned'}") from None
    outcome = f"trapped with {expected_trap}" if expected_trap else f"returned {expected.results}"
    try:
        tr = trace_stream(prog, export, args, limits, max_steps, input_bytes)
    except (OutOfFuel, MemoryCapExceeded) as exc:
        raise TraceMismatch(f"{call}: wasmtime {outcome}, the tracer raised {exc!r}") from exc
    if not stream:
        tr = tr.whole()
    _compare(call, expected, expected_trap, tr)
    return tr


def _compare(call: str, expected: RunResult | None, expected_trap: str | None,
             tr: Trace | TraceStream) -> None:
    """Raise TraceMismatch unless the trace agrees with wasmtime's outcome."""
    if expected_trap != tr.trap:
        got = f"trapped with {tr.trap}" if tr.trap else f"returned {tr.results}"
        want = f"trapped with {expected_trap}" if expected_trap else f"returned {expected.results}"
        note = (f" (wasmtime's native stack overflows at another depth than the tracer's "
                f"limit of {MAX_DEPTH} calls)" if "stack_overflow" in (tr.trap, expected_trap)
                else "")
        raise TraceMismatch(f"{call}: wasmtime {want}, the tracer {got}{note}")
    if expected is None:
        return
    if expected.results != tr.results:
        raise TraceMismatch(
            f"{call}: wasmtime returned {expected.results}, the tracer {tr.results}")
    mix_fuel = instruction_mix_fuel(tr)
    if not expected.fuel_used == tr.fuel == mix_fuel:
        raise TraceMismatch(f"{call}: wasmtime used {expected.fuel_used} fuel, the trace "
                            f"{tr.fuel} ({mix_fuel} from its {tr.steps} rows' instruction mix)")
    if expected.memory is not None and expected.memory != tr.final_memory.tobytes():
        mine = tr.final_memory.tobytes()
        if len(mine) != len(expected.memory):
            raise TraceMismatch(f"{call}: final memory is {len(expected.memory)} bytes in "
                                f"wasmtime, {len(mine)} in the trace")
        diff = np.flatnonzero(
            np.frombuffer(mine, np.uint8) != np.frombuffer(expected.memory, np.uint8))
        raise TraceMismatch(f"{call}: final memory differs from wasmtime's at {len(diff)} "
                            f"byte(s), first at address {hex(int(diff[0]))}")


MIX_CHUNK_ROWS = 1 << 16  # rows a streamed trace's fuel is summed over at a time


def instruction_mix_fuel(tr: Trace | TraceStream) -> int:
    """Wasmtime's fuel for the trace's executed rows: the original instructions' costs, one
    per function entry, and one per page a successful ``memory.grow`` adds (unless wasmtime
    folded a constant request into the row's static cost, see lower.static_grow_fuel). A
    stream is summed chunk by chunk."""
    chunks = tr.chunks(MIX_CHUNK_ROWS) if isinstance(tr, TraceStream) else (tr.columns,)
    return 1 + sum(_rows_fuel(tr.program, columns) for columns in chunks)


def _rows_fuel(prog: Program, columns: dict[str, np.ndarray]) -> int:
    """The fuel of some rows, but for the export's entry."""
    op, fuel = columns["op"], prog.fuel[columns["pc"]]
    entries = int(np.count_nonzero((op == CALL) | (op == CALL_INDIRECT)))
    dots = op >= DOT_I8I8
    entries += int(((columns["c"][dots] + np.uint64(3)) >> np.uint64(2)).sum(dtype=np.uint64))
    grown = (op == MEMORY_GROW) & (columns["res"] != 0xFFFFFFFF) & (fuel == 1)
    pages = int(columns["a"][grown].sum(dtype=np.uint64))
    return int(fuel.sum(dtype=np.int64)) + entries + pages
