"""The package layering of docs/architecture.md: dependencies run one way.

Two checks. At run time, the verifier is embeddable on its own and light: importing it, and
verifying a claim with it, loads neither the prover nor the engine nor wasmtime, nor the prover's
compiler (numba, llvmlite). Statically, every import in the source tree (function-local ones
included) goes from a layer to a strictly lower one, or stays inside its own package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import wasmtime

from memjit.runtime.claims import prove_claim, vk_of

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("prover", "memjit", "wasmtime", "benchmarks")
COMPILERS = ("numba", "llvmlite")  # the prover's kernels; the verifier runs on numpy alone

# Lower rank = lower layer. A module may import a module of strictly lower rank, or one of its
# own package (the longest matching prefix names the package).
RANKS = {
    "memjit.errors": 0,
    "memjit.workers": 0,  # the example modules and their data (the package itself imports nothing)
    "circuits": 1,
    "verifier": 2,
    "prover": 3,
    "memjit.runtime": 4,
    "memjit.cluster": 4.5,  # the distributed proving engine (Dask): runs runtime work, used by the pool
    "memjit.market": 5,
    "memjit.rollup": 6,
    "memjit.explorer": 6.5,  # web pages over the market and rollup state; the node mounts them
    "memjit.discovery": 6.7,  # the libp2p DHT: node and provider records
    "memjit.node": 7,
    "benchmarks": 8,
    "memjit.workers.digits_liar": 9,  # a dishonest operator: an actor the demo and tests hand in
    "memjit.demo": 10,
    "memjit.cli": 11,
}


def imported_top_levels(code: str) -> set[str]:
    """Top-level packages loaded after running ``code`` in a fresh interpreter."""
    code += "\nimport sys; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.splitlines()[-1].split())


def test_verifier_imports_neither_prover_nor_engine_nor_compiler():
    loaded = imported_top_levels("import verifier, verifier.claims, verifier.batch")
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


def layer(module: str) -> str | None:
    """The layer (a key of RANKS) a dotted module name belongs to, or None (third party)."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in RANKS:
            return ".".join(parts[:i])
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in a file."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                package = module_name(path).split(".")[:-1 if path.name != "__init__.py" else None]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            # `from pkg import mod` imports pkg.mod when mod is a module of pkg
            found += [(node.lineno, f"{base}.{alias.name}"
                       if (ROOT / base.replace(".", "/") / alias.name).with_suffix(".py").exists()
                       or (ROOT / base.replace(".", "/") / alias.name).is_dir() else base)
                      for alias in node.names]
    return found


def violations() -> list[str]:
    bad = []
    for top in ("circuits", "verifier", "prover", "memjit", "benchmarks"):
        for path in sorted((ROOT / top).rglob("*.py")):
            here = layer(module_name(path))
            if here is None:
                continue
            for line, target in imports_of(path):
                there = layer(target)
                if there is None or there == here:
                    continue
                if RANKS[there] >= RANKS[here]:
                    bad.append(f"{path.relative_to(ROOT)}:{line}: {here} imports {target} ({there})")
    return bad


def test_every_import_points_down_the_layers():
    assert violations() == []


def test_the_layer_check_sees_function_local_imports(tmp_path: Path) -> None:
    """The rule would catch the circle the layout issue found: the pool importing the liar."""
    pool = ROOT / "memjit" / "market" / "pool.py"
    assert layer("memjit.workers.digits_liar") != layer(module_name(pool))
    assert RANKS[layer("memjit.workers.digits_liar")] > RANKS[layer(module_name(pool))]
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from memjit.workers import digits_liar\n")
    assert (2, "memjit.workers.digits_liar") in imports_of(source)
