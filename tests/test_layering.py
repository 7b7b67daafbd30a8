"""The package layering of DESIGN.md: the verifier is embeddable on its own."""

import subprocess
import sys

FORBIDDEN = ("prover", "memjit", "wasmtime", "benchmarks")


def imported_top_levels(module: str) -> set[str]:
    code = (f"import sys, {module}; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


def test_verifier_imports_neither_prover_nor_engine():
    loaded = imported_top_levels("verifier")
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)


def test_circuits_import_no_higher_layer():
    loaded = imported_top_levels("circuits.air, circuits.examples.fibonacci, circuits.examples.range_check")
    assert not loaded & {"verifier", *FORBIDDEN}
