"""`memjit request` as a user runs it: the best verified answer on stdout (JSON or a table),
and for every failure one stderr line and the documented exit code (1 rejected, 2 bad input,
3 when every worker asked faulted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import cli

from memjit.market.tasks import read_test_set
from memjit.workers import WORKERS_DIR

IMAGES, LABELS = read_test_set()


def _add(capsys, monkeypatch, home: str, name: str) -> str:
    code, out, err = cli(capsys, monkeypatch, "--home", home, "worker", "add",
                         str(WORKERS_DIR / f"digits_{name}.wasm"), "--stake", "500",
                         "--owner", name, "--json")
    assert (code, err) == (0, ""), err
    return json.loads(out)["id"]


def test_request_exit_codes_from_faults_to_answers(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    home = str(tmp_path / "home")
    image = tmp_path / "image.bin"
    image.write_bytes(IMAGES[0].tobytes())
    ask = ("--home", home, "request", "--task", "digits", "--input", str(image))

    code, _, err = cli(capsys, monkeypatch, *ask)
    assert (code, err) == (1, "memjit: no active worker serves task 'digits'\n")
    loop = _add(capsys, monkeypatch, home, "loop")
    code, out, err = cli(capsys, monkeypatch, *ask, "--json")  # every worker faulted: exit 3
    assert code == 3 and err.count("\n") == 1 and "no verified answer" in err
    assert [(c["worker"], c["outcome"], c["slashed"]) for c in json.loads(out)["calls"]] == [
        (loop, "fault", 50)]
    liar = _add(capsys, monkeypatch, home, "liar")
    code, out, err = cli(capsys, monkeypatch, *ask)  # a caught liar: rejected, exit 1
    assert code == 1 and err.count("\n") == 1 and "no verified answer" in err
    assert liar[:16] in out and "invalid claim" in out

    small = _add(capsys, monkeypatch, home, "small")
    code, out, err = cli(capsys, monkeypatch, *ask, "--label", str(LABELS[0]), "--top-k", "3",
                         "--json")  # a requester without validator stake: answers, no scores
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert (report["result"], report["worker"], report["scored_against"], report["basis"]) == (
        int(LABELS[0]), small, None, None)
    assert {c["worker"]: c["outcome"] for c in report["calls"]} == {
        small: "unscored", loop: "fault", liar: "invalid"}
    code, out, err = cli(capsys, monkeypatch, "--home", home, "validator", "bond", "--stake",
                         "5000", "--json")
    assert (code, json.loads(out)["stake"]) == (0, 5_000)
    code, out, err = cli(capsys, monkeypatch, *ask, "--label", str(LABELS[0]), "--top-k", "1")
    assert (code, err) == (0, "")
    assert out.startswith(f"result: {LABELS[0]} (worker {small[:16]}, score 1.000)")
    assert f"scored against {LABELS[0]} (label, EMA rate 0.010)" in out  # 5% of the full stake
    code, out, _ = cli(capsys, monkeypatch, "--home", home, "worker", "show", loop, "--json")
    assert json.loads(out)["stake"] == 500 - 50 - 45 - 41  # slashed at each of its 3 calls
    code, out, err = cli(capsys, monkeypatch, "--home", home, "balance", "requester", "--json")
    held = json.loads(out)
    assert code == 0 and (held["bonded"], held["unbonding"], held["earned"]) == (5_000, 0, 0)
    assert held["free"] == 10_000 - 5_000 - 10 - 11  # the faucet, bonded, two fees to small
    assert held["accruing"] == 0  # the requester owns no worker


def test_bad_requests_are_one_line_and_exit_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    home = str(tmp_path / "home")
    short, image = tmp_path / "short.bin", tmp_path / "image.bin"
    short.write_bytes(bytes(63))
    image.write_bytes(IMAGES[0].tobytes())
    for argv, words in [
        (("--input", str(tmp_path / "missing.bin")), "cannot read"),
        (("--input", str(short)), "input of 64 bytes, got 63"),
        (("--input", str(short), "--task", "chess"), "unknown task 'chess'"),
        (("--input", str(image), "--label", "10"), "label must be in 0..9"),
    ]:
        task = () if "--task" in argv else ("--task", "digits")
        code, _, err = cli(capsys, monkeypatch, "--home", home, "request", *task, *argv)
        assert code == 2 and err.count("\n") == 1 and words in err, (argv, err)
    code, _, err = cli(capsys, monkeypatch, "--home", home, "request", "--input", str(short))
    assert code == 2 and err.count("\n") == 1 and "--task" in err
