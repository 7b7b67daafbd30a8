"""The WebAssembly spec testsuite through memjit (tests/spec_suite.py, tests/spec/README.md).

Every command of the vendored integer-MVP scripts goes through the front end, the sandbox and
the tracer; a deterministic sample covering every script, every wasm instruction executed,
every lowered VM op and every trap kind is proven and verified. The full proving run is
``pytest -m spec_full`` (or ``.venv/bin/python tests/spec_suite.py --prove all``)."""

from __future__ import annotations

import pytest

from spec_suite import Record, run_suite


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return run_suite("sample")


def failures(records: list[Record]) -> str:
    return "\n".join(f"{r.script}.wast:{r.line} {r.kind} {r.export}{r.args}: {r.reason}"
                     for r in records if r.status == "failed")


def test_no_command_fails(records):
    assert not failures(records), failures(records)


def test_the_sample_covers_every_script_instruction_op_and_trap(records):
    proven = [r for r in records if r.status in ("proven", "trap-proven")]
    provable = proven + [r for r in records if r.status == "traced"]
    assert set().union(*(r.features for r in proven)) == set().union(*(r.features for r in provable))
    kinds = {f for r in proven for f in r.features if f.startswith("trap:")}
    assert kinds >= {f"trap:{t}" for t in ("none", "integer_divide_by_zero", "integer_overflow",
                                           "memory_out_of_bounds", "table_out_of_bounds",
                                           "indirect_call_to_null")}


def test_no_invalid_or_malformed_module_is_accepted(records):
    for r in records:
        if r.kind in ("assert_invalid", "assert_malformed", "assert_unlinkable"):
            assert r.status == "refused" or (r.status, r.reason) in (
                ("skipped", "text format (binary modules only)"),
                ("skipped", "valid in later WebAssembly (wasmtime)")), (r.script, r.line)


def test_a_module_that_traps_while_instantiating_gets_no_key(records):
    uninstantiable = [r for r in records if r.kind == "assert_uninstantiable"]
    assert uninstantiable and all(r.status == "refused" for r in uninstantiable)
    assert any(r.reason == "instantiation traps (no key)" for r in uninstantiable)


@pytest.mark.spec_full
def test_every_provable_spec_call_proves_and_verifies():
    records = run_suite("all")
    assert not failures(records), failures(records)
    assert not [r for r in records if r.status == "traced"]
