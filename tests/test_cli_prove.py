"""`memjit vk | prove | verify`: outputs, JSON, exit codes and one stderr line per error."""

from __future__ import annotations

import json
import subprocess
import sys

import wasmtime

from helpers import cli
from memjit.workers import wasm_path
from verifier.claims import vk_digest


def test_vk_prove_verify(capsys, monkeypatch, tmp_path):
    vk, claim = tmp_path / "fib.vk", tmp_path / "fib.claim"
    code, out, err = cli(capsys, monkeypatch, "vk", str(wasm_path("fib")), "--out", str(vk))
    assert (code, err) == (0, "") and out.strip() == vk_digest(vk.read_bytes()).hex()
    code, out, err = cli(capsys, monkeypatch, "prove", str(wasm_path("fib")), "--export", "fib",
                         "--args", "6", "--out", str(claim))
    assert (code, err) == (0, "") and out.splitlines()[0] == "result: 8"
    assert out.splitlines()[1].startswith("steps: ") and "(trace of 2^" in out.splitlines()[1]
    assert f"claim: {claim} ({claim.stat().st_size} bytes, proved in " in out
    code, out, err = cli(capsys, monkeypatch, "prove", str(wasm_path("fib")), "--export", "fib",
                         "--args", "6", "--out", str(claim), "--json")
    report = json.loads(out)
    assert (code, err) == (0, "") and report["result"] == 8 and report["trap"] is None
    assert report["claim_bytes"] == claim.stat().st_size and report["steps"] < 1 << report["log_rows"]
    assert {"run", "witness", "lde", "constraints", "deep"} <= set(report["phases_s"])
    assert report["security_bits"] >= 100 and report["limited_by"] == "fri_queries"
    code, out, err = cli(capsys, monkeypatch, "verify", str(claim), "--vk", str(vk), "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["valid"] and report["result"] == 8 and report["args"] == [6]
    assert report["nonce"] == "00" * 32  # a proof made outside the market answers no request
    assert report["security_bits"] >= 100 and report["limited_by"] == "fri_queries"
    # global options go through the typer application, which forwards to the same command
    code, out2, err = cli(capsys, monkeypatch, "--home", str(tmp_path), "verify", str(claim),
                          "--vk", str(vk), "--json")
    assert (code, err, json.loads(out2)) == (0, "", report)
    code, out, err = cli(capsys, monkeypatch, "verify", str(claim), "--program", str(wasm_path("fib")))
    assert code == 0 and out.startswith("valid: fib returned 8")

    # another program, a tampered claim, a malformed claim, bad usage
    code, _, err = cli(capsys, monkeypatch, "verify", str(claim), "--program", str(wasm_path("crc32")))
    assert code == 1 and len(err.splitlines()) == 1 and "another program" in err
    data = bytearray(claim.read_bytes())
    data[len(data) // 2] ^= 4
    bad = tmp_path / "bad.claim"
    bad.write_bytes(bytes(data))
    code, _, err = cli(capsys, monkeypatch, "verify", str(bad), "--vk", str(vk))
    assert code == 1 and len(err.splitlines()) == 1
    bad.write_bytes(b"MJCLAIM\x01garbage")
    code, _, err = cli(capsys, monkeypatch, "verify", str(bad), "--vk", str(vk))
    assert code == 2 and len(err.splitlines()) == 1
    code, _, err = cli(capsys, monkeypatch, "verify", str(claim))
    assert code == 2 and len(err.splitlines()) == 1
    code, _, err = cli(capsys, monkeypatch, "verify", str(tmp_path / "missing"), "--vk", str(vk))
    assert code == 2 and len(err.splitlines()) == 1
    code, _, err = cli(capsys, monkeypatch, "verify", str(claim), "--vk", str(vk), "--bogus")
    assert code == 2 and err == "memjit: verify: unrecognized arguments: --bogus\n"

    # from the shell, `memjit verify --vk` loads neither the CLI framework nor the prover
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from memjit.cli import main; "
         f"sys.argv = ['memjit', 'verify', {str(claim)!r}, '--vk', {str(vk)!r}]; main(); "
         "print(' '.join({m.split('.')[0] for m in sys.modules}))"],
        check=True, capture_output=True, text=True).stdout.splitlines()[-1].split()
    assert not {"typer", "pydantic", "numba", "prover", "wasmtime"} & set(loaded)


def test_prove_unsupported_module_exit_2(capsys, monkeypatch, tmp_path):
    module = tmp_path / "grow.wasm"
    module.write_bytes(wasmtime.wat2wasm('(module (memory 1) (func (export "f") (param i32) '
                                         '(result i32) (memory.grow (local.get 0))))'))
    for command in ("prove", "vk"):
        argv = (command, str(module), *(("--export", "f", "--args", "7", "--out",
                                         str(tmp_path / "x")) if command == "prove" else ()))
        code, _, err = cli(capsys, monkeypatch, *argv, "--memory-mb", "128")
        assert code == 2 and len(err.splitlines()) == 1 and "can reach 2048 pages" in err
    code, out, err = cli(capsys, monkeypatch, "prove", str(module), "--export", "f", "--args", "7",
                         "--out", str(tmp_path / "x"))  # under the default cap of 64 MiB
    assert (code, err) == (0, "") and out.startswith("result: 1")


def test_a_call_outside_the_provable_subset_exit_2_its_neighbours_prove(capsys, monkeypatch,
                                                                        tmp_path):
    module = tmp_path / "load.wasm"
    module.write_bytes(wasmtime.wat2wasm('(module (memory 1) (func (export "f") (param i32) '
                                         '(result i32) (i32.load align=4 (local.get 0))))'))
    argv = ("prove", str(module), "--export", "f", "--out", str(tmp_path / "c"), "--args")
    code, _, err = cli(capsys, monkeypatch, *argv, "1")  # unaligned despite its natural hint
    assert code == 2 and len(err.splitlines()) == 1 and "this call is not provable" in err
    assert not (tmp_path / "c").exists()
    code, out, err = cli(capsys, monkeypatch, *argv, "8")
    assert (code, err) == (0, "") and out.startswith("result: 0")


def test_a_prover_failing_its_own_check_exit_70_naming_where(capsys, monkeypatch, tmp_path):
    # a witness bug (simulated: one wrong cell) must end in one line naming the constraint,
    # the row and its instruction, never a traceback, and write no claim
    import memjit.runtime.claims as claims
    from circuits.wasm_vm.columns import COL

    honest = claims.witness

    def buggy(*args, **kwargs):
        main, st = honest(*args, **kwargs)
        main[COL["R0"], 2] ^= 1
        return main, st

    monkeypatch.setattr(claims, "witness", buggy)
    code, out, err = cli(capsys, monkeypatch, "prove", str(wasm_path("fib")), "--export", "fib",
                         "--args", "6", "--out", str(tmp_path / "c"))
    assert code == 70 and out == "" and len(err.splitlines()) == 1
    assert "own check failed" in err and "fails at row 2 (trace row 2: pc " in err
    assert "constraint " in err and "bug in memjit" in err and not (tmp_path / "c").exists()
