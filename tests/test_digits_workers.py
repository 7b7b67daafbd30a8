"""The digits task: the committed test set, each worker's sandboxed answers against its numpy
reference (exactly), the faulting worker, the scorer and the input plumbing."""

from __future__ import annotations

import numpy as np
import pytest
import wasmtime

from memjit.errors import BadInput, DeadlineExceeded, OutOfFuel
from memjit.runtime.sandbox import Limits, run
from memjit.runtime.store import Store
from memjit.market.tasks import MAX_SCORE, builtin_tasks, read_test_set
from memjit.runtime.wasm import load
from memjit.runtime.wasm.opcodes import OP_NAMES
from memjit.workers import WORKERS_DIR
from memjit.workers.train_digits import forward, read_header

IMAGES, LABELS = read_test_set()
DIGITS = ("small", "large", "random", "constant", "loop", "xl", "small_dot", "large_dot",
          "xl_dot")
# Held-out accuracy of each model's numpy reference (train_digits.py prints the same numbers).
ACCURACY = {"small": (0.60, 0.80), "large": (0.95, 1.0), "random": (0.0, 0.25),
            "xl": (0.97, 1.0)}


def _module(name: str) -> bytes:
    return (WORKERS_DIR / f"digits_{name}.wasm").read_bytes()


def test_the_test_set_is_held_out_and_well_formed() -> None:
    assert IMAGES.shape == (360, 64) and LABELS.shape == (360,)
    assert IMAGES.max() == 16 and set(LABELS.tolist()) == set(range(10))


@pytest.mark.parametrize("name", sorted(ACCURACY))
def test_worker_matches_its_numpy_reference_exactly(name: str) -> None:
    expected = forward(read_header(WORKERS_DIR / f"digits_{name}_weights.h"), IMAGES)
    module = _module(name)
    got = np.array([run(module, "classify", input_bytes=img.tobytes()).results[0]
                    for img in IMAGES])
    np.testing.assert_array_equal(got, expected)
    low, high = ACCURACY[name]
    assert low <= float(np.mean(got == LABELS)) <= high


@pytest.mark.parametrize("name", ["small", "large", "xl"])
def test_precompile_worker_answers_as_its_plain_version(name: str) -> None:
    """digits_<name>_dot (memjit.h's matrix-vector products on the precompiles) computes
    exactly what the plain-C version does."""
    expected = forward(read_header(WORKERS_DIR / f"digits_{name}_weights.h"), IMAGES)
    module = _module(f"{name}_dot")
    got = np.array([run(module, "classify", input_bytes=img.tobytes()).results[0]
                    for img in IMAGES])
    np.testing.assert_array_equal(got, expected)


def test_constant_worker_always_answers_one() -> None:
    module = _module("constant")
    assert {run(module, "classify", input_bytes=img.tobytes()).results[0]
            for img in IMAGES[:20]} == {1}


def test_loop_worker_is_stopped() -> None:
    module, image = _module("loop"), IMAGES[0].tobytes()
    with pytest.raises(OutOfFuel):
        run(module, "classify", (), Limits(fuel=100_000), image)
    with pytest.raises(DeadlineExceeded):
        run(module, "classify", (), Limits(fuel=(1 << 63) - 1, timeout_s=0.2), image)


@pytest.mark.parametrize("name", DIGITS + ("score",))
def test_workers_are_plain_integer_code(name: str) -> None:
    ops = {OP_NAMES[op] for op in np.unique(load(_module(name)).op)}
    assert not {op for op in ops if op.startswith("i64.") or "div" in op or "rem" in op}


def test_scorer() -> None:
    scorer = (WORKERS_DIR / "digits_score.wasm").read_bytes()
    assert run(scorer, "score", [7, 7]).results == (MAX_SCORE,)
    assert run(scorer, "score", [7, 1]).results == (0,)
    assert run(scorer, "score", [-1, 0]).results == (0,)


def test_digits_task_accepts_its_workers(tmp_path) -> None:
    task = builtin_tasks(Store(tmp_path))["digits"]
    assert (task.export, task.input_size) == ("classify", 64)
    scorer = (WORKERS_DIR / "digits_score.wasm").read_bytes()
    assert Store(tmp_path).get(task.scorer_cid) == scorer
    for name in DIGITS:
        task.check_worker(_module(name))


def test_input_plumbing_refuses_what_does_not_fit() -> None:
    with pytest.raises(BadInput, match="does not fit"):
        run(_module("small"), "classify", input_bytes=bytes(3 * 65536))
    no_global = wasmtime.wat2wasm('(module (memory 1) '
                                  '(func (export "f") (result i32) i32.const 0))')
    with pytest.raises(BadInput, match="memjit_input"):
        run(no_global, "f", input_bytes=bytes(64))
    with_data = wasmtime.wat2wasm(
        '(module (memory (export "memory") 1) (global (export "memjit_input") i32 (i32.const 16))'
        ' (func (export "f") (result i32) i32.const 16 i32.load8_u)'
        ' (data (i32.const 16) "\\05"))')
    assert run(with_data, "f").results == (5,)
    assert run(with_data, "f", input_bytes=b"\x09").results == (9,)  # the input wins
    hidden = wasmtime.wat2wasm('(module (memory 1) (global (export "memjit_input") i32 '
                               '(i32.const 16)) (func (export "f")))')
    with pytest.raises(BadInput, match="export its memory"):
        run(hidden, "f", input_bytes=b"\x09")


def test_malformed_test_set_is_refused(tmp_path) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(b"MJDIGIT1\x02\x00\x00\x00" + bytes(64))
    with pytest.raises(BadInput, match="expected 142 bytes"):
        read_test_set(path)


def test_a_classification_is_proven_and_bound_to_its_input() -> None:
    import dataclasses

    from memjit.runtime.claims import prove_claim, vk_of
    from verifier.claims import Claim, verify_claim

    module = _module("small")
    claim = prove_claim(module, "classify", [], input_bytes=IMAGES[0].tobytes())
    expected = forward(read_header(WORKERS_DIR / "digits_small_weights.h"), IMAGES[:1])[0]
    assert claim.statement.result == expected and claim.statement.input == IMAGES[0].tobytes()
    vk = vk_of(module)
    assert verify_claim(claim.encode(), vk).valid
    other = dataclasses.replace(claim.statement, input=IMAGES[1].tobytes())
    assert not verify_claim(Claim(other, claim.proof).encode(), vk).valid
