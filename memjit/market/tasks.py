"""Task types (like subnets): what a worker of a task exports, what input it takes, who scores.

A task names the function export its workers implement (no arguments, one i32 result), the
size of the input the worker reads from its exported `memjit_input` buffer, the number of
labels, the sandbox limits every call of a worker runs under (a fault or a missed deadline is
slashed), and the CID of a scorer module: `score(predicted: i32, label: i32) -> i32` in
0..1_000_000, run in the sandbox, deterministic. The built-in `digits` task classifies 8x8
images (64 bytes, pixels 0..16) into 10 labels; the committed held-out set
(memjit/workers/digits_test.bin) gives labelled images.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memjit.errors import BadInput, UnsupportedModule
from memjit.runtime.sandbox import Limits
from memjit.runtime.store import Store, cid_of
from memjit.runtime.tensor_io import INPUT_GLOBAL, buffer_address
from memjit.runtime.wasm import load
from memjit.workers import WORKERS_DIR

SCORE_EXPORT = "score"
MAX_SCORE = 1_000_000
TEST_MAGIC = b"MJDIGIT1"
DIGITS_TEST_SET = WORKERS_DIR / "digits_test.bin"
DIGITS_SCORER = WORKERS_DIR / "digits_score.wasm"


@dataclass(frozen=True)
class Task:
    """A task type: the export its workers implement, its input size and the largest value
    of an input byte, its number of labels, the limits of one worker call and its scorer's
    CID."""

    name: str
    export: str
    input_size: int
    input_max: int
    labels: int
    limits: Limits
    scorer_cid: str

    def check_input(self, input_bytes: bytes) -> None:
        """Refuse (BadInput) an input this task's workers are not made for: another size,
        or a byte above `input_max` (a digits pixel is 0..16)."""
        if len(input_bytes) != self.input_size:
            raise BadInput(f"task {self.name!r} takes an input of {self.input_size} bytes, "
                           f"got {len(input_bytes)}")
        values = np.frombuffer(bytes(input_bytes), np.uint8)
        if values.size and int(values.max()) > self.input_max:
            at = int(np.argmax(values > self.input_max))
            raise BadInput(f"task {self.name!r} takes input bytes in 0..{self.input_max}, got "
                           f"{values[at]} at byte {at}")

    def check_worker(self, module: bytes) -> None:
        """Refuse (UnsupportedModule) a module that cannot serve this task."""
        sig = load(module).exports.get(self.export)
        if sig is None or sig.params or sig.results != ("i32",):
            raise UnsupportedModule(
                f"task {self.name!r} needs an export {self.export}() -> i32")
        try:
            buffer_address(load(module), INPUT_GLOBAL, self.input_size)
        except BadInput as exc:
            raise UnsupportedModule(f"task {self.name!r}: {exc}") from None


def read_test_set(path: Path = DIGITS_TEST_SET) -> tuple[np.ndarray, np.ndarray]:
    """A labelled image set: (uint8 images N x 64, uint8 labels N).

    Format: the 8 bytes `MJDIGIT1`, the count N as u32 little-endian, N images of 64 bytes
    (8x8 row-major, pixels 0..16), then N labels of one byte (0..9); nothing after.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read test set {path}: {exc.strerror or exc}") from None
    if len(data) < 12 or data[:8] != TEST_MAGIC:
        raise BadInput(f"{path} is not a digits test set (bad magic)")
    (n,) = struct.unpack_from("<I", data, 8)
    if len(data) != 12 + 65 * n:
        raise BadInput(f"{path}: expected {12 + 65 * n} bytes for {n} images, got {len(data)}")
    images = np.frombuffer(data, np.uint8, 64 * n, 12).reshape(n, 64)
    labels = np.frombuffer(data, np.uint8, n, 12 + 64 * n)
    if images.max(initial=0) > 16 or labels.max(initial=0) > 9:
        raise BadInput(f"{path}: pixel or label out of range")
    return images, labels


def builtin_tasks(store: Store) -> dict[str, Task]:
    """The shipped tasks, their scorers put into `store`."""
    module = DIGITS_SCORER.read_bytes()
    scorer = cid_of(module)
    if not store.has(scorer):
        store.put(module)
    # The trained models answer within ~32k steps; the budget bounds what a proof may cost.
    limits = Limits(fuel=200_000, timeout_s=2.0, memory_mb=16)
    return {"digits": Task("digits", "classify", 64, 16, 10, limits, scorer)}


def get_task(store: Store, name: str) -> Task:
    """The task called `name` (BadInput naming the known ones otherwise)."""
    tasks = builtin_tasks(store)
    if name not in tasks:
        raise BadInput(f"unknown task {name!r}; known: {', '.join(sorted(tasks))}")
    return tasks[name]
