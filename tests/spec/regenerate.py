"""Regenerate tests/spec/json/ from the vendored .wast scripts (needs wabt's wast2json:
Debian's `wabt` package, 1.0.32 converts every vendored script).

wast2json writes one JSON file of commands per script and one file per module; this bundles
them into one JSON file per script, each binary module inlined as base64 (`"wasm"`), so the
tests read 61 files and need no wabt. Text-format modules (`assert_malformed` of `module quote`)
are recorded without their text: memjit reads binary modules only.

    make spec-json        # or: .venv/bin/python tests/spec/regenerate.py
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
WAST, JSON = HERE / "wast", HERE / "json"


def bundle(script: Path, out: Path) -> None:
    """Convert one script with wast2json and write its bundled JSON to ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / (script.stem + ".json")
        subprocess.run(["wast2json", str(script), "-o", str(raw)], check=True,
                       capture_output=True)
        doc = json.loads(raw.read_text())
        for cmd in doc["commands"]:
            name = cmd.pop("filename", None)
            if name is None:
                continue
            if cmd.get("module_type", "binary") == "binary":
                cmd["wasm"] = base64.b64encode((Path(tmp) / name).read_bytes()).decode()
        doc["source_filename"] = script.name
        out.write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")


def main() -> int:
    if shutil.which("wast2json") is None:
        sys.stderr.write("regenerate: wast2json not found (apt-get install wabt)\n")
        return 2
    JSON.mkdir(exist_ok=True)
    for old in JSON.glob("*.json"):
        old.unlink()
    for script in sorted(WAST.glob("*.wast")):
        bundle(script, JSON / (script.stem + ".json"))
    print(f"regenerate: {len(list(JSON.glob('*.json')))} scripts bundled in {JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
