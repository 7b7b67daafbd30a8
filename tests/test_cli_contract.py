"""The CLI contract as a new user meets it (docs/architecture.md, "The CLI contract"): every
mistake ends in one line on stderr and its exit code (1 rejected, 2 bad input, 3 worker fault,
130 interrupted), global options go on either side of the command, reading commands work on
a read-only home and create nothing, worker ids are taken by unique prefix, output paths are
checked before any work."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli, ledger_dump

from memjit.market import validators
from memjit.market.epoch import advance
from memjit.market.identity import Identity
from memjit.market.ledger import Ledger, Worker
from memjit.market.pool import request
from memjit.market.registry import register
from memjit.market.tasks import read_test_set
from memjit.rollup.batcher import commit_pending
from memjit.runtime.store import Store
from memjit.workers import WORKERS_DIR

IMAGES, LABELS = read_test_set()
FIB = str(WORKERS_DIR / "fib.wasm")
DENSE = str(WORKERS_DIR / "dense.wasm")
SMALL = WORKERS_DIR / "digits_small.wasm"
HUGE = str(2**70)


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("memjit: ") and "Traceback" not in err


@pytest.fixture(scope="module")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a worker, one settled request and one committed batch (made once)."""
    home = tmp_path_factory.mktemp("data-home")
    store = Store(home)
    with Ledger(home) as ledger:
        register(ledger, store, Identity.from_seed("alice", b"\x01" * 32), SMALL.read_bytes(), 500)
        bob = Identity.from_seed("bob", b"\x02" * 32)
        validators.bond(ledger, bob, 5_000)  # bob's label scores the answer: a fact
        request(ledger, store, bob, "digits", IMAGES[0].tobytes(), label=int(LABELS[0]), top_k=1)
        advance(ledger, close_now=True)  # the day's period closes now: its fact is recorded
        assert len(commit_pending(ledger, store, home)) == 1
    return home


@pytest.fixture
def home(data_home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(data_home, copy)
    return copy


def _worker_id(home: Path) -> str:
    with Ledger(home, readonly=True) as ledger:
        (worker,) = ledger.workers()
    return worker.id


# --- numbers, homes, usage ----------------------------------------------------------------

def test_huge_and_out_of_range_numbers_are_bad_input(home: Path, capsys, monkeypatch) -> None:
    wid = _worker_id(home)
    for argv in (["batch", "show", HUGE], ["batch", "revert", HUGE], ["batch", "audit", "0"],
                 ["batch", "proof", wid, "--batch", HUGE], ["batch", "show", "0"],
                 ["batch", "commit", "--max-facts", HUGE], ["request", "--task", "digits",
                                                           "--input", "x", "--top-k", HUGE]):
        code, _, err = cli(capsys, monkeypatch, "--home", str(home), *argv)
        assert code == 2 and one_line(err) and "Invalid value" in err, (argv, err)


def test_a_home_that_is_a_file_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    for argv in (["demo"], ["worker", "list"], ["batch", "list"], ["batch", "commit"],
                 ["request", "--task", "digits", "--input", str(afile)]):
        code, _, err = cli(capsys, monkeypatch, "--home", str(afile), *argv)
        assert (code, err) == (2, f"memjit: --home {afile} is not a directory\n"), argv
    code, _, err = cli(capsys, monkeypatch, "worker", "add", FIB, "--stake", "100",
                       "--home", str(afile / "below"))
    assert code == 2 and one_line(err) and "Not a directory" in err
    assert afile.read_text() == "not a directory"


def test_no_command_prints_the_help_and_exits_0(capsys, monkeypatch) -> None:
    code, out, err = cli(capsys, monkeypatch)
    assert (code, err) == (0, "") and "Usage: memjit" in out and "request" in out
    code, out, err = cli(capsys, monkeypatch, "batch")
    assert (code, err) == (0, "") and "Usage: memjit batch" in out and "audit" in out
    code, _, err = cli(capsys, monkeypatch, "frobnicate")
    assert code == 2 and one_line(err) and "frobnicate" in err


def test_global_options_on_either_side(home: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    wid = _worker_id(home)
    for argv in (["--home", str(home), "worker", "list", "--json"],
                 ["worker", "list", "--json", "--home", str(home)],
                 ["worker", "--home", str(home), "list", "--json"],
                 ["--home", str(tmp_path / "elsewhere"), "worker", "list", "--home", str(home),
                  "--json"]):  # the one nearest the command wins
        code, out, err = cli(capsys, monkeypatch, *argv)
        assert (code, err) == (0, ""), argv
        assert [w["id"] for w in json.loads(out)["workers"]] == [wid], argv
    monkeypatch.setenv("MEMJIT_HOME", str(tmp_path / "elsewhere"))
    code, out, _ = cli(capsys, monkeypatch, "worker", "list", "--json", "--home", str(home))
    assert [w["id"] for w in json.loads(out)["workers"]] == [wid]
    assert not (tmp_path / "elsewhere").exists()  # reading created nothing
    monkeypatch.delenv("MEMJIT_HOME")
    for argv in (["--node", "127.0.0.1:7000", "batch", "list"],
                 ["batch", "list", "--node", "127.0.0.1:7000"]):
        code, _, err = cli(capsys, monkeypatch, "--home", str(home), *argv)
        assert code == 2 and one_line(err) and "--node 127.0.0.1:7000: this command works on a " \
            "local --home only" in err, argv
    monkeypatch.setenv("MEMJIT_NODE", "127.0.0.1:7000")
    code, _, err = cli(capsys, monkeypatch, "batch", "list", "--home", str(home))
    assert code == 2 and "works on a local --home only" in err


def test_every_mistake_is_one_line_and_exit_2(home: Path, tmp_path: Path, capsys,
                                              monkeypatch) -> None:
    """A sweep of what users mistype, across every command group."""
    image = tmp_path / "image.bin"
    image.write_bytes(IMAGES[0].tobytes())
    state = ["--home", str(home)]
    for argv in [
        ["run", FIB, "--export", "fib", "--args", HUGE],
        ["run", FIB, "--export", "fib", "--args", "5", "--fuel", "-1"],
        ["run", FIB, "--export", "fib", "--args", "5", "--timeout", "nan"],
        ["run", FIB, "--export", "fib", "--args", "5", "--memory-mb", HUGE],
        ["run", FIB, "--export", "fib", "--args", "5", "--output-len", HUGE],
        ["run", FIB, "--export", "nope"], ["run", str(tmp_path), "--export", "fib"],
        ["trace", FIB, "--export", "fib", "--args", "5", "--max-steps", HUGE],
        ["verify", str(tmp_path), "--vk", str(tmp_path)], ["verify", str(image)],
        ["bench", "stark", "--log-rows", HUGE], ["bench", "batcher", "--accounts", HUGE],
        ["bench", "batcher", "--sizes", HUGE], ["bench", "vm", FIB, "--export", "fib",
                                                "--repeats", HUGE],
        [*state, "worker", "show", "f" * 65], [*state, "batch", "show", "-1"],
        [*state, "batch", "commit", "--max-age", "nan"],
        [*state, "batch", "commit", "--challenge-window", "inf"],
        [*state, "batch", "committee", "--add", "../x"],
        [*state, "request", "--task", "digits", "--input", str(image), "--label", HUGE],
        [*state, "request", "--task", "digits", "--input", str(image), "--requester", "a/b"],
        [*state, "request", "--task", "chess", "--input", str(image)],
        [*state, "worker", "add", FIB, "--stake", "500"],
        [*state, "worker", "add", str(SMALL), "--stake", "500", "--task", "t" * 300],
        ["--bogus"], ["worker", "nope"], ["--home"],
    ]:
        code, _, err = cli(capsys, monkeypatch, *argv)
        assert code == 2 and one_line(err), (argv, code, err)


# --- the engine commands -------------------------------------------------------------------

def test_output_paths_are_checked_before_any_work(tmp_path: Path, capsys, monkeypatch) -> None:
    import memjit.runtime.claims as claims
    import memjit.runtime.sandbox as sandbox
    import memjit.runtime.tracer as tracer

    def no_work(*args, **kwargs):
        raise AssertionError("the command worked before checking its output path")

    for module, name in ((claims, "prove_claim"), (claims, "vk_of"), (sandbox, "run"),
                         (tracer, "trace_checked")):
        monkeypatch.setattr(module, name, no_work)
    for argv, where in [
        (["prove", FIB, "--export", "fib", "--args", "5", "--out", str(tmp_path)], "a directory"),
        (["prove", FIB, "--export", "fib", "--args", "5", "--out", str(tmp_path / "no" / "c")],
         "no directory"),
        (["vk", FIB, "--out", str(tmp_path)], "a directory"),
        (["run", FIB, "--export", "fib", "--args", "5", "--output", str(tmp_path)],
         "a directory"),
        (["trace", FIB, "--export", "fib", "--args", "5", "--out", str(tmp_path)],
         "a directory"),
        (["verify", str(tmp_path / "c"), "--vk", "k", "--output", str(tmp_path)], "a directory"),
    ]:
        code, _, err = cli(capsys, monkeypatch, *argv)
        assert code == 2 and one_line(err) and where in err, (argv, err)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_verification_key_is_bad_input_naming_it(tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    claim, key = tmp_path / "fib.claim", tmp_path / "fib.vk"
    code, _, err = cli(capsys, monkeypatch, "prove", FIB, "--export", "fib", "--args", "7",
                       "--out", str(claim))
    assert (code, err) == (0, "")
    assert cli(capsys, monkeypatch, "vk", FIB, "--out", str(key))[0] == 0
    vk = key.read_bytes()
    for name, data in (("empty", b""), ("truncated", vk[:len(vk) // 2]), ("claim", claim.read_bytes()),
                       ("trailing", vk + b"\0")):
        bad = tmp_path / f"{name}.vk"
        bad.write_bytes(data)
        code, _, err = cli(capsys, monkeypatch, "verify", str(claim), "--vk", str(bad))
        assert code == 2 and one_line(err) and f"malformed verification key {bad}:" in err, name
    code, out, err = cli(capsys, monkeypatch, "verify", str(claim), "--vk", str(key))
    assert (code, err) == (0, "") and out.startswith("valid: fib returned 13")


def test_limits_and_inputs_are_bad_input(tmp_path: Path, capsys, monkeypatch) -> None:
    big, fits = tmp_path / "big.bin", tmp_path / "fits.bin"
    big.write_bytes(bytes(33))  # dense's input buffer holds 32 bytes, its output follows
    fits.write_bytes(bytes(range(32)))
    for argv, words in [
        (["run", FIB, "--export", "fib", "--args", "5", "--memory-mb", "0"],
         "--memory-mb 0 is below the module's initial memory (2 pages"),
        (["run", FIB, "--export", "fib", "--args", "5", "--fuel", HUGE], "fuel must be in"),
        (["run", DENSE, "--export", "dense", "--args", "33", "--input", str(big)],
         "input of 33 bytes is larger than the module's input buffer: 32 bytes at 1024"),
        (["prove", DENSE, "--export", "dense", "--args", "33", "--input", str(big), "--out",
          str(tmp_path / "d.claim")], "larger than the module's input buffer"),
    ]:
        code, _, err = cli(capsys, monkeypatch, *argv)
        assert code == 2 and one_line(err) and words in err, (argv, err)
    code, out, err = cli(capsys, monkeypatch, "run", DENSE, "--export", "dense", "--args", "32",
                         "--input", str(fits), "--output-len", "result", "--memory-mb", "1")
    assert (code, err) == (0, "") and "result: 32" in out


# --- the market ----------------------------------------------------------------------------

def test_stake_errors_bad_input_or_rejected(tmp_path: Path, capsys, monkeypatch) -> None:
    """Outside 1..2^53-1 (the rollup leaf's bound) the amount is malformed (2); below the
    task's minimum, or above the owner's free balance, rejected (1)."""
    home = str(tmp_path / "home")
    for stake, code_wanted, words in [
        ("0", 2, "stake must be an integer in 1..9007199254740991 SWT units, got 0"),
        ("-5", 2, "got -5"), (HUGE, 2, f"got {HUGE}"), (str(2**53), 2, f"got {2**53}"),
        (str(2**53 - 1), 1, "stake 9007199254740991 SWT is above the free balance"),
        ("1", 1, "stake 1 is below the minimum stake 100"),
    ]:
        code, _, err = cli(capsys, monkeypatch, "worker", "add", str(SMALL), "--stake", stake,
                           "--home", home)
        assert code == code_wanted and one_line(err) and words in err, (stake, err)


def test_a_task_refuses_inputs_it_is_not_made_for(home: Path, tmp_path: Path, capsys,
                                                  monkeypatch) -> None:
    before = ledger_dump(home)
    image = bytearray(IMAGES[0].tobytes())
    image[9] = 200
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(image))
    code, _, err = cli(capsys, monkeypatch, "--home", str(home), "request", "--task", "digits",
                       "--input", str(bad))
    assert (code, err) == (2, "memjit: task 'digits' takes input bytes in 0..16, got 200 at "
                              "byte 9\n")
    bad.write_bytes(bytes(65))
    code, _, err = cli(capsys, monkeypatch, "--home", str(home), "request", "--task", "digits",
                       "--input", str(bad))
    assert code == 2 and one_line(err) and "input of 64 bytes, got 65" in err
    assert ledger_dump(home) == before


def _add_twins(home: Path) -> list[str]:
    """Two workers whose ids share their first 8 hex digits (ids are hashes: made up here)."""
    ids = ["5eed5eed" + "0" * 56, "5eed5eed" + "1" * 56]
    with Ledger(home) as ledger, ledger.transaction() as db:
        owner = ledger.workers()[0].owner
        for i, wid in enumerate(ids):
            ledger.add_worker(db, Worker(wid, owner, f"cid-{i}", "digits", None, 100, 0, 0.0,
                                         None, 0, None, "inactive"))
    return ids


def test_worker_ids_by_unique_prefix(home: Path, capsys, monkeypatch) -> None:
    wid = _worker_id(home)
    twins = _add_twins(home)
    for argv in (["worker", "show", wid[:4], "--json"], ["worker", "show", wid[:16].upper(),
                                                          "--json"]):
        code, out, err = cli(capsys, monkeypatch, "--home", str(home), *argv)
        assert (code, err) == (0, "") and json.loads(out)["id"] == wid
    code, out, err = cli(capsys, monkeypatch, "--home", str(home), "batch", "proof", wid[:10],
                         "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["worker"] == wid and json.loads(out)["included"] and json.loads(out)["valid"]
    code, out, _ = cli(capsys, monkeypatch, "--home", str(home), "batch", "proof", twins[1],
                       "--json")  # a full id: no fact touched it, so it has no leaf
    assert code == 0 and not json.loads(out)["included"] and json.loads(out)["valid"]
    for argv in (["worker", "show", "5eed5e"], ["batch", "proof", "5eed5eed"]):
        code, _, err = cli(capsys, monkeypatch, "--home", str(home), *argv)
        assert code == 2 and one_line(err), argv
        assert "is ambiguous: 2 workers match (5eed5eed00000000, 5eed5eed11111111)" in err
    for argv, words in ((["worker", "show", "abc"], "expected 4 to 64 hex digits"),
                        (["worker", "show", "zzzz"], "expected 4 to 64 hex digits"),
                        (["batch", "proof", "ffffffff"], "no worker id starts with ffffffff")):
        code, _, err = cli(capsys, monkeypatch, "--home", str(home), *argv)
        assert code == 2 and one_line(err) and words in err, argv


# --- interrupts ----------------------------------------------------------------------------

def test_a_generic_interrupt_exits_130(tmp_path: Path, capsys, monkeypatch) -> None:
    import memjit.runtime.claims as claims

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(claims, "prove_claim", interrupted)
    code, out, err = cli(capsys, monkeypatch, "prove", FIB, "--export", "fib", "--args", "5",
                         "--out", str(tmp_path / "c"))
    assert (code, out, err) == (130, "", "memjit: interrupted\n")


def test_an_interrupt_after_settlement_says_so(home: Path, tmp_path: Path, capsys,
                                               monkeypatch) -> None:
    import memjit.market.pool as pool

    settle = pool.request

    def settle_then_interrupt(*args, **kwargs):
        settle(*args, **kwargs)
        raise KeyboardInterrupt  # after the request's transaction committed

    monkeypatch.setattr(pool, "request", settle_then_interrupt)
    image = tmp_path / "image.bin"
    image.write_bytes(IMAGES[0].tobytes())
    code, out, err = cli(capsys, monkeypatch, "--home", str(home), "request", "--task",
                         "digits", "--input", str(image), "--label", str(LABELS[0]))
    assert (code, out, err) == (130, "", "memjit: interrupted after request 2 was settled\n")


def _pool_processes(pid: int) -> list[int]:
    """The live processes a pool of `pid` spawned (not Python's resource tracker)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmdline:
                found.append(int(entry))
    return found


def _loaded_numba(pid: int) -> bool:
    """Whether process `pid` has numba's compiler mapped (a pool process imports it first
    thing, before it proves)."""
    try:
        return "llvmlite" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _sigint_blocked(pid: int) -> bool:
    """Whether SIGINT is in the signal mask of process `pid`."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
    return bool(mask >> (signal.SIGINT - 1) & 1)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_during_a_request_exits_130_and_records_nothing(home: Path, workers: int) -> None:
    """As a terminal does, SIGINT goes to the whole process group: the request and, when it
    asks several workers, its pool's spawned processes (one worker is proven in the command's
    own process). The command exits 130 with one line; no pool process prints a traceback or
    is left running, and the ledger is exactly as it was."""
    if workers == 2:
        with Ledger(home) as ledger:
            register(ledger, Store(home), Identity.from_seed("carol", b"\x03" * 32),
                     (WORKERS_DIR / "digits_constant.wasm").read_bytes(), 500)
    image = home / "image.bin"
    image.write_bytes(IMAGES[1].tobytes())
    before = ledger_dump(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "memjit.cli", "--home", str(home), "request", "--task", "digits",
         "--input", str(image)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    pool: list[int] = []
    try:
        provers = [proc.pid] if workers == 1 else pool
        while not any(_loaded_numba(pid) for pid in provers):  # a prover is at work
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
            pool[:] = _pool_processes(proc.pid)
        for pid in pool:  # a Ctrl-C never reaches a pool process's Python (no traceback)
            assert _sigint_blocked(pid), pid
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        for pid in [proc.pid, *pool]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    assert (proc.returncode, out) == (130, "") and one_line(err), err
    # in the command's own process the interrupt may come before the request is under way
    assert err == "memjit: interrupted; nothing recorded\n" or workers == 1 and \
        err == "memjit: interrupted\n"
    assert workers == 1 or pool
    assert not [pid for pid in pool if _alive(pid)]
    assert ledger_dump(home) == before


# --- a read-only home ---------------------------------------------------------------------

def _drop_root_write_override() -> None:
    """Child-process setup for root: without CAP_DAC_OVERRIDE (and its kin) file modes bind
    root too, as they bind every other user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _snapshot(home: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(home)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(home.rglob("*"))}


def test_reading_commands_work_on_a_read_only_home(home: Path) -> None:
    wid = _worker_id(home)
    for path in [home, *home.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(home)
    setup = _drop_root_write_override if os.geteuid() == 0 else None
    try:
        try:
            probe = subprocess.run(["touch", str(home / "probe")], preexec_fn=setup,
                                   capture_output=True)
        except subprocess.SubprocessError:  # no CAP_SETPCAP: root cannot be held to modes
            pytest.skip("cannot make a read-only home for root here")
        assert probe.returncode != 0, "the home is still writable"
        for argv, words in [(["worker", "list"], wid[:16]), (["worker", "show", wid[:8]], wid),
                            (["batch", "list"], "1 committed batch"),
                            (["batch", "audit", "1"], "all check"),
                            (["batch", "proof", wid[:8]], "valid: True"),
                            (["batch", "committee"], "node")]:
            done = subprocess.run([sys.executable, "-m", "memjit.cli", *argv, "--home", str(home)],
                                  preexec_fn=setup, capture_output=True, text=True)
            assert (done.returncode, done.stderr) == (0, ""), argv
            assert words in done.stdout, (argv, done.stdout)
        done = subprocess.run([sys.executable, "-m", "memjit.cli", "batch", "commit", "--home",
                               str(home)], preexec_fn=setup, capture_output=True, text=True)
        assert done.returncode == 2 and one_line(done.stderr) and "read-only" in done.stderr
        assert _snapshot(home) == before
    finally:
        for path in [home, *home.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
