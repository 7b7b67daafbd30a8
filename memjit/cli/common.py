"""What every command group shares, without the CLI framework (so `memjit verify` can run
without it): the JSON output contract, reading user files, a call's tensor I/O fields."""

from __future__ import annotations

import json
import sys
from pathlib import Path


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


def save_output(path: Path | None, output: bytes) -> None:
    """Write a call's output bytes where --output says (nothing without it)."""
    from memjit.errors import BadInput

    if path is not None:
        try:
            path.write_bytes(output)
        except OSError as exc:
            raise BadInput(f"cannot write {path}: {exc.strerror or exc}") from None


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
