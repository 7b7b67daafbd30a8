"""Proof parameters and the conjectured security they give.

Conjectured security (ethSTARK / Winterfell convention): each FRI query adds log2(blowup) bits,
grinding adds its bits, and the total is capped by the extension field: an out-of-domain point
or folding challenge from F_p^4 collides with a bad set of size ~ the LDE domain with
probability |LDE| / |F_p^4|.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuits.field import EXT_BITS, TWO_ADICITY

MAX_LOG_BLOWUP = 6
MAX_QUERIES = 255
MAX_GRINDING_BITS = 32
MAX_LOG_FOLDING = 4
MAX_LOG_FINAL = 10
MAX_LOG_TRACE = 24  # traces beyond 2^24 rows are refused before any allocation
DEFAULT_MIN_SECURITY_BITS = 100


class ParameterError(ValueError):
    """Proof parameters out of range or below the verifier's minimum security."""


@dataclass(frozen=True)
class ProofParams:
    # Blowup 4 (not 8): the degree-3 VM AIR needs a 2n coset for its constraints, and a 4n LDE
    # halves the NTT, Merkle and DEEP work of an 8n one (MLP: 3.8 s -> 2.7 s), for 42 queries
    # instead of 28 (proofs ~35 % larger, verify +2 ms). See benchmarks/README.md.
    log_blowup: int = 2
    num_queries: int = 42
    grinding_bits: int = 16
    fri_log_folding: int = 3  # each FRI layer folds by 2^fri_log_folding
    fri_log_final: int = 7  # stop folding once the degree bound is <= 2^fri_log_final

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
        if not 1 <= self.fri_log_folding <= MAX_LOG_FOLDING:
            raise ParameterError(f"fri_log_folding {self.fri_log_folding} out of range")
        if not self.fri_log_folding - 1 <= self.fri_log_final <= MAX_LOG_FINAL:
            raise ParameterError(f"fri_log_final {self.fri_log_final} out of range")

    def security_bits(self, log_trace_length: int) -> int:
        """Conjectured bits of security for a trace of 2^log_trace_length rows."""
        conjectured = self.num_queries * self.log_blowup + self.grinding_bits
        field_cap = EXT_BITS - (log_trace_length + self.log_blowup)
        return min(conjectured, field_cap)

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
