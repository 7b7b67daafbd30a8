"""`memjit verify CLAIM (--vk VK | --program WASM [--memory-mb M]) [--output FILE] [--json]`.

The command every node and script runs once per claim, so it stays light: argparse instead of
the CLI framework (memjit.cli.main runs it directly when ``verify`` comes first; the typer app
forwards to it otherwise), the verifier on numpy alone, and the WASM front end (wasmtime) only
to derive a key from ``--program``. Exit 0 valid, 1 invalid, 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from memjit.cli.common import check_output, echo_io, emit_json, io_fields, read_file, write_output


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr and exit 2, via memjit.cli.main
        from memjit.errors import BadInput

        raise BadInput(f"verify: {message}")


PARSER = _Parser(prog="memjit verify", description="Verify a claim against a module or its "
                 "verification key (exit 0 valid, 1 invalid, 2 bad input).")
PARSER.add_argument("proof", type=Path, metavar="CLAIM", help="Claim file written by `memjit prove`.")
PARSER.add_argument("--program", type=Path, metavar="WASM", help="The worker module (.wasm).")
PARSER.add_argument("--vk", type=Path, metavar="VK", help="Its verification key (from `memjit vk`).")
PARSER.add_argument("--output", type=Path, dest="output_file", metavar="FILE",
                    help="Save the claim's output bytes here once it verifies.")
PARSER.add_argument("--memory-mb", type=int, default=64, metavar="M",
                    help="With --program: the memory cap its key binds if it grows its memory "
                    "(default 64, as prove's).")
PARSER.add_argument("--json", action="store_true", dest="json_out", help="Print one JSON object.")
PARSER.add_argument("--home", type=Path, help=argparse.SUPPRESS)  # global options, unused here
PARSER.add_argument("--node", help=argparse.SUPPRESS)


def verify_command(argv: list[str]) -> None:
    """Parse ``argv`` (what follows ``verify``) and verify; raises Rejected / BadInput."""
    from memjit.errors import BadInput, Rejected
    from verifier.claims import ClaimFormatError, decode_claim, verify_claim

    opts = PARSER.parse_args(argv)
    proof, program, vk, output_file = opts.proof, opts.program, opts.vk, opts.output_file
    if (program is None) == (vk is None):
        raise BadInput("give exactly one of --program WASM or --vk VK")
    if output_file is not None:
        check_output(output_file)
    module = read_file(program) if program is not None else None
    if module is not None:  # the front end (and wasmtime) only to derive the key from a module
        from memjit.runtime.claims import vk_of
        from memjit.runtime.sandbox import Limits

        key = vk_of(module, Limits(memory_mb=opts.memory_mb).memory_mb)
    else:
        from circuits.wasm_vm.program import VkFormatError, decode_vk

        key = read_file(vk)
        try:  # a file that is no key is bad input naming it, not an invalid claim
            decode_vk(key)
        except VkFormatError as exc:
            raise BadInput(f"malformed verification key {vk}: {exc}") from None
    data = read_file(proof)
    try:
        claim = decode_claim(data)
        st = claim.statement
    except ClaimFormatError as exc:
        raise BadInput(f"malformed claim {proof}: {exc}") from None
    verdict = verify_claim(data, key)
    result = st.signed_result
    if opts.json_out:
        emit_json({"valid": verdict.valid, "reason": verdict.reason, "export": st.export,
                   "args": _statement_args(st.args, module, st.export), "result": result,
                   "trap": st.trap, "steps": st.steps, "segments": max(len(claim.segments), 1),
                   "security_bits": verdict.security_bits,
                   "limited_by": verdict.limited_by, "nonce": st.nonce.hex(),
                   **io_fields(st.input, st.output, st.output_len > 0)})
    elif verdict.valid:
        outcome = f"trapped ({st.trap})" if st.trap else \
            f"returned {'(none)' if result is None else result}"
        print(f"valid: {st.export} {outcome} after {st.steps} steps "
              f"({verdict.security_bits}-bit security, limited by {verdict.limited_by})")
        echo_io(st.input, st.output, st.output_len > 0, output_file)
    if not verdict.valid:
        raise Rejected(f"invalid claim: {verdict.reason}")
    if output_file is not None:
        write_output(output_file, st.output)


def _statement_args(words: tuple[int, ...], module: bytes | None, export: str) -> list[int]:
    """A statement's argument words as the export's signed arguments (with the module; a
    verification key alone has no types: then one signed i32 per word, an i64 as two)."""
    if module is not None:
        from memjit.runtime.wasm import load
        from memjit.runtime.wasm.program import typed_results

        params = load(module).exports.get(export)
        if params is not None and len(params.params) + params.params.count("i64") == len(words):
            return list(typed_results(params.params, words))
    return [a - (a >> 31 << 32) for a in words]
