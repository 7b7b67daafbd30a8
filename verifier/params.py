"""Proof parameters and the conjectured security they give: one formula, every term counted.

The protocol (verifier.stark) draws six kinds of challenge; each can be "bad" with some
probability, and a cheating prover succeeds only through a bad challenge or through the low-degree
test letting a far word pass. The conjectured security is the round-by-round soundness of the
Fiat-Shamir protocol: the smallest of the per-round terms below, in bits (-log2 of the round's
error), each raised by the proof-of-work ground immediately before that round's challenge, then
floored. Round-by-round error is what bounds a Fiat-Shamir attacker (an attacker making T hash
queries succeeds with probability at most T times the largest round error; Block, Garreta, Katz,
Thaler, Tiwari, Zajac, eprint 2024/1553), and it is the accounting of Winterfell's proven
estimates, Plonky3's ``p3-security`` and Ethereum's soundcalc. F = F_p^4,
log2 |F| = 4 log2(p) = 123.63 (fractional bits are kept until the final floor); n the trace
length, |D| = n * blowup the LDE domain.

``fri_queries``  s queries at rate rho = 1/blowup: s * log2(blowup) bits, the FRI conjecture of
    the ethSTARK documentation (eprint 2021/582: each query of a word far from the code passes with
    probability at most rho), plus the query grinding bits -- but only when the queries alone give
    at least GRINDING_FLOOR = 80 bits, Winterfell's rule (``GRINDING_CONTRIBUTION_FLOOR`` in
    ``air/src/proof/security.rs``): proof of work must never rescue weak queries (34 queries at
    blowup 4 with 32 grinding bits is 68 bits, not 100).
``fri_folding``  each FRI layer folds f = 2^fri_log_folding functions with the powers of one
    challenge; a bad challenge (the folded word close to the code while the layer is far) has
    probability at most (f - 1) |D_i| / |F| (correlated agreement for curves, BCIKS20; Winterfell
    and Plonky3 count (f - 1)(|D| + 1)). The first layer, on the whole LDE domain, is the largest.
``deep_batching``  the DEEP quotients of every committed column and composition segment are
    combined with independent random coefficients: a far quotient gives a close combination with
    probability at most |D| / |F| (correlated agreement for affine spaces). With independent
    coefficients the number of columns does not enter (powers of one challenge would cost
    (k - 1)|D| / |F| for k quotients).
``ood``  the out-of-domain check compares two polynomials at a random z: cleared of the divisors
    (which all divide x^n - 1), the constraint side has degree < (d + 1) n for constraints of degree
    d and the composition side < (S + 1) n for S segments, so a false identity survives with
    probability at most (max(d, S) + 1) n / |F| (Winterfell: d (n + 1) + n - 1 with two opening
    points; the verifier rejects a z in the trace domain or the LDE coset outright).
``logup``  a LogUp argument over N denominators alpha - (t_0 + beta t_1 + ... + beta^(W-1) t_(W-1))
    with tuples of up to W fields: distinct tuples collide under beta with probability
    (W - 1) / |F| per pair, a non-zero sum of N fractions vanishes at alpha with probability
    (N - 1) / |F|, and alpha hits one of the N denominators (which clears a term from a cleared
    constraint) with probability N / |F|: N (W + 1) / |F| in all (Plonky3's p3-security counts
    N (W + 2) / |F| with W the payload width). N counts every row's terms (padding rows included:
    a zero-multiplicity term still divides) and the public side the verifier adds.
``composition``  one independent coefficient per constraint: a non-zero constraint quotient
    cancels with probability 1 / |F|.
``hash``  BLAKE3-256 collisions (birthday bound): 128 bits.

Grinding: ``grinding_bits`` before the query positions; ``commit_grinding_bits`` before every other
challenge whose error grows with the trace (the LogUp challenges, z, the DEEP coefficients and
each folding challenge), each credited only to its own round and, like the query grinding, only
when that round reaches the floor by itself. Over a ~124-bit field the LDE alone caps a round at
123.6 - log2 |D| bits (97.6 at 2^24 rows, blowup 4), so without this proof of work no choice of
blowup, queries or folding reaches 100 bits at 2^24 rows.

Defaults (why these): blowup 4 -- the degree-3 VM AIR needs a 2n coset for its constraints, and
a 4n LDE halves the NTT, Merkle and DEEP work of an 8n one (MLP: 3.8 s -> 2.7 s), for 42 queries
instead of 28 (see benchmarks/README.md); 42 queries give 84 >= 80 bits, and 16 query-grinding
bits make exactly 100; folding by 8 to a remainder of degree < 128 keeps proofs small; 16 commit
grinding bits lift the LogUp term of the VM AIR (90.6 bits at 2^24 rows) to 106.6 and cost
about a millisecond of proving per site. The figures (every proof and ``verify --json`` report
the floored minimum and its term):

==============  =========  =========  =========  =========
term (bits)     VM 2^16    VM 2^24    fib 2^16   fib 2^24
==============  =========  =========  =========  =========
fri_queries     100.0      100.0      100.0      100.0
fri_folding     118.8      110.8      118.8      110.8
deep_batching   121.6      113.6      121.6      113.6
ood             121.6      113.6      122.6      114.6
logup           114.6      106.6      --         --
composition     123.6      123.6      123.6      123.6
hash            128.0      128.0      128.0      128.0
security        100        100        100        100
==============  =========  =========  =========  =========

The VM columns count its 42 LogUp terms a row (tuples of up to 11 fields) and the public side of
a crc32 claim (4,293 denominators); max degree 3, two composition segments. Without the commit
grinding the same proofs would give 98 (VM, 2^16: logup 98.6), 92 (VM, 2^22, its largest
trace today: logup 92.6), 90 (VM, 2^24) and 94 bits (fib, 2^24: fri_folding 94.8); the old
formula (queries and grinding, capped by |D| / |F| with |F| taken as 2^124) said 100 up to 2^22.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from circuits.field import EXT_BITS, TWO_ADICITY

if TYPE_CHECKING:
    from circuits.air import Air

MAX_LOG_BLOWUP = 6
MAX_QUERIES = 255
MAX_GRINDING_BITS = 32
MAX_LOG_FOLDING = 4
MAX_LOG_FINAL = 10
MAX_LOG_TRACE = 24  # traces beyond 2^24 rows are refused before any allocation
DEFAULT_MIN_SECURITY_BITS = 100
GRINDING_FLOOR = 80  # a round's proof of work counts only if the round alone reaches this
HASH_BITS = 128  # BLAKE3-256 collision resistance


class ParameterError(ValueError):
    """Proof parameters out of range or below the verifier's minimum security."""


@dataclass(frozen=True)
class AirShape:
    """What the security formula needs to know about one AIR instance (see circuits.air.Air)."""

    log_trace_length: int
    max_degree: int  # the highest constraint degree, trace columns counting 1
    segments: int  # the composition polynomial has degree < segments * n
    lookup_denominators: int = 0  # LogUp denominators of the whole argument (0: no lookups)
    lookup_width: int = 0  # fields of the widest fingerprinted tuple

    @classmethod
    def of(cls, air: Air) -> AirShape:
        return cls(air.log_trace_length, air.max_degree(), air.num_segments(),
                   air.lookup_denominators(), air.lookup_width)


@dataclass(frozen=True)
class Security:
    """A proof's conjectured security: the floored weakest term and every term's bits."""

    bits: int
    limited_by: str
    terms: dict[str, float]


@dataclass(frozen=True)
class ProofParams:
    log_blowup: int = 2
    num_queries: int = 42
    grinding_bits: int = 16  # proof of work before the query positions
    fri_log_folding: int = 3  # each FRI layer folds by 2^fri_log_folding
    fri_log_final: int = 7  # stop folding once the degree bound is <= 2^fri_log_final
    commit_grinding_bits: int = 16  # proof of work before each trace-sized challenge (see above)

    @property
    def blowup(self) -> int:
        return 1 << self.log_blowup

    @property
    def folding(self) -> int:
        return 1 << self.fri_log_folding

    def check_ranges(self) -> None:
        """Raise ParameterError unless every field is in its allowed range."""
        if not 1 <= self.log_blowup <= MAX_LOG_BLOWUP:
            raise ParameterError(f"log_blowup {self.log_blowup} out of range")
        if not 1 <= self.num_queries <= MAX_QUERIES:
            raise ParameterError(f"num_queries {self.num_queries} out of range")
        if not 0 <= self.grinding_bits <= MAX_GRINDING_BITS:
            raise ParameterError(f"grinding_bits {self.grinding_bits} out of range")
        if not 0 <= self.commit_grinding_bits <= MAX_GRINDING_BITS:
            raise ParameterError(f"commit_grinding_bits {self.commit_grinding_bits} out of range")
        if not 1 <= self.fri_log_folding <= MAX_LOG_FOLDING:
            raise ParameterError(f"fri_log_folding {self.fri_log_folding} out of range")
        if not self.fri_log_folding - 1 <= self.fri_log_final <= MAX_LOG_FINAL:
            raise ParameterError(f"fri_log_final {self.fri_log_final} out of range")

    def security(self, shape: AirShape) -> Security:
        """The conjectured security of a proof of an AIR of this shape (module docstring)."""
        n = 1 << shape.log_trace_length
        lde = n << self.log_blowup

        def field_round(error_times_field: float) -> float:
            return EXT_BITS - math.log2(error_times_field)

        def ground(bits: float, pow_bits: int) -> float:
            return bits + pow_bits if bits >= GRINDING_FLOOR else bits

        g = self.commit_grinding_bits
        terms = {"fri_queries": ground(float(self.num_queries * self.log_blowup),
                                       self.grinding_bits)}
        if self.num_fri_layers(shape.log_trace_length):
            terms["fri_folding"] = ground(field_round((self.folding - 1) * lde), g)
        terms["deep_batching"] = ground(field_round(lde), g)
        terms["ood"] = ground(field_round((max(shape.max_degree, shape.segments) + 1) * n), g)
        if shape.lookup_denominators:
            terms["logup"] = ground(field_round(
                shape.lookup_denominators * (max(shape.lookup_width, 1) + 1)), g)
        terms["composition"] = EXT_BITS
        terms["hash"] = float(HASH_BITS)
        weakest = min(terms, key=terms.__getitem__)
        return Security(math.floor(terms[weakest]), weakest, terms)

    def num_fri_layers(self, log_trace_length: int) -> int:
        """FRI layers committed before the remainder polynomial is sent in the clear."""
        excess = max(0, log_trace_length - self.fri_log_final)
        return -(-excess // self.fri_log_folding)

    def check_shape(self, log_trace_length: int) -> None:
        """Raise ParameterError if the trace size cannot be proven with these parameters."""
        if not 1 <= log_trace_length <= MAX_LOG_TRACE:
            raise ParameterError(f"trace of 2^{log_trace_length} rows out of range")
        if log_trace_length + self.log_blowup > TWO_ADICITY:
            raise ParameterError("LDE domain exceeds the field's two-adicity")
        if self.num_fri_layers(log_trace_length) * self.fri_log_folding > log_trace_length:
            raise ParameterError("FRI folding overshoots the trace degree")


DEFAULT_PARAMS = ProofParams()
