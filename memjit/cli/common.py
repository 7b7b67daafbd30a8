"""What every command group shares, without the CLI framework (so `memjit verify` can run
without it): the global options (the state directory, the node), the JSON output contract,
reading user files and checking output paths, worker ids by prefix, a call's tensor I/O
fields."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    from memjit.market.ledger import Ledger
    from memjit.node.client import NodeClient

DEFAULT_HOME = Path("~/.memjit")
MIN_ID_PREFIX = 4
"""Shortest worker-id prefix accepted (as git asks for at least 4 hex digits of a hash)."""


@dataclass
class Globals:
    """The global options, typed before or after the command (`memjit --home H worker list`
    or `memjit worker list --home H`); the one nearest the command wins."""

    home: Path | None = None  # --home / MEMJIT_HOME; None: DEFAULT_HOME
    node: str | None = None  # --node / MEMJIT_NODE: a node to talk to


def global_options(ctx: typer.Context) -> Globals:
    """The command line's global options (set by the root command and each subcommand)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Globals):
        root.obj = Globals()
    return root.obj


def remote(ctx: typer.Context) -> "NodeClient | None":
    """The client of the node named by --node (or MEMJIT_NODE), or None to work on --home."""
    return node_client(global_options(ctx))


def node_client(options: Globals) -> "NodeClient | None":
    """`remote` for a command parsed without typer (memjit.cli.request)."""
    if options.node is None:
        return None
    from memjit.node.client import NodeClient

    return NodeClient(options.node)


def state_home(ctx: typer.Context, *, write: bool, keys_only: bool = False) -> Path:
    """The state directory a command works on, checked: a path that is not a directory is
    BadInput; `write=True` creates it (a command that only reads creates nothing: see
    `Ledger(readonly=True)`). With --node, a command that has no network form is refused; one
    that has (`keys_only`: it uses the home for its keys alone) gets the home."""
    return home_dir(global_options(ctx), write=write, keys_only=keys_only)


def home_dir(options: Globals, *, write: bool, keys_only: bool = False) -> Path:
    """`state_home` for a command parsed without typer (memjit.cli.request)."""
    from memjit.errors import BadInput

    if options.node is not None and not keys_only:
        raise BadInput(f"--node {options.node}: this command works on a local --home only")
    home = (options.home or DEFAULT_HOME).expanduser()
    try:
        if home.exists() and not home.is_dir():
            raise BadInput(f"--home {home} is not a directory")
        if write:
            home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot use --home {home}: {exc.strerror or exc}") from None
    if write and not os.access(home, os.W_OK):
        raise BadInput(f"--home {home} is read-only, and this command writes to it")
    return home


def emit_json(obj: dict) -> None:
    """Print one JSON object on stdout (the `--json` contract)."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


def read_file(path: Path) -> bytes:
    """Read a user-named file, turning OS errors into a BadInput."""
    from memjit.errors import BadInput

    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None


def check_output(path: Path, what: str = "output") -> None:
    """Refuse (BadInput) an output path that cannot be written, before any work is done: a
    directory, a missing or read-only parent directory, a read-only file."""
    from memjit.errors import BadInput

    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise BadInput(f"cannot write the {what} to {path}: it is a directory")
    if not parent.is_dir():
        raise BadInput(f"cannot write the {what} to {path}: no directory {parent}")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise BadInput(f"cannot write the {what} to {path}: permission denied")


def output_dir(path: Path, what: str = "output") -> None:
    """Create a user-named output directory before any work, turning a file in the way or an
    OS error into a BadInput."""
    from memjit.errors import BadInput

    try:
        if path.exists() and not path.is_dir():
            raise BadInput(f"cannot write the {what} to {path}: it is not a directory")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot write the {what} to {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise BadInput(f"cannot write the {what} to {path}: permission denied")


def write_output(path: Path, data: bytes, what: str = "output") -> None:
    """Write a user-named output file, turning OS errors into a BadInput."""
    from memjit.errors import BadInput

    try:
        path.write_bytes(data)
    except OSError as exc:
        raise BadInput(f"cannot write the {what} to {path}: {exc.strerror or exc}") from None


def resolve_worker(ledger: "Ledger", text: str, *, known: bool = True) -> str:
    """The full id of the worker named by `text`: its id or a unique prefix of it (at least
    MIN_ID_PREFIX hex digits). An ambiguous prefix is BadInput listing the candidates; with
    `known=False` a full id needs no worker (an account's non-inclusion can be proven)."""
    from memjit.errors import BadInput
    from memjit.market.ledger import WORKER_ID_BYTES

    wanted = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]*", wanted) or not (
            MIN_ID_PREFIX <= len(wanted) <= 2 * WORKER_ID_BYTES):
        raise BadInput(f"bad worker id {text!r}: expected {MIN_ID_PREFIX} to "
                       f"{2 * WORKER_ID_BYTES} hex digits (an id or a unique prefix)")
    if len(wanted) == 2 * WORKER_ID_BYTES and not known:
        return wanted
    found = ledger.worker_ids(wanted)
    if not found:
        raise BadInput(f"no worker {wanted}" if len(wanted) == 2 * WORKER_ID_BYTES
                       else f"no worker id starts with {wanted}")
    if len(found) > 1:
        shown = ", ".join(f[:16] for f in found[:4]) + (
            f" and {len(found) - 4} more" if len(found) > 4 else "")
        raise BadInput(f"worker id prefix {wanted} is ambiguous: {len(found)} workers match "
                       f"({shown}); type more digits")
    return found[0]


def io_fields(input_bytes: bytes, output: bytes, has_output: bool) -> dict:
    """JSON fields of a call's tensor input and output: sizes, blake3 digests, output hex."""
    import blake3

    fields: dict = {}
    if input_bytes:
        fields.update(input_bytes=len(input_bytes),
                      input_blake3=blake3.blake3(input_bytes).hexdigest())
    if has_output:
        fields.update(output_bytes=len(output), output_blake3=blake3.blake3(output).hexdigest(),
                      output_hex=output.hex())
    return fields


def echo_io(input_bytes: bytes, output: bytes, has_output: bool, saved: Path | None) -> None:
    """The human-readable lines for a call's tensor input and output."""
    fields = io_fields(input_bytes, output, has_output)
    if input_bytes:
        print(f"input: {fields['input_bytes']} bytes, blake3 {fields['input_blake3']}")
    if has_output:
        where = f"saved to {saved}" if saved is not None else (
            output.hex() if len(output) <= 64 else output[:64].hex() + "...")
        print(f"output: {len(output)} bytes, blake3 {fields['output_blake3']}: {where}")
