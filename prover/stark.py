"""The STARK prover: produces exactly the proofs verifier.stark accepts (same transcript order)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from circuits.air import Air
from circuits.field import root_of_unity
from circuits.kernels import mul
from circuits.ntt import coset_ntt, intt
from prover import fri
from prover.blake3_batch import grind
from prover.composition import (ConstraintViolation, check_trace, composition_evals,
                                composition_segments)
from prover.deep import deep_evals, evaluate_at, recombine
from prover.domain import LdeDomain
from prover.merkle import MerkleTree
from verifier.params import DEFAULT_PARAMS, AirShape, ProofParams
from verifier.proof import Proof, TreeOpening, encode
from verifier.stark import SHIFT, header_bytes, num_deep_coefficients, ood_bytes, ood_consistent
from verifier.transcript import Transcript


@dataclass
class ProverStats:
    """Wall time per prover phase (seconds), for benchmarks and profiling: run and witness
    (claims only: the call cross-checked against wasmtime, the AIR witness), lde (NTTs),
    merkle (every commitment, FRI layers included), aux_trace, constraints (evaluation and
    interpolation of the composition polynomial), ood, deep, fri (folding), grinding (every
    proof of work), openings. ``on_phase`` (if set) hears each phase's name as it starts, for
    progress displays."""

    phases: dict[str, float] = field(default_factory=dict)
    on_phase: Callable[[str], None] | None = None
    security_bits: int = 0  # the proof's conjectured security (verifier.params) ...
    limited_by: str = ""  # ... and the term that limits it

    @contextmanager
    def phase(self, name: str):
        if self.on_phase is not None:
            self.on_phase(name)
        start = time.perf_counter()
        yield
        self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start


LDE_CHUNK = 16  # columns extended per NTT call in commit_columns


class StarkProver:
    """Proves one AIR statement. Each protocol step is a method, so adversarial tests can
    subclass it and lie at exactly one step while the rest of the proof stays honest."""

    def __init__(self, air: Air, params: ProofParams = DEFAULT_PARAMS, *, check: bool = True,
                 stats: ProverStats | None = None) -> None:
        params.check_ranges()
        params.check_shape(air.log_trace_length)
        self.air, self.params, self.check = air, params, check
        self.stats = stats or ProverStats()
        security = params.security(AirShape.of(air))
        self.stats.security_bits, self.stats.limited_by = security.bits, security.limited_by
        self.domain = LdeDomain(air.trace_length, params.blowup)
        self.segments = air.num_segments()
        # Constraints are evaluated on the smallest coset that determines C (degree < segments*n),
        # a sub-coset of the LDE coset: every (blowup / ce_blowup)-th LDE point.
        self.ce_domain = LdeDomain(air.trace_length, 1 << (self.segments - 1).bit_length())
        if self.segments > params.blowup:
            raise ValueError(f"{air.name} needs a blowup of at least {self.segments} for its "
                             f"constraint degree, got {params.blowup}")

    def commit_columns(self, coeffs: np.ndarray) -> tuple[np.ndarray, MerkleTree]:
        """LDE of coefficient rows (k, n) onto the coset and a Merkle tree over its rows.

        The LDE is kept as uint32 (every value is below p < 2^31), extended a few columns at a
        time: wide traces at 2^20 rows would otherwise hold twice their LDE in uint64 words."""
        with self.stats.phase("lde"):
            lde = np.empty((len(coeffs), self.domain.size), dtype=np.uint32)
            for lo in range(0, len(coeffs), LDE_CHUNK):
                lde[lo:lo + LDE_CHUNK] = coset_ntt(coeffs[lo:lo + LDE_CHUNK], self.domain.size, SHIFT)
        with self.stats.phase("merkle"):
            return lde, MerkleTree.from_field_rows(lde.T)

    def proof_of_work(self, t: Transcript, bits: int) -> int:
        """Grind a nonce for the transcript's state and absorb it (verifier.stark's "pow")."""
        with self.stats.phase("grinding"):
            nonce = grind(t.state, bits)
        t.absorb_nonce(nonce)
        return nonce

    def ood_values(self, z: np.ndarray, gz: np.ndarray, main_coeffs: np.ndarray,
                   aux_coeffs: np.ndarray, seg_coeffs: np.ndarray) -> tuple[np.ndarray, ...]:
        """The trace at z and g z, the auxiliary trace at z and g z, the segments at z."""
        ood_main = np.stack([evaluate_at(main_coeffs, z), evaluate_at(main_coeffs, gz)])
        ood_aux = np.stack([recombine(evaluate_at(aux_coeffs, z)),
                            recombine(evaluate_at(aux_coeffs, gz))]) if self.air.aux_width \
            else np.zeros((2, 0, 4), dtype=np.uint64)
        return ood_main, ood_aux, recombine(evaluate_at(seg_coeffs, z))

    def prove(self, main: np.ndarray) -> bytes:
        """Prove that `main` (width, n) satisfies the AIR; returns the encoded proof.

        The prover checks its own work: the composition polynomial must meet its degree bound
        where the evaluation coset leaves slack, and must agree with the constraints at the
        out-of-domain point (the verifier's check); either fails (with overwhelming
        probability) iff some constraint fails on the trace, which is then located for the
        error message. check=False skips the checks: the adversarial tests use it to play a
        malicious prover.
        """
        air, params, domain, stats, check = self.air, self.params, self.domain, self.stats, self.check
        n, log_n, segments = air.trace_length, air.log_trace_length, self.segments
        if main.shape != (air.width, n):
            raise ValueError(f"trace shape {main.shape} != ({air.width}, {n})")
        main = np.ascontiguousarray(main, dtype=np.uint64)
        skeleton = Proof(air.name, params, log_n, air.width, air.aux_width, segments,
                         b"", None, b"", *([None] * 5), [], 0, None, None, None)
        nonces = []

        t = Transcript(b"memjit-stark/" + air.name.encode())
        t.absorb(b"header", header_bytes(skeleton))
        t.absorb(b"public", air.public_inputs_bytes())

        with stats.phase("lde"):
            main_coeffs = intt(main)
        main_lde, main_tree = self.commit_columns(main_coeffs)
        t.absorb(b"main", main_tree.root)
        challenges = []
        if air.num_challenges:
            nonces.append(self.proof_of_work(t, params.commit_grinding_bits))
            challenges = list(t.draw_exts(b"challenges", air.num_challenges))

        aux_coeffs = np.zeros((0, n), dtype=np.uint64)
        aux_lde = np.zeros((0, domain.size), dtype=np.uint32)
        aux_root = aux = None
        if air.aux_width:
            with stats.phase("aux_trace"):
                aux = air.build_aux_trace(main, challenges)
            with stats.phase("lde"):
                aux_coeffs = intt(np.ascontiguousarray(aux.transpose(0, 2, 1)).reshape(-1, n))
            aux_lde, aux_tree = self.commit_columns(aux_coeffs)
            aux_root = aux_tree.root
            t.absorb(b"aux", aux_root)

        self.alphas = t.draw_exts(b"composition", len(air.constraint_degrees()))
        with stats.phase("constraints"):
            evals = composition_evals(air, self.ce_domain, main_lde, aux_lde,
                                      domain.size // self.ce_domain.size, challenges, self.alphas)
            try:
                seg_coeffs = composition_segments(air, evals, segments, check).reshape(segments * 4, n)
            except ConstraintViolation:
                # C exceeds its degree bound iff (w.h.p. over the alphas) some constraint fails:
                # find which one and where, for the message.
                check_trace(air, main, aux, challenges)
                raise
            del evals
        comp_lde, comp_tree = self.commit_columns(seg_coeffs)
        t.absorb(b"composition", comp_tree.root)

        nonces.append(self.proof_of_work(t, params.commit_grinding_bits))
        z = t.draw_ext(b"ood")
        gz = mul(z, np.uint64(root_of_unity(n)))
        self.z, self.challenges = z, challenges
        with stats.phase("ood"):
            ood_main, ood_aux, ood_comp = self.ood_values(z, gz, main_coeffs, aux_coeffs, seg_coeffs)
        skeleton.ood_main, skeleton.ood_aux, skeleton.ood_comp = ood_main, ood_aux, ood_comp
        if check and not ood_consistent(air, challenges, self.alphas, z, ood_main, ood_aux,
                                        ood_comp):
            # With no slack in the evaluation coset (segments * n points) a failing constraint
            # leaves no trace in the degree bound, but C is then no polynomial: it misses its
            # value at the random z (w.h.p.), exactly where the verifier would look.
            check_trace(air, main, aux, challenges)  # raises, naming the constraint and row
            raise ConstraintViolation(f"{air.name}: constraints fail at the out-of-domain point")
        t.absorb(b"ood", ood_bytes(skeleton))

        nonces.append(self.proof_of_work(t, params.commit_grinding_bits))
        coeffs = t.draw_exts(b"deep", num_deep_coefficients(air, segments))
        with stats.phase("deep"):
            deep = deep_evals(domain.x, z, gz, coeffs, (main_lde, aux_lde, comp_lde),
                              (ood_main, ood_aux, ood_comp))
        layers, remainder, fri_nonces = fri.commit(
            deep, SHIFT, log_n, params, t, check, stats,
            lambda: self.proof_of_work(t, params.commit_grinding_bits))
        nonces += fri_nonces
        del deep
        nonce = self.proof_of_work(t, params.grinding_bits)
        positions = np.unique(t.draw_indices(b"queries", params.num_queries, domain.size))

        with stats.phase("openings"):
            idx = positions.tolist()
            main_open = TreeOpening(main_lde[:, positions].T.astype(np.uint64),
                                    main_tree.open(idx))
            aux_open = TreeOpening(aux_lde[:, positions].T.astype(np.uint64),
                                   aux_tree.open(idx)) if air.aux_width else None
            comp_open = TreeOpening(comp_lde[:, positions].T.astype(np.uint64),
                                    comp_tree.open(idx))
            fri_open = fri.open_layers(layers, positions)
        proof = Proof(air.name, params, log_n, air.width, air.aux_width, segments, main_tree.root,
                      aux_root, comp_tree.root, ood_main, ood_aux, ood_comp,
                      [layer.tree.root for layer in layers], remainder, nonces, nonce,
                      main_open, aux_open, comp_open, fri_open)
        return encode(proof)


def prove(air: Air, main: np.ndarray, params: ProofParams = DEFAULT_PARAMS, *, check: bool = True,
          stats: ProverStats | None = None) -> bytes:
    """Prove that `main` (width, n) satisfies `air` with `params`; returns the encoded proof."""
    return StarkProver(air, params, check=check, stats=stats).prove(main)
