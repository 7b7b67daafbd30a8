"""Verification of a segmented claim: the segments, walked in order against the run's memory.

The claim's statement (a :class:`circuits.wasm_vm.VmStatement` without multiplicities) says
what the whole run did: "called at this export with these arguments and input, returned R (or
trapped) after N steps, leaving these output words". Each segment binds the digest of that
statement (:func:`run_digest`) and its index, so no segment of another run,
request or position verifies here. The walk starts from the export's entry (fp = depth = 0,
the initial pages) and the module's initial memory (arguments, globals, data, input) and
checks, segment by segment, that it starts in the state the previous one ended in, that the
memory it reads first is what the image holds, then applies what it writes last. Only the
last segment halts, and its outcome, the step total and the output words read from the final
image must be the claim's. Then every segment's proof is verified (the cheap walk first).
"""

from __future__ import annotations

import blake3
import numpy as np

from circuits.wasm_vm import VmProgram, VmStatement
from circuits.wasm_vm.air import output_keys
from circuits.wasm_vm.segment import MemoryImage, SegmentAir, SegmentStatement, State
from verifier.stark import Verdict, verify_air


def run_digest(statement: VmStatement) -> bytes:
    """The digest every segment of a run binds: of the claim's whole statement."""
    return blake3.blake3(statement.encode()).digest()


def walk(program: VmProgram, statement: VmStatement,
         segments: tuple[SegmentStatement, ...]) -> str | None:
    """Why the segments do not make up the run the statement describes (None: they do)."""
    exp = program.exports.get(statement.export)
    if exp is None:
        return f"program has no export {statement.export!r}"
    if len(statement.mult_index):
        return "a segmented claim's statement carries no multiplicities"
    if len(statement.args) != exp.nparams or any(a >= 1 << 32 for a in statement.args):
        return "arguments do not match the export's signature"
    memory_bytes = program.mem_pages * 65536
    if statement.input and (program.input_addr is None
                            or program.input_addr + len(statement.input) > memory_bytes):
        return "the input does not fit the program's input buffer"
    if statement.output_len and (program.output_addr is None
                                 or statement.output_offset != program.output_addr % 4
                                 or program.output_addr + statement.output_len > memory_bytes):
        return "the output does not match the program's output buffer"
    run, count = run_digest(statement), len(segments)
    image = MemoryImage(program, statement.args, statement.input)
    state, steps = State(exp.entry, 0, 0, program.mem_pages), 0
    for i, seg in enumerate(segments):
        base = seg.base
        if seg.run != run:
            return f"segment {i} belongs to another run"
        if seg.index != i:
            return f"segment {i} is the run's segment {seg.index} (skipped, repeated or " \
                   f"reordered)"
        if (base.vk, base.export, base.args, base.nonce) != \
                (statement.vk, statement.export, statement.args, statement.nonce):
            return f"segment {i} proves another call"
        if seg.start != state:
            return f"segment {i} does not start in the state the run reached"
        if not image.holds(seg.keys, seg.init):
            return f"segment {i} reads memory the run did not leave there"
        if seg.final != (i == count - 1):
            return f"segment {i} halts before the end" if seg.final else \
                "the last segment does not halt"
        image.write(seg.keys, seg.fin)
        state, steps = seg.end, steps + base.steps
    last = segments[-1].base if segments else None
    if last is None or (last.trap, last.result, last.wide) != \
            (statement.trap, statement.result, statement.wide):
        return "the last segment's outcome is not the claim's"
    if steps != statement.steps:
        return f"the segments run {steps} steps, the claim says {statement.steps}"
    words = image.read(output_keys(program, len(statement.output_words)))
    if not np.array_equal(words, statement.output_words):
        return "the output words are not the run's final memory"
    return None


def verify_segments(program: VmProgram, statement: VmStatement,
                    segments: tuple[tuple[SegmentStatement, bytes], ...],
                    min_security_bits: int) -> Verdict:
    """Walk the segments, then verify each one's proof; the weakest proof's security."""
    reason = walk(program, statement, tuple(s for s, _ in segments))
    if reason is not None:
        return Verdict(False, reason)
    weakest = None
    for i, (seg, proof) in enumerate(segments):
        try:
            air = SegmentAir(program, seg)
        except ValueError as exc:
            return Verdict(False, f"segment {i}: bad statement: {exc}")
        verdict = verify_air(air, proof, min_security_bits)
        if not verdict:
            return Verdict(False, f"segment {i}: {verdict.reason}")
        if weakest is None or verdict.security_bits < weakest.security_bits:
            weakest = verdict
    return weakest
