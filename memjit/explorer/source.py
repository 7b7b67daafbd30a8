"""What the explorer shows, and the protocol of whatever serves it (a local --home, a node).

Every view is a frozen dataclass of plain values in readable units, so that the pages and the
JSON API (`dataclasses.asdict`) render them as they are: usefulness and scores as fractions in
0..1 (the ledger keeps parts per million), amounts in whole SWT, times in seconds since the
epoch (the pages show them as UTC dates), owners by name where the source knows the key's name
(else the first hex digits of the key), keys and hashes in hex.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from memjit.errors import BadInput

PPM = 1_000_000
V = TypeVar("V")


class NotFound(BadInput):
    """No such worker, claim or batch (the API answers 404)."""


@dataclass(frozen=True)
class Peer:
    """A node this one knows: its id, address, role and batch height."""

    id: str
    address: str
    role: str
    height: int


@dataclass(frozen=True)
class NetworkInfo:
    """This node: its role ("local" for a --home read directly), the batch height (the last
    committed batch, 0 for none), the state root after it, the facts waiting for a batch, and
    its peers."""

    role: str
    height: int
    state_root: str
    pending_facts: int
    peers: tuple[Peer, ...] = ()


@dataclass(frozen=True)
class TaskInfo:
    """A task type: its name, the export its workers implement, its input size and largest input
    byte, its number of labels and how many workers serve it (active ones)."""

    name: str
    export: str
    input_size: int
    input_max: int
    labels: int
    workers: int
    active: int


@dataclass(frozen=True)
class LeaderRow:
    """One worker on its task's leaderboard: usefulness in 0..1; stake, SWT earned (rewards
    assigned when emission periods closed) and fees received in SWT; its calls counted."""

    id: str
    owner: str  # the owner's name (or a key prefix)
    owner_key: str
    cid: str
    usefulness: float
    stake: int
    calls: int
    earned: int
    fees: int
    slashed: int
    status: str
    registered_at: float


@dataclass(frozen=True)
class WorkerDetail:
    """A worker's page header: its leaderboard row plus what identifies its program."""

    row: LeaderRow
    task: str
    vk_digest: str | None  # hex blake3 of the VK (None: no key derived)
    last_used_at: float | None
    unbonding: int
    unbonding_at: float | None


@dataclass(frozen=True)
class CallRow:
    """One call of a worker: the request it answered, its outcome ("scored", "unscored",
    "invalid", "fault"), the verified result, score in 0..1, fee and reward in SWT, stake
    slashed, its claim's CID in the content store, and why it failed if it did."""

    request: int
    at: float
    outcome: str
    result: int | None
    score: float
    fee: int
    reward: int
    slashed: int
    claim: str | None
    reason: str


@dataclass(frozen=True)
class ClaimCheck:
    """A stored claim re-verified under its worker's verification key: what it states and the
    verdict (with the proof's conjectured security in bits and its weakest term)."""

    cid: str
    worker: str | None  # the worker registered for the claim's VK (None: none is)
    export: str
    result: int | None
    trap: str | None
    steps: int
    input_blake3: str
    nonce: str
    valid: bool
    reason: str
    security_bits: int
    limited_by: str
    seconds: float


@dataclass(frozen=True)
class FactRow:
    """One fact of a batch: whose, its score in 0..1, the SWT it minted, its claim; its kind
    (a call, or a bond, release or slash of `amount` SWT of the worker's locked stake)."""

    worker: str
    owner: str
    score: float
    reward: int
    claim: str | None
    kind: str = "call"
    amount: int = 0


@dataclass(frozen=True)
class BatchRow:
    """A committed batch's header fields and status ("committed" while it can be challenged,
    then "final"); `committee` by name."""

    number: int
    hash: str
    prev_hash: str
    state_root_before: str
    state_root_after: str
    facts_root: str
    fact_count: int
    minted: int
    timestamp: float
    committed_at: float
    final_at: float
    status: str
    data_cid: str
    committee: tuple[str, ...]


@dataclass(frozen=True)
class BatchDetail:
    """A batch with its facts (from its data in the content store, if the source has it)."""

    batch: BatchRow
    facts: tuple[FactRow, ...]


@dataclass(frozen=True)
class AuditResult:
    """A batch re-checked: every proof re-verified, its roots recomputed."""

    number: int
    ok: bool
    problems: tuple[str, ...]
    facts: int
    seconds: float


@dataclass(frozen=True)
class Answer:
    """A worker's answer arriving during a request, before it is judged: a claim (to be
    verified) or the fault that stopped the worker."""

    worker: str
    owner: str
    fault: str | None


@dataclass(frozen=True)
class CallOutcome:
    """A judged call of a request: outcome, verified result, score in 0..1, fee paid, stake
    slashed, claim CID, reason of a failure."""

    worker: str
    owner: str
    outcome: str
    result: int | None
    score: float
    fee: int
    slashed: int
    claim: str | None
    reason: str


@dataclass(frozen=True)
class RequestOutcome:
    """A settled request: its number, what it was scored against and why (basis "label",
    "consensus", "contested", or None: nothing scored), the best verified answer, every call."""

    request: int
    scored_against: int | None
    basis: str | None
    result: int | None
    worker: str | None
    calls: tuple[CallOutcome, ...] = field(default_factory=tuple)


@runtime_checkable
class ExplorerSource(Protocol):
    """What the explorer reads (and the one thing it asks: a request). A local --home implements
    it (memjit.explorer.local.LocalSource); a node implements it over its own state. Methods
    raise NotFound for an unknown worker, claim or batch, BadInput for malformed input,
    Rejected when a request cannot be served."""

    def network(self) -> NetworkInfo:
        """This node's role, height and peers."""

    def tasks(self) -> list[TaskInfo]:
        """Every task type served."""

    def leaderboard(self, task: str) -> list[LeaderRow]:
        """The workers of a task, most useful first (then stake, then registration)."""

    def usefulness_history(self, task: str) -> dict[str, list[tuple[float, float]]]:
        """Each worker's usefulness over time: worker id -> (time, usefulness in 0..1), oldest
        first, ending with its current value."""

    def worker(self, worker_id: str) -> WorkerDetail:
        """One worker (NotFound if there is none)."""

    def calls(self, worker_id: str, limit: int = 100) -> list[CallRow]:
        """A worker's calls, newest first, at most `limit`."""

    def claim(self, cid: str) -> ClaimCheck:
        """A stored claim, re-verified (NotFound if the store does not have it)."""

    def batches(self) -> list[BatchRow]:
        """The committed batches, newest first."""

    def batch(self, number: int) -> BatchDetail:
        """One committed batch with its facts (NotFound if there is none)."""

    def audit(self, number: int) -> AuditResult:
        """Re-verify a batch's proofs and recompute its roots (NotFound if there is none)."""

    def request(self, task: str, input_bytes: bytes, label: int | None = None,
                on_answer: Callable[[Answer], None] | None = None) -> RequestOutcome:
        """Send a request through this node; `on_answer` sees each answer as it arrives,
        before the oracle judges them all and the request settles."""


def view_from_json(cls: type[V], obj: Any) -> V:
    """The view `cls` from its JSON (`dataclasses.asdict`, as the API answers it): the inverse
    that lets a source read the views another node's explorer serves (BadInput if malformed)."""
    try:
        return _decode(cls, obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"malformed {cls.__name__}: {exc}") from None


def _decode(kind: Any, obj: Any) -> Any:
    if dataclasses.is_dataclass(kind):
        if not isinstance(obj, dict):
            raise TypeError(f"expected an object for {kind.__name__}")
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _decode(hints[f.name], obj[f.name])
                       for f in dataclasses.fields(kind)})
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        return tuple(_decode(item, x) for x in obj)
    return obj
