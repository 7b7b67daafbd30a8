"""Typed errors of memjit; each carries the CLI exit code of DESIGN.md's contract.

0 ok, 1 verification failed or request rejected, 2 bad input or usage, 3 worker fault,
70 internal error (a bug in memjit, never the user's fault; sysexits' EX_SOFTWARE),
130 interrupted (128 + SIGINT, as shells report a process stopped by Ctrl-C).
"""

from __future__ import annotations


class MemjitError(Exception):
    """Base of every error the CLI turns into one line on stderr and an exit code."""

    exit_code = 2


class Rejected(MemjitError):
    """A proof did not verify or a request was rejected."""

    exit_code = 1


class BadInput(MemjitError):
    """Malformed input: missing file, bad arguments, malformed proof or module."""

    exit_code = 2


class UnsupportedModule(BadInput):
    """The module is valid WebAssembly but outside what memjit accepts (imports, floats, ...)."""


class WorkerFault(MemjitError):
    """The worker itself failed while running."""

    exit_code = 3


class OutOfFuel(WorkerFault):
    """The fuel budget ran out."""


class DeadlineExceeded(WorkerFault):
    """The wall-clock deadline passed (epoch interruption)."""


class MemoryCapExceeded(WorkerFault):
    """The module tried to grow its memory past the cap."""


class Trap(WorkerFault):
    """A WebAssembly trap; ``code`` names it (e.g. ``integer_divide_by_zero``)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or f"trap: {code}")
        self.code = code


class InternalError(MemjitError):
    """memjit disagrees with itself: the prover's own check fails on an honest trace, or the
    tracer and wasmtime disagree on a run. Reported as one line naming where, never a
    traceback; the claim is not written."""

    exit_code = 70


class Interrupted(MemjitError):
    """The user interrupted the command (Ctrl-C); the message says what was kept."""

    exit_code = 130
