"""The WebAssembly spec testsuite (tests/spec/) through memjit: sandbox, tracer, prover, verifier.

Every command of every vendored script is checked (tests/spec/README.md lists the scripts):

- ``module``: the front end accepts it (integer subset) or refuses it in one clean error;
- ``assert_invalid`` / ``assert_malformed`` (binary): the front end, the sandbox and the key
  derivation all refuse it (never accept, never a raw exception); text-format malformed modules
  are skipped (memjit reads binary modules);
- ``assert_unlinkable`` / ``assert_uninstantiable``: refused; an instance that would trap while
  instantiating gets no key;
- ``assert_return`` / ``assert_trap`` / ``assert_exhaustion`` / ``action``: spec scripts chain
  calls on one instance, a claim is about a fresh one. Each call runs on the script's chained
  wasmtime instance (checked against the script's expectation) and, through the sandbox and the
  tracer (cross-checked against each other), on a fresh instance; a call whose fresh outcome
  differs depends on state left by earlier calls and is skipped. The others are proven (all of
  them, or a sample) and verified under the module's key: a result, or a trap statement.

The sample (``make test``) is a deterministic greedy cover: every script, every wasm
instruction executed by any provable call, every lowered VM op and every trap kind, each by
at least one proven call. The full run proves every provable call:

    .venv/bin/python tests/spec_suite.py --prove all [--json]     # or: pytest -m spec_full
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import wasmtime

from circuits.wasm_vm.statement import TRAPS
from memjit.errors import MemjitError, Trap, WorkerFault
from memjit.runtime.claims import prove_claim, vk_of
from memjit.runtime.sandbox import _TRAP_NAMES, run
from memjit.runtime.tracer import trace_checked
from memjit.runtime.wasm import load
from memjit.runtime.wasm.opcodes import LOADS, NUMERIC, OP_NAMES, STORES, STRUCTURED
from verifier.claims import verify_claim

SPEC = Path(__file__).parent / "spec"
SCRIPTS = tuple(sorted(p.stem for p in (SPEC / "json").glob("*.json")))
TRAP_TEXT = {"unreachable": "unreachable", "integer divide by zero": "integer_divide_by_zero",
             "integer overflow": "integer_overflow",
             "out of bounds memory access": "memory_out_of_bounds",
             "undefined element": "table_out_of_bounds",
             "uninitialized element": "indirect_call_to_null",
             "indirect call type mismatch": "indirect_call_type_mismatch",
             "call stack exhausted": "stack_overflow"}
"""The spec's trap messages (their prefixes) -> the sandbox's trap codes."""
INVOKES = ("assert_return", "assert_trap", "assert_exhaustion", "action")


@dataclass
class Record:
    """One command of a script and what became of it: ``status`` is one of proven,
    trap-proven, traced (sandbox + tracer only), refused, skipped, not-provable, failed; the
    ``reason`` says why (refused, skipped, not-provable, failed)."""

    script: str
    line: int
    kind: str
    status: str = ""
    reason: str = ""
    module: bytes | None = None
    export: str = ""
    args: tuple[int, ...] = ()
    outcome: object = None  # the fresh instance's results tuple, or its trap code
    steps: int = 0  # trace rows of the call
    features: frozenset = field(default_factory=frozenset)


def signed(value: str, t: str) -> int:
    bits = 32 if t == "i32" else 64
    v = int(value)
    return v - (1 << bits) if v >> (bits - 1) else v


def refusal(exc: Exception) -> str:
    """A short reason for a clean refusal (by its message)."""
    text = str(exc)
    rules = (("cannot be instantiated", "instantiation traps (no key)"),
             ("imports", "imports (spectest host, linking)"),
             ("f32", "floats"), ("f64", "floats"), ("v128", "SIMD"), ("SIMD", "SIMD"),
             ("multi-value", "multi-value"), ("start function", "start function"),
             ("passive", "bulk memory / reference types"),
             ("reference types", "bulk memory / reference types"),
             ("ref.", "bulk memory / reference types"), ("table.", "bulk memory / reference types"),
             ("memory.copy", "bulk memory / reference types"),
             ("memory.fill", "bulk memory / reference types"),
             ("memory.init", "bulk memory / reference types"),
             ("data.drop", "bulk memory / reference types"),
             ("elem.drop", "bulk memory / reference types"),
             ("funcref", "bulk memory / reference types"),
             ("externref", "bulk memory / reference types"),
             ("multiple tables", "bulk memory / reference types"),
             ("multiple memories", "multi-memory"),
             ("unaligned", "unaligned address under a natural alignment hint"),
             ("statement names its export", "export name over 255 bytes"),
             ("rows out of range", "trace longer than 2^22 rows"),
             ("memory can reach", "memory beyond the VM's 64 MiB"),
             ("trace too long", "trace longer than the tracer's limit"),
             ("out of fuel", "out of fuel"), ("memory cap", "memory cap"))
    for needle, reason in rules:
        if needle in text:
            return reason
    return "invalid" if type(exc).__name__ == "BadInput" else text[:80]


def clean(exc: Exception) -> bool:
    """A refusal the CLI reports in one line with exit code 2."""
    return isinstance(exc, MemjitError) and exc.exit_code == 2


# --- the chained instance (the script's own semantics) ----------------------------------------

@lru_cache(maxsize=1)
def _engine() -> wasmtime.Engine:
    return wasmtime.Engine()


class Chained:
    """The script's instance of one module, on which its calls accumulate state."""

    def __init__(self, module: bytes) -> None:
        self.store = wasmtime.Store(_engine())
        self.instance = wasmtime.Instance(self.store, wasmtime.Module(_engine(), module), [])

    def call(self, export: str, args: tuple[int, ...]) -> object:
        """The call's results (a tuple) or its trap code."""
        func = self.instance.exports(self.store)[export]
        try:
            out = func(self.store, *args)
        except wasmtime.Trap as exc:
            return _TRAP_NAMES.get(exc.trap_code, str(exc.trap_code))
        return () if out is None else tuple(out) if isinstance(out, list) else (out,)


# --- one script ---------------------------------------------------------------------------------

def wasm_instruction(module: bytes, offset: int) -> str:
    """The name of the wasm instruction at byte ``offset`` of a module."""
    code = module[offset]
    if code == 0xFC:
        return f"0xfc {module[offset + 1]}"
    if code in NUMERIC:
        return NUMERIC[code][0]
    if code in LOADS or code in STORES:
        return OP_NAMES[LOADS.get(code, STORES.get(code))]
    return STRUCTURED.get(code, hex(code))


def expected_outcome(cmd: dict) -> object:
    if cmd["type"] == "assert_return":
        return tuple(signed(v["value"], v["type"]) for v in cmd["expected"])
    text = cmd.get("text", "")
    return next((code for msg, code in TRAP_TEXT.items() if text.startswith(msg)), text)


def first_export(module: bytes) -> str:
    """A function export of the module to call ("_" if it has none or does not compile)."""
    try:
        exports = wasmtime.Module(_engine(), module).exports
    except wasmtime.WasmtimeError:
        return "_"
    return next((e.name for e in exports if isinstance(e.type, wasmtime.FuncType)), "_")


def compiles(module: bytes) -> bool:
    """Whether wasmtime (its default features) accepts the module."""
    try:
        wasmtime.Module(_engine(), module)
    except wasmtime.WasmtimeError:
        return False
    return True


def check_module_refused(record: Record, module: bytes) -> None:
    """assert_invalid / malformed / unlinkable / uninstantiable: the front end, the sandbox and
    the key derivation refuse the module, each with one clean error (an uninstantiable module
    may be valid: then the sandbox traps while instantiating and no key exists)."""
    uninstantiable = record.kind == "assert_uninstantiable"
    reasons = []
    stages = (("front end", lambda: load(module)),
              ("sandbox", lambda: run(module, first_export(module))), ("key", lambda: vk_of(module)))
    for stage, attempt in stages:
        try:
            attempt()
        except Exception as exc:  # noqa: BLE001 - a raw exception is itself a failure
            if clean(exc) or (uninstantiable and isinstance(exc, Trap)):
                reasons.append(refusal(exc))
                continue
            record.status, record.reason = "failed", f"{stage}: raw {type(exc).__name__}: {exc}"
            return
        if not (uninstantiable and stage == "front end"):
            if stage == "front end" and record.kind != "assert_unlinkable" and compiles(module):
                # the script predates a standard wasmtime implements by default, under which
                # the module is valid (a memory index where a zero byte was, global.get of any
                # immutable global in a constant expression): memjit agrees with wasmtime
                record.status, record.reason = "skipped", "valid in later WebAssembly (wasmtime)"
                return
            record.status, record.reason = "failed", f"accepted by the {stage}"
            return
    record.status = "refused"
    record.reason = reasons[-1] if uninstantiable else reasons[0]


def run_script(name: str) -> list[Record]:
    """Every command of a script through the front end, the sandbox and the tracer."""
    doc = json.loads((SPEC / "json" / f"{name}.json").read_text())
    records: list[Record] = []
    modules: dict[str | None, tuple[bytes | None, Chained | None, str]] = {}
    linked = False  # a module was registered: later ones may change its state by importing it
    for cmd in doc["commands"]:
        kind = cmd["type"]
        record = Record(name, cmd["line"], kind)
        records.append(record)
        if kind == "register":
            record.status, record.reason = "skipped", "register (linking)"
            linked = True
        elif kind == "module":
            module = base64.b64decode(cmd["wasm"])
            try:
                load(module)
                entry = (module, Chained(module), "")
                record.status = "accepted"
            except Exception as exc:  # noqa: BLE001
                if not clean(exc):
                    record.status, record.reason = "failed", f"raw {type(exc).__name__}: {exc}"
                else:
                    record.status, record.reason = "refused", refusal(exc)
                entry = (None, None, record.reason)
            modules[None] = entry
            if "name" in cmd:
                modules[cmd["name"]] = entry
        elif kind in ("assert_invalid", "assert_malformed", "assert_unlinkable",
                      "assert_uninstantiable"):
            if cmd.get("module_type", "binary") != "binary":
                record.status, record.reason = "skipped", "text format (binary modules only)"
            else:
                check_module_refused(record, base64.b64decode(cmd["wasm"]))
        elif kind in INVOKES:
            invoke(record, cmd, modules, linked)
        else:
            record.status, record.reason = "failed", f"unknown command {kind}"
    return records


def invoke(record: Record, cmd: dict, modules: dict, linked: bool) -> None:
    action = cmd["action"]
    module, chained, why = modules.get(action.get("module"), (None, None, "no module"))
    if action["type"] != "invoke":
        record.status, record.reason = "skipped", "global get (not a call)"
        return
    if module is None:
        record.status, record.reason = "skipped", f"module refused: {why}"
        return
    record.module, record.export = module, action["field"]
    record.args = tuple(signed(a["value"], a["type"]) for a in action["args"])
    script = chained.call(record.export, record.args)
    if record.kind != "action" and script != expected_outcome(cmd):
        if linked:  # modules that import this one changed it; memjit links nothing
            record.status, record.reason = "skipped", "depends on modules linked to it"
        else:
            record.status = "failed"
            record.reason = f"wasmtime {script}, spec {expected_outcome(cmd)}"
        return
    try:
        tr = trace_checked(module, record.export, list(record.args))
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, WorkerFault):  # the sandbox's limits (fuel, memory cap) stop it
            record.status, record.reason = "skipped", f"sandbox fault: {refusal(exc)}"
        else:
            record.status = "refused" if clean(exc) else "failed"
            record.reason = refusal(exc) if clean(exc) else f"{type(exc).__name__}: {exc}"
        return
    record.outcome, record.steps = tr.trap or tr.results, tr.steps
    if record.outcome != script:
        record.status, record.reason = "skipped", "depends on state left by earlier calls"
        return
    if tr.trap is not None and tr.trap not in TRAPS:
        record.status, record.reason = "not-provable", tr.trap
        return
    prog = tr.program
    executed = np.unique(tr.pc)
    record.features = frozenset(
        {f"script:{record.script}", f"trap:{tr.trap or 'none'}"}
        | {f"op:{OP_NAMES[o]}" for o in np.unique(prog.op[executed])}
        | {f"wasm:{wasm_instruction(module, int(off))}" for off in np.unique(prog.offset[executed])
           if off >= 0})
    record.status = "traced"


# --- proving ------------------------------------------------------------------------------------

MAX_PROVE_STEPS = (1 << 20) - 1
"""The longest call the suite proves: 2^21 rows would need ~20 GB (benchmarks/README.md: 10 GB
at 2^20), more than a shared 24 GB machine has; the tracer has checked it against wasmtime."""
PROOF_OVERHEAD_ROWS = 4096
"""A proof's fixed cost in trace rows (what the sample weighs a call's rows against)."""


def sample(records: list[Record]) -> list[Record]:
    """A deterministic greedy cover of every feature of the traced calls (see the module doc):
    the next call is the one adding the most features per proving cost (rows + overhead),
    the first in script order among equals."""
    todo = [r for r in records if r.status == "traced"]
    uncovered = set().union(*(r.features for r in todo)) if todo else set()
    chosen = []
    while uncovered:
        best = max(todo, key=lambda r: len(r.features & uncovered)
                   / (r.steps + PROOF_OVERHEAD_ROWS))
        chosen.append(best)
        uncovered -= best.features
    return chosen


def prove_record(record: Record) -> None:
    """Prove a traced call and verify the claim under the module's key; the statement must say
    what the spec expects."""
    try:
        claim = prove_claim(record.module, record.export, list(record.args))
    except Exception as exc:  # noqa: BLE001
        record.status = "refused" if clean(exc) else "failed"
        record.reason = refusal(exc) if clean(exc) else f"{type(exc).__name__}: {exc}"
        return
    verdict = verify_claim(claim.encode(), vk_of(record.module))
    st = claim.statement
    said = st.trap if st.trap else (() if st.result is None else (st.signed_result,))
    if not verdict.valid or said != record.outcome:
        record.status, record.reason = "failed", f"verdict {verdict.reason!r}, statement {said}"
        return
    record.status = "trap-proven" if st.trap else "proven"


def run_suite(prove: str = "sample", scripts: tuple[str, ...] = SCRIPTS) -> list[Record]:
    """Run every script; prove ``"all"`` traced calls, a ``"sample"``, or ``"none"``."""
    records = [r for name in scripts for r in run_script(name)]
    for r in records:
        if r.status == "traced" and r.steps > MAX_PROVE_STEPS:
            r.status, r.reason = "skipped", "over 2^20 steps (too large to prove here)"
    targets = {"all": [r for r in records if r.status == "traced"], "sample": sample(records),
               "none": []}[prove]
    for record in targets:
        prove_record(record)
    return records


def counts(records: list[Record]) -> dict:
    """Counts by command kind and status, and by reason for the rest."""
    by_status = Counter((r.kind, r.status) for r in records)
    reasons = Counter((r.status, r.reason) for r in records if r.reason)
    return {"commands": len(records),
            "by_kind": {k: dict(sorted((s, n) for (k2, s), n in by_status.items() if k2 == k))
                        for k in sorted({r.kind for r in records})},
            "reasons": {f"{s}: {why}": n for (s, why), n in sorted(reasons.items())}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prove", choices=("all", "sample", "none"), default="all")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("scripts", nargs="*", help="scripts to run (default: all)")
    ns = parser.parse_args()
    records = run_suite(ns.prove, tuple(ns.scripts) or SCRIPTS)
    report = counts(records)
    if ns.json:
        print(json.dumps(report, indent=1))
    else:
        for kind, statuses in report["by_kind"].items():
            print(f"{kind:>22}: " + ", ".join(f"{s} {n}" for s, n in statuses.items()))
        for reason, n in report["reasons"].items():
            print(f"{n:6d}  {reason}")
    failed = [r for r in records if r.status == "failed"]
    for r in failed:
        sys.stderr.write(f"FAILED {r.script}.wast:{r.line} {r.kind} {r.export}{r.args}: "
                         f"{r.reason}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
