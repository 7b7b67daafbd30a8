"""Example workers: each runs in the sandbox with results computed independently in Python."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zlib

import numpy as np
import pytest
import wasmtime

from memjit.errors import MemoryCapExceeded, OutOfFuel, Trap
from memjit.runtime.sandbox import Limits, check_imports, run
from memjit.workers import NAMES, WORKERS_DIR, gen_mlp_weights, load

MASK = 0xFFFFFFFF


def i32(x: int) -> int:
    x &= MASK
    return x - (1 << 32) if x >> 31 else x


def xorshift_stream(seed: int, n: int) -> list[int]:
    """The workers' generator: xorshift32 (13, 17, 5) from seed, zero seed replaced."""
    x = (seed & MASK) or 0x9E3779B9
    out = []
    for _ in range(n):
        x ^= (x << 13) & MASK
        x ^= x >> 17
        x ^= (x << 5) & MASK
        out.append(x)
    return out


def fib_ref(n: int) -> int:
    if n < 2:
        return n
    a, b = 0, 1
    for _ in range(n - 1):
        a, b = b, (a + b) & MASK
    return i32(b)


def crc32_ref(n: int, seed: int) -> int:
    data = bytes(x & 0xFF for x in xorshift_stream(seed, max(n, 0)))
    return i32(zlib.crc32(data))


def sort_ref(n: int, seed: int) -> int:
    values = sorted(i32(x) for x in xorshift_stream(seed, max(n, 0)))
    return i32(sum(v * (i + 1) for i, v in enumerate(values)))


def mlp_ref(inputs: np.ndarray) -> int:
    w = gen_mlp_weights.weights()
    hidden = w["B1"].astype(np.int64) + w["W1"].astype(np.int64) @ inputs.astype(np.int64)
    hidden = np.clip(hidden >> gen_mlp_weights.SHIFT1, 0, 127)
    scores = w["B2"].astype(np.int64) + w["W2"].astype(np.int64) @ hidden
    return int(np.argmax(scores))  # first maximum, as the C code's strict `>`


def mlp_input(seed: int) -> np.ndarray:
    return np.array([x & 0xFF for x in xorshift_stream(seed, 64)], dtype=np.uint8).view(np.int8)


def test_workers_have_no_imports_and_export_memory() -> None:
    engine = wasmtime.Engine()
    for name in NAMES:
        module = load(name)
        check_imports(module)
        exports = {e.name: e.type for e in wasmtime.Module(engine, module).exports}
        assert isinstance(exports["memory"], wasmtime.MemoryType), name


@pytest.mark.parametrize("n", [-5, 0, 1, 2, 3, 10, 20, 25])
def test_fib(n: int) -> None:
    assert run(load("fib"), "fib", [n]).results == (fib_ref(n),)


def test_fib_is_recursive() -> None:
    # Fuel grows like fib(n) (calls), not like n: the module really recurses.
    fuel = [run(load("fib"), "fib", [n]).fuel_used for n in (10, 15, 20)]
    assert fuel[1] > 8 * fuel[0] and fuel[2] > 8 * fuel[1]


@pytest.mark.parametrize(("n", "seed"), [(0, 1), (1, 1), (5, 0), (100, -7), (1000, 1), (4096, 123456789)])
def test_crc32(n: int, seed: int) -> None:
    assert run(load("crc32"), "crc32", [n, seed]).results == (crc32_ref(n, seed),)


@pytest.mark.parametrize(("n", "seed"), [(-3, 1), (0, 1), (1, 5), (2, 0), (100, 42), (1000, -1), (4096, 7)])
def test_sort(n: int, seed: int) -> None:
    assert run(load("sort"), "sort", [n, seed]).results == (sort_ref(n, seed),)


def test_sort_too_large_traps() -> None:
    with pytest.raises(Trap) as exc:
        run(load("sort"), "sort", [4097, 1])
    assert exc.value.code == "unreachable"


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 42, -1, 2**31 - 1, 123456])
def test_mlp_classify(seed: int) -> None:
    result = run(load("mlp"), "classify", [seed])
    inputs = mlp_input(seed)
    assert result.results == (mlp_ref(inputs),)
    # The input buffer the worker filled is visible in its final memory.
    address = _memjit_input_address()
    assert result.memory is not None
    assert result.memory[address : address + 64] == inputs.tobytes()


def test_mlp_classes_vary() -> None:
    classes = {run(load("mlp"), "classify", [seed]).results[0] for seed in range(60)}
    assert len(classes) >= 5


def test_mlp_classify_input_on_zero_buffer() -> None:
    assert run(load("mlp"), "classify_input", []).results == (mlp_ref(np.zeros(64, np.int8)),)


def _memjit_input_address() -> int:
    store = wasmtime.Store()
    instance = wasmtime.Instance(store, wasmtime.Module(store.engine, load("mlp")), [])
    address = instance.exports(store)["memjit_input"].value(store)  # type: ignore[union-attr]
    assert isinstance(address, int)
    return address


@pytest.mark.parametrize(("name", "export", "args"), [("fib", "fib", [12]), ("sort", "sort", [200, 3]), ("crc32", "crc32", [50, 9]), ("mlp", "classify", [5])])
def test_fuel_budget_is_exact(name: str, export: str, args: list[int]) -> None:
    used = run(load(name), export, args).fuel_used
    assert run(load(name), export, args, Limits(fuel=used)).fuel_used == used
    with pytest.raises(OutOfFuel):
        run(load(name), export, args, Limits(fuel=used - 1))


def strops_ref(n: int, seed: int) -> int:
    x, m, text = (seed | 1) & MASK, min(n, 512), []
    for _ in range(m):
        x ^= (x << 13) & MASK
        x ^= x >> 17
        x ^= (x << 5) & MASK
        text.append("abcd"[x & 3])
    return "".join(text).count("abcd")


@pytest.mark.parametrize(("n", "seed"), [(0, 1), (3, 1), (500, 7), (300_000, 3), (4_000_000, 9)])
def test_strops(n: int, seed: int) -> None:
    assert run(load("strops"), "count", [n, seed]).results == (strops_ref(n, seed),)


def test_strops_grows_its_memory_up_to_the_cap() -> None:
    assert run(load("strops"), "count", [-1, 1]).results == (-1,)
    with pytest.raises(MemoryCapExceeded):  # 70 MB on a heap without a declared maximum
        run(load("strops"), "count", [70_000_000, 1])


def test_mlp_header_is_generated_from_the_script() -> None:
    assert (WORKERS_DIR / "mlp_weights.h").read_text() == gen_mlp_weights.header()


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("wasm-ld") is None, reason="needs clang and wasm-ld")
def test_committed_modules_rebuild_identically(tmp_path) -> None:
    for path in WORKERS_DIR.iterdir():
        if path.suffix in {".c", ".h", ".py"} or path.name == "Makefile":
            shutil.copy(path, tmp_path / path.name)
    subprocess.run(["make", "-s", "-C", str(tmp_path), f"PYTHON={sys.executable}"], check=True, capture_output=True)
    for name in NAMES:
        assert (tmp_path / f"{name}.wasm").read_bytes() == load(name), name
