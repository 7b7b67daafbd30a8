"""The example workers: C sources and their committed .wasm builds (rebuild with `make workers`).

| worker | exports |
|---|---|
| fib    | `fib(n: i32) -> i32` (doubly recursive) |
| crc32  | `crc32(n: i32, seed: i32) -> i32` (CRC-32/IEEE of n xorshift32 bytes, bitwise) |
| sort   | `sort(n: i32, seed: i32) -> i32` (heap sort of n <= 4096 xorshift32 words; checksum) |
| mlp    | `classify(seed: i32) -> i32`, `classify_input() -> i32`, global `memjit_input` |
| divmix | `mix(n: i32, seed: i32) -> i32` (div/rem signed and unsigned, rotations, bit counts) |
| switch | `interp(n: i32, seed: i32) -> i32` (register machine on a dense switch: br_table) |
| fnptr  | `apply(n: i32, seed: i32) -> i32` (fold through a function-pointer table: call_indirect) |
| fnv64  | `fnv(n: i32, seed: i32) -> i32` (FNV-1a-64 of xorshift64* bytes: i64 mul, shifts, xor) |
| mix64  | `mix(n: i32, seed: i64) -> i64` (i64 div/rem of every divisor size, rotations, bit counts, 64-bit memory) |
| dense  | `dense(n: i32) -> i32` (int8 layer on `memjit_input`, int32 ReLU outputs at `memjit_output`) |
| strops | `count(n: i32, seed: i32) -> i32` ("abcd" found by unaligned 4-byte compares in a heap grown by memory.grow, no declared maximum) |
"""

from __future__ import annotations

from pathlib import Path

WORKERS_DIR = Path(__file__).resolve().parent
NAMES = ("fib", "crc32", "sort", "mlp", "divmix", "switch", "fnptr", "fnv64", "mix64", "dense",
         "strops")


def wasm_path(name: str) -> Path:
    """Path of the committed module of worker `name` (one of NAMES)."""
    if name not in NAMES:
        raise KeyError(f"unknown worker {name!r}; known: {', '.join(NAMES)}")
    return WORKERS_DIR / f"{name}.wasm"


def load(name: str) -> bytes:
    """The module bytes of worker `name`."""
    return wasm_path(name).read_bytes()
