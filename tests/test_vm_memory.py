"""Linear memory in the VM AIR (issue 19): accesses out of bounds proven as trap statements,
offsets up to 2^32 - 1, memory.grow up to the sandbox's cap (bound in the VK), under-aligned
accesses as byte accesses (memjit.runtime.wasm.access).

Completeness against wasmtime; one malicious prover per new constraint family (the
out-of-bounds distance, the offset's high half, the cap's slack), each lying in exactly that
place and rejected."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings, strategies as st

import memjit.runtime.witness as W
from circuits.field import P
from circuits.wasm_vm.columns import COL
from memjit.runtime.claims import prove_claim, vk_of, vm_program, witness
from memjit.errors import MemoryCapExceeded, UnsupportedModule
from memjit.runtime.sandbox import Limits, run
from memjit.runtime.tracer import trace, trace_checked
from memjit.runtime.wasm import load
from memjit.runtime.wasm.access import BYTES
from memjit.workers import load as load_worker
from test_vm_air import assert_rejected, constraints_hold, fast_verdict, honest
from test_vm_ops import cut_as_trap
from verifier.claims import Claim, verify_claim

LOADS = [op for op in BYTES if "load" in op]
STORES = [op for op in BYTES if "store" in op]
DATA = '(data (i32.const 0) "\\81\\02\\f3\\04\\85\\86\\07\\88") ' \
       '(data (i32.const 65528) "\\f1\\f2\\f3\\f4\\f5\\f6\\f7\\f8")'


def access(op: str, offset: int = 0, align: int | None = None, memory: str = "(memory 1)") -> bytes:
    """f(address, value): a load returns what it reads at address + offset; a store writes
    value there and returns the word at 65532."""
    hint = "" if align is None else f" align={align}"
    t = "i64" if op.startswith("i64") else "i32"
    if "load" in op:
        body = f"({op} offset={offset}{hint} (local.get 0))"
        return wasmtime.wat2wasm(f'(module {memory} {DATA} (func (export "f") (param i32 {t}) '
                                 f'(result {t}) {body}))')
    body = f"({op} offset={offset}{hint} (local.get 0) (local.get 1)) (i32.load (i32.const 65532))"
    return wasmtime.wat2wasm(f'(module {memory} {DATA} (func (export "f") (param i32 {t}) '
                             f'(result i32) {body}))')


# --- out of bounds ------------------------------------------------------------------------------

@pytest.mark.parametrize("op", LOADS + STORES)
def test_accesses_at_the_end_of_memory_return_or_prove_their_trap(op):
    module, n = access(op, offset=3), BYTES[op]
    last = 65536 - 3 - n  # the last address whose access ends inside the memory
    for address, trapped in ((last, False), (last + 1, True), (65536, True), (-1, True),
                             (0x7FFFFFFF, True)):
        vm, st_, main = honest(module, "f", [address, 0x12345678])
        assert (st_.trap == "memory_out_of_bounds") == trapped and (st_.result is None) == trapped
        constraints_hold(vm, st_, main)


def test_out_of_bounds_store_verifies_as_a_trap_and_never_as_a_result():
    module = access("i32.store16", offset=1)
    vk = vk_of(module)
    claim = prove_claim(module, "f", [65534, 7])
    assert claim.statement.trap == "memory_out_of_bounds"
    assert verify_claim(claim.encode(), vk).valid
    for lie in (dataclasses.replace(claim.statement, trap=None, result=0),
                dataclasses.replace(claim.statement, trap="unreachable")):
        assert not verify_claim(Claim(lie, claim.proof).encode(), vk).valid
    returned = prove_claim(module, "f", [65533, 7])
    assert returned.statement.result == 0x0007F6F5 and verify_claim(returned.encode(), vk).valid
    as_trap = dataclasses.replace(returned.statement, trap="memory_out_of_bounds", result=None)
    assert not verify_claim(Claim(as_trap, returned.proof).encode(), vk).valid


LIES = ["carry in range", "equation balanced"]
"""Two ways to lie with a carry (a 12-bit limb): keep it in range and break its equation, or
balance the equation with a field element that is no 12-bit value (then only its range check,
a lookup, can catch it). The lies are made inside the witness (monkeypatched), so that the
statement's lookup counts are the lying prover's own: exactly one check fails."""


def carry_lie(lie: str, totals: list[int], weight: int) -> np.ndarray:
    """The lying carries: 0, or the field elements ``total / weight`` that balance
    ``weight * carry = total``."""
    if lie == LIES[0]:
        return np.zeros(len(totals), np.uint64)
    return np.array([t * pow(weight, -1, P) % P for t in totals], np.uint64)


@pytest.mark.parametrize("op, address", [("i32.load", 65532), ("i32.store8", 65535),
                                         ("i32.load16_u", 0)])
@pytest.mark.parametrize("lie", LIES)
def test_in_bounds_access_claimed_out_of_bounds_rejected(monkeypatch, op, address, lie):
    # the run is cut at the access and relabelled as its out-of-bounds trap: the distance past
    # the end is negative, so its high half cannot balance with a 12-bit carry
    honest_past_end = W._past_end

    def lying(rows, a, pages):
        distance, carries = honest_past_end(rows, a, pages)
        high = (a >> 16) + (rows.imm >> 16) + carries[:, 0] - pages  # as integers
        total = high.astype(np.int64) - (distance >> 16).astype(np.int64)
        trap = rows.load_trap | rows.store_trap
        assert np.all(total[trap] < 0)
        carries[trap, 1] = carry_lie(lie, total[trap].tolist(), 65536)
        return distance, carries

    monkeypatch.setattr(W, "_past_end", lying)
    assert_rejected(*cut_as_trap(access(op), [address, 5], op, "memory_out_of_bounds"))


def test_out_of_bounds_low_half_carry_raised_rejected(monkeypatch):
    # i32.load at 65532 of one page ends at 65535, in bounds: the high half is 0 - 1 < 0. A low
    # carry of 1 instead of 0 makes the high half 0 (every limb in range): only the low half's
    # equation, lo(A) + offset + 3 = lo(Z) + 65536 cm0, is broken
    honest_past_end = W._past_end

    def lying(rows, a, pages):
        distance, carries = honest_past_end(rows, a, pages)
        trap = rows.load_trap | rows.store_trap
        carries[trap, 0] += 1
        carries[trap, 1] = 0
        distance[trap] &= np.uint64(0xFFFF)  # high half 0
        return distance, carries

    monkeypatch.setattr(W, "_past_end", lying)
    assert_rejected(*cut_as_trap(access("i32.load"), [65532, 5], "i32.load",
                                 "memory_out_of_bounds"))


@pytest.mark.parametrize("lie", LIES)
def test_offset_wrapping_past_p_claimed_in_bounds_rejected(monkeypatch, lie):
    # i32.load8_u offset=p+4 at address 0 is out of bounds; address + offset = p + 4 = 4
    # (mod p): without the check of the offset's high half, the load of byte 4 would verify
    module = access("i32.load8_u", offset=P + 4)
    assert prove_claim(module, "f", [0, 0]).statement.trap == "memory_out_of_bounds"
    real, twin = load(module), load(access("i32.load8_u", offset=4))
    tr = dataclasses.replace(trace(twin, "f", [0, 0]), program=real)  # the run reads word 1
    honest_addresses = W._Rows.addresses

    def lying(rows, tr):
        honest_addresses(rows, tr)
        mem = rows.loads | rows.stores
        rows.word = np.where(mem, 1, 0).astype(np.uint64)  # (p + 4) mod p = 4: byte 0 of word 1
        rows.off = np.zeros_like(rows.off)
        rows.high = np.where(mem, carry_lie(lie, [(P + 4) >> 16], 1)[0], 0).astype(np.uint64)

    monkeypatch.setattr(W._Rows, "addresses", lying)
    vm = vm_program(real)
    main, st_ = witness(tr, vm)
    assert st_.result == 0x85
    assert_rejected(vm, st_, main)


def test_large_offsets_are_refused_per_call_never_per_module():
    module = wasmtime.wat2wasm(f'''(module (memory 1) {DATA}
      (func (export "near") (param i32) (result i32) (i32.load offset=4 (local.get 0)))
      (func (export "far") (param i32) (result i32) (i32.load offset=0xFFFFFFF0 (local.get 0)))
      (func (export "far64") (param i32) (result i64) (i64.load offset=0xFFFFFFFC (local.get 0))))''')
    vk = vk_of(module)
    for export, outcome in (("near", 0x88078685), ("far", "memory_out_of_bounds"),
                            ("far64", "memory_out_of_bounds")):
        claim = prove_claim(module, export, [0])
        assert (claim.statement.trap or claim.statement.result) == outcome
        assert verify_claim(claim.encode(), vk).valid


# --- memory.grow up to the cap ------------------------------------------------------------------

UNBOUNDED = wasmtime.wat2wasm('''(module (memory 1)
  (func (export "f") (param i32) (result i32)
    (i32.add (i32.mul (memory.grow (local.get 0)) (i32.const 1000)) (memory.size))))''')
"""f(delta) = 1000 * (old pages, or -1) + pages: a memory without a declared maximum."""
CAP_MB = 1  # 16 pages


@pytest.mark.parametrize("delta, result", [(0, 1001), (15, 1016), (65536, -999), (-1, -999)])
def test_memory_grow_without_a_maximum_proves_up_to_the_cap(delta, result):
    limits = Limits(memory_mb=CAP_MB)
    claim = prove_claim(UNBOUNDED, "f", [delta], limits=limits)
    assert claim.statement.signed_result == result
    assert verify_claim(claim.encode(), vk_of(UNBOUNDED, CAP_MB)).valid
    # the cap is part of the key: the same claim is not about the program under another cap
    assert not verify_claim(claim.encode(), vk_of(UNBOUNDED, 2 * CAP_MB)).valid


def test_grow_past_the_cap_is_a_fault_without_a_proof():
    with pytest.raises(MemoryCapExceeded) as exc:
        prove_claim(UNBOUNDED, "f", [16], limits=Limits(memory_mb=CAP_MB))
    assert exc.value.exit_code == 3


def test_the_cap_enters_the_key_only_of_a_module_that_grows():
    fixed = access("i32.load")
    assert vk_of(fixed, 1) == vk_of(fixed, 64)
    assert len({vk_of(UNBOUNDED, mb) for mb in (1, 2, 64)}) == 3


@pytest.mark.parametrize("lie", LIES)
def test_grow_past_the_cap_claimed_to_succeed_rejected(monkeypatch, lie):
    # the trace grows to 21 pages under a 2 MiB cap; the key's cap is 16 pages: the room left
    # below the cap is 16 - 1 - 20 < 0
    honest_room = W._cap_room
    monkeypatch.setattr(W, "_cap_room", lambda vm, pages, grown: carry_lie(
        lie, (honest_room(vm, pages, grown).astype(np.int64)).tolist(), 1))
    vm = vm_program(load(UNBOUNDED), CAP_MB)
    main, st_ = witness(trace(UNBOUNDED, "f", [20], limits=Limits(memory_mb=2)), vm)
    assert st_.result == 1021
    assert_rejected(vm, st_, main)


# --- memory keys above 2^24 -------------------------------------------------------------------

def test_memory_beyond_16_mib_satisfies_the_air():
    # word keys pass 2^24 (the key's top bit mk2) past 16 MiB - 3 * 2^22 words of other spaces
    module = wasmtime.wat2wasm('(module (memory 1000) (func (export "f") (param i32 i32) '
                               '(result i32) (i32.store (local.get 0) (local.get 1)) '
                               '(i32.load (local.get 0))))')
    for address in (1 << 24, 1000 * 65536 - 4):
        vm, st_, main = honest(module, "f", [address, 77])
        assert st_.result == 77 and main[COL["mk2"]].any()
        constraints_hold(vm, st_, main)


def test_key_bit_that_is_no_bit_rejected(monkeypatch):
    # a memory-table key split as (mk0, 0, (key - mk0) / 2^24): the recomposition holds and
    # the 12-bit limbs are in range, only mk2's being a bit fails
    honest_table = W._memory_table

    def lying(*args):
        table = honest_table(*args)
        k0, k1, k2 = (np.array(x, dtype=object) for x in table["key_limbs"])
        row = int(np.flatnonzero(k1)[0])
        k2[row] = (int(table["mkey"][row]) - int(k0[row])) * pow(1 << 24, -1, P) % P
        k1[row] = 0
        table["key_limbs"] = tuple(np.array(x, dtype=np.uint64) for x in (k0, k1, k2))
        return table

    monkeypatch.setattr(W, "_memory_table", lying)
    assert_rejected(*honest(access("i32.load"), "f", [8, 0]))


# --- under-aligned accesses ---------------------------------------------------------------------

UNDER_ALIGNED = [("i32.load", 1), ("i32.load", 2), ("i32.load16_s", 1), ("i32.load16_u", 1),
                 ("i32.store", 1), ("i32.store", 2), ("i32.store16", 1), ("i64.load", 1),
                 ("i64.load", 2), ("i64.load32_u", 2), ("i64.load16_s", 1), ("i64.store", 1),
                 ("i64.store32", 2), ("i64.store16", 1)]
OFFSETS = [0, 1, 2, 3, 65530, 0xFFFFFFFF, 0xFFFFFFFD]
ADDRESSES = [0, 1, 2, 3, 5, 65525, 65529, 65531, 65533, 65535, -1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(UNDER_ALIGNED), st.sampled_from(OFFSETS), st.sampled_from(ADDRESSES),
       st.integers(-2 ** 31, 2 ** 31 - 1))
def test_under_aligned_accesses_match_wasmtime_and_satisfy_the_air(access_op, offset, address,
                                                                  value):
    op, align = access_op
    module = access(op, offset, align)
    tr = trace_checked(module, "f", [address, value])  # results, trap and memory as wasmtime's
    constraints_hold(*honest(module, "f", [address, value]))
    assert tr.trap in (None, "memory_out_of_bounds")


@pytest.mark.parametrize("n", [500, 300_000])
def test_a_c_program_with_unaligned_compares_and_a_growing_heap_proves(n):
    # memjit/workers/strops.c: i32.load align=1 and memory.grow without a declared maximum,
    # both refused before issue 19; 300 000 bytes grow the heap from 2 to 6 pages
    module = load_worker("strops")
    claim = prove_claim(module, "count", [n, 7])
    assert claim.statement.result == run(module, "count", [n, 7]).results[0]
    assert verify_claim(claim.encode(), vk_of(module)).valid


def test_unaligned_load_of_clang_proves_and_verifies():
    # clang -O2 compiles a 4-byte compare on a char* into one i32.load align=1
    module = access("i32.load", offset=0, align=1)
    claim = prove_claim(module, "f", [1, 0])
    assert claim.statement.result == 0x8504F302
    assert verify_claim(claim.encode(), vk_of(module)).valid


@pytest.mark.parametrize("op, address", [("i32.store", 65533), ("i64.store", 65530)])
def test_a_trapping_store_writes_nothing(op, address):
    # byte stores go highest first, an i64's high word first: the first one traps
    for align in (1, None):
        module = access(op, align=align)
        tr = trace(module, "f", [address, -1])
        assert tr.trap == "memory_out_of_bounds"
        assert np.array_equal(tr.final_memory, tr.initial_memory)


def test_natural_hint_on_an_unaligned_address_refused_for_that_call_only():
    module = access("i32.load", align=4)
    assert verify_claim(prove_claim(module, "f", [4, 0]).encode(), vk_of(module)).valid
    with pytest.raises(UnsupportedModule, match="this call is not provable.*unaligned") as exc:
        prove_claim(module, "f", [1, 0])
    assert exc.value.exit_code == 2


def test_honest_out_of_bounds_fast_proof_accepted():
    # the control for the lies above: the same path, no lie
    verdict = fast_verdict(*honest(access("i32.load8_u"), "f", [65536, 0]))
    assert verdict.valid, verdict.reason
