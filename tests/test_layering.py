"""The package layering of DESIGN.md: the verifier is embeddable on its own, and light."""

import subprocess
import sys

import wasmtime

from memjit.claims import prove_claim, vk_of

FORBIDDEN = ("prover", "memjit", "wasmtime", "benchmarks")
COMPILERS = ("numba", "llvmlite")  # the prover's kernels; the verifier runs on numpy alone


def imported_top_levels(code: str) -> set[str]:
    """Top-level packages loaded after running ``code`` in a fresh interpreter."""
    code += "\nimport sys; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.splitlines()[-1].split())


def test_verifier_imports_neither_prover_nor_engine_nor_compiler():
    loaded = imported_top_levels("import verifier, verifier.claims")
    assert not loaded & {*FORBIDDEN, *COMPILERS}, loaded & {*FORBIDDEN, *COMPILERS}


def test_verifying_a_claim_loads_no_compiler(tmp_path):
    module = wasmtime.wat2wasm('(module (func (export "sq") (param i32) (result i32) '
                               '(i32.mul (local.get 0) (local.get 0))))')
    (tmp_path / "claim").write_bytes(prove_claim(module, "sq", [12]).encode())
    (tmp_path / "vk").write_bytes(vk_of(module))
    loaded = imported_top_levels(
        "from verifier.claims import verify_claim\n"
        f"verdict = verify_claim(open({str(tmp_path / 'claim')!r}, 'rb').read(), "
        f"open({str(tmp_path / 'vk')!r}, 'rb').read())\n"
        "assert verdict.valid, verdict.reason")
    assert not loaded & {*FORBIDDEN, *COMPILERS}, loaded & {*FORBIDDEN, *COMPILERS}


def test_circuits_import_no_higher_layer():
    loaded = imported_top_levels("import circuits.air, circuits.examples.fibonacci, "
                                 "circuits.examples.range_check, circuits.wasm_vm")
    assert not loaded & {"verifier", *FORBIDDEN, *COMPILERS}
