"""The README stays true: its links resolve in a clone, and its runnable examples (the ```sh
blocks, in order, as one shell session) run verbatim from the clone's root, writing only to
their scratch directory."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_every_relative_link_resolves_in_the_clone() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    assert local, "the README links its design document"
    assert [link for link in local if not (REPO / link).exists()] == []


def _examples() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```$", README, flags=re.S | re.M)
    assert len(blocks) >= 4, "the README's runnable examples are ```sh blocks"
    return "\n".join(blocks)


def _untracked() -> set[str]:
    done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                          capture_output=True, text=True)
    return set(done.stdout.splitlines()) if done.returncode == 0 else set()


def test_the_examples_run_verbatim_from_the_clone(tmp_path: Path) -> None:
    if not (REPO / ".venv" / "bin" / "memjit").exists():
        pytest.skip("the README's examples start from `make install` (.venv in the clone)")
    before = _untracked()
    env = {**os.environ, "TMPDIR": str(tmp_path), "HOME": str(tmp_path / "user")}
    env.pop("MEMJIT_HOME", None)
    env.pop("MEMJIT_NODE", None)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", _examples()], cwd=REPO, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "label 4" in done.stdout and '"valid": true' in done.stdout
    assert "all check" in done.stdout and "valid: True" in done.stdout
    scratch = tmp_path / "memjit-try"
    assert {p.name for p in scratch.iterdir()} >= {
        "crc32.vk", "crc32.claim", "x.bin", "dense.claim", "y.bin", "image.bin", "home"}
    assert not (tmp_path / "user").exists()  # nothing went to ~/.memjit
    assert _untracked() == before  # nothing was written into the clone
