"""STARK verification: the protocol's definition.

The prover (package ``prover``) produces exactly what this module accepts. Protocol, with every
public input and commitment absorbed before the challenges that depend on it; "pow" marks a
proof-of-work nonce of ``commit_grinding_bits`` checked and absorbed right before a challenge
(verifier.params says why):

 1. absorb the header (AIR name, parameters, shape) and the AIR's public inputs
 2. absorb the main-trace root; pow; draw the AIR's extension challenges (LogUp alpha, ...)
 3. absorb the auxiliary-trace root; draw one composition coefficient per constraint
 4. absorb the composition root (the composition polynomial C split into segments C_k,
    C(x) = sum_k x^(k n) C_k(x)); pow; draw the out-of-domain point z, which must lie outside
    the trace domain and the LDE coset
 5. absorb the trace values at z and g z and the segments at z; check that the constraints
    evaluated at z, divided by their domains' vanishing polynomials and combined, equal C(z)
 6. pow; draw DEEP coefficients; the DEEP polynomial
       D(x) = sum_j a_j (t_j(x) - t_j(z)) / (x - z) + b_j (t_j(x) - t_j(gz)) / (x - gz)
              + sum_k c_k (C_k(x) - C_k(z)) / (x - z)
    has degree < n exactly when the openings are honest
 7. FRI on D over the LDE coset: absorb each layer root, pow, draw its folding challenge; absorb
    the remainder polynomial; check the query nonce (``grinding_bits``); draw the query positions
 8. open every tree at the queries, recompute D there and follow each query through the layers

Before any of it the proof's conjectured security (verifier.params) is computed for this AIR and
refused below the caller's minimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from circuits.air import Air, Domain, ZeroDenominator
from circuits.field import (GENERATOR, P, U64, Fp4, Fp4Scalar, add, ext_basis_weights,
                            ext_batch_inv, ext_eval_at_base, ext_eval_poly, ext_from_base, ext_inv,
                            ext_mul, ext_pow, lincomb, mul, root_of_unity, sub)
from verifier import merkle
from verifier.fri import fold_cosets
from verifier.params import (DEFAULT_MIN_SECURITY_BITS, AirShape, ParameterError, ProofParams,
                             Security)
from verifier.proof import Proof, ProofFormatError, TreeOpening, decode
from verifier.transcript import Transcript, grinding_ok

SHIFT = GENERATOR  # the LDE coset offset: outside every subgroup, so divisors never vanish


class InvalidProof(Exception):
    """The proof does not verify; the message says which check failed."""


@dataclass(frozen=True)
class Verdict:
    """A verification's outcome; a valid proof's conjectured security and its weakest term."""

    valid: bool
    reason: str = ""
    security_bits: int = 0
    limited_by: str = ""

    def __bool__(self) -> bool:
        return self.valid


def header_bytes(proof: Proof) -> bytes:
    """The header fields absorbed first (everything that fixes the proof's shape)."""
    pr = proof.params
    return bytes([pr.log_blowup, pr.num_queries, pr.grinding_bits, pr.fri_log_folding,
                  pr.fri_log_final, pr.commit_grinding_bits, proof.log_trace_length]) + \
        proof.main_width.to_bytes(2, "little") + proof.aux_width.to_bytes(2, "little") + \
        bytes([proof.num_segments])


def ood_bytes(proof: Proof) -> bytes:
    return b"".join(np.ascontiguousarray(a, dtype="<u4").tobytes()
                    for a in (proof.ood_main, proof.ood_aux, proof.ood_comp))


def leaf_bytes(values: np.ndarray) -> list[bytes]:
    """Merkle leaf encoding: each row's field elements as little-endian u32."""
    rows = np.ascontiguousarray(values, dtype="<u4")
    return [r.tobytes() for r in rows]


def num_challenge_nonces(air: Air, fri_layers: int) -> int:
    """Proof-of-work nonces before the LogUp challenges (if any), z, the DEEP coefficients and
    every folding challenge, in protocol order."""
    return (1 if air.num_challenges else 0) + 2 + fri_layers


def in_lde_coset(z: np.ndarray, lde_size: int) -> bool:
    """Whether an extension point lies in SHIFT * <w_lde> (then (z / SHIFT)^lde_size = 1)."""
    return bool(np.array_equal(ext_pow(z, lde_size), ext_from_base(U64(pow(SHIFT, lde_size, P)))))


def num_deep_coefficients(air: Air, segments: int) -> int:
    return 2 * (air.width + air.aux_width) + segments


def vanishing_at(domain: Domain, z: np.ndarray, n: int) -> np.ndarray:
    """The divisor of a constraint domain evaluated at extension point(s) z (..., 4)."""
    g_last = pow(root_of_unity(n), n - 1, P)
    if domain is Domain.FIRST:
        return sub(z, ext_from_base(np.uint64(1)))
    if domain is Domain.LAST:
        return sub(z, ext_from_base(np.uint64(g_last)))
    zn = sub(ext_pow(z, n), ext_from_base(np.uint64(1)))
    if domain is Domain.EVERY:
        return zn
    return ext_mul(zn, ext_inv(sub(z, ext_from_base(np.uint64(g_last)))))


def composition_at(air: Air, constraints: list[tuple[Domain, Any]], alphas: np.ndarray,
                   z: np.ndarray) -> np.ndarray:
    """sum_i alpha_i c_i(z) / Z_i(z) for constraint values already evaluated at z."""
    terms = ext_mul(Fp4.stack([val for _, val in constraints]), alphas[:len(constraints)])
    domains = np.array([dom for dom, _ in constraints], dtype=np.int64)
    total = np.zeros(4, dtype=np.uint64)
    for dom in Domain:
        mine = terms[domains == dom]
        if len(mine):
            num = mine.sum(axis=0, dtype=np.uint64) % np.uint64(P)  # < 2^33 terms below 2^31
            total = add(total, ext_mul(num, ext_inv(vanishing_at(dom, z, air.trace_length))))
    return total


def ood_consistent(air: Air, challenges: list, alphas: np.ndarray, z: np.ndarray,
                   ood_main: np.ndarray, ood_aux: np.ndarray, ood_comp: np.ndarray) -> bool:
    """The constraints, evaluated on the trace's values at z and g z, agree with the
    composition segments' values at z (recombined with z^n): the out-of-domain check."""
    cols = Fp4Scalar.of_rows
    constraints = air.evaluate(cols(ood_main[0]), cols(ood_main[1]), cols(ood_aux[0]),
                               cols(ood_aux[1]), cols(challenges))
    expected = composition_at(air, constraints, alphas, z)
    return np.array_equal(expected, ext_eval_poly(ood_comp, ext_pow(z, air.trace_length)))


def deep_at(x: np.ndarray, z: np.ndarray, gz: np.ndarray, coeffs: np.ndarray, proof: Proof,
            rows: tuple[np.ndarray, np.ndarray | None, np.ndarray]) -> np.ndarray:
    """The DEEP polynomial at base points x (q,) from the opened main/aux/composition rows.

    Every sum of extension values times extension coefficients is one base linear combination:
    the values' coordinates are base rows, weighted by x^c times the coefficient."""
    main, aux, comp = rows
    w, aw = proof.main_width, proof.aux_width
    basis = ext_basis_weights(coeffs)  # row 4k + c: x^c * coeffs[k]
    a_main, b_main = coeffs[:w], coeffs[w:2 * w]
    a_aux, b_aux = basis[8 * w:8 * w + 4 * aw], basis[8 * w + 4 * aw:8 * (w + aw)]
    c_comp = basis[8 * (w + aw):]
    opened = np.concatenate([main.T, aux.T if aw else np.zeros((0, len(x)), np.uint64), comp.T])
    at_x_z = lincomb(opened, np.concatenate([a_main, a_aux, c_comp]))
    at_x_gz = lincomb(opened[:w + 4 * aw], np.concatenate([b_main, b_aux]))
    claimed_z = np.concatenate([proof.ood_main[0], proof.ood_aux[0], proof.ood_comp]).reshape(-1, 1)
    claimed_gz = np.concatenate([proof.ood_main[1], proof.ood_aux[1]]).reshape(-1, 1)
    at_z = lincomb(claimed_z, np.concatenate([basis[:4 * w], a_aux, c_comp]))
    at_gz = lincomb(claimed_gz, np.concatenate([basis[4 * w:8 * w], b_aux]))
    xe = ext_from_base(x)
    den = ext_batch_inv(np.concatenate([sub(xe, z), sub(xe, gz)]))
    q = len(x)
    return add(ext_mul(sub(at_x_z, at_z), den[:q]), ext_mul(sub(at_x_gz, at_gz), den[q:]))


def _check_tree(name: str, root: bytes, depth: int, indices: np.ndarray, opening: TreeOpening) -> None:
    if len(opening.values) != len(indices):
        raise InvalidProof(f"{name}: wrong number of opened leaves")
    if not merkle.verify_batch(root, depth, indices.tolist(), leaf_bytes(opening.values),
                               opening.siblings):
        raise InvalidProof(f"{name}: Merkle opening does not match the commitment")


def _proof_of_work(t: Transcript, nonce: int, bits: int, before: str) -> None:
    if not grinding_ok(t.state, nonce, bits):
        raise InvalidProof(f"proof of work before {before} does not meet the difficulty")
    t.absorb_nonce(nonce)


def _points(shift: int, domain_size: int, positions: np.ndarray) -> np.ndarray:
    w = root_of_unity(domain_size)
    return np.array([shift * pow(w, int(i), P) % P for i in positions], dtype=np.uint64)


def check(air: Air, proof_bytes: bytes,
          min_security_bits: int = DEFAULT_MIN_SECURITY_BITS) -> Security:
    """Verify or raise InvalidProof; returns the proof's conjectured security."""
    try:
        proof = decode(proof_bytes)
    except ProofFormatError as exc:
        raise InvalidProof(f"malformed proof: {exc}") from None
    pr: ProofParams = proof.params
    n, log_n = air.trace_length, air.log_trace_length
    if proof.air_name != air.name:
        raise InvalidProof(f"proof is for AIR {proof.air_name!r}, not {air.name!r}")
    segments = air.num_segments()
    if (proof.log_trace_length, proof.main_width, proof.aux_width, proof.num_segments) != \
            (log_n, air.width, air.aux_width, segments):
        raise InvalidProof("proof shape does not match the statement")
    if segments > pr.blowup:
        raise InvalidProof("blowup is smaller than the constraint degree requires")
    try:
        pr.check_shape(log_n)
    except ParameterError as exc:
        raise InvalidProof(str(exc)) from None
    security = pr.security(AirShape.of(air))
    if security.bits < min_security_bits:
        raise InvalidProof(f"proof offers {security.bits} bits of security (limited by "
                           f"{security.limited_by}), below the required {min_security_bits}")
    if len(proof.challenge_nonces) != num_challenge_nonces(air, len(proof.fri_roots)):
        raise InvalidProof("wrong number of proof-of-work nonces")
    nonces = iter(proof.challenge_nonces)
    lde_size = n << pr.log_blowup

    # 1-4: header, public inputs, commitments and their challenges.
    t = Transcript(b"memjit-stark/" + air.name.encode())
    t.absorb(b"header", header_bytes(proof))
    t.absorb(b"public", air.public_inputs_bytes())
    t.absorb(b"main", proof.main_root)
    challenges = []
    if air.num_challenges:
        _proof_of_work(t, next(nonces), pr.commit_grinding_bits, "the lookup challenges")
        challenges = list(t.draw_exts(b"challenges", air.num_challenges))
    if air.aux_width:
        t.absorb(b"aux", proof.aux_root)
    degrees = air.constraint_degrees()
    alphas = t.draw_exts(b"composition", len(degrees))
    t.absorb(b"composition", proof.comp_root)
    _proof_of_work(t, next(nonces), pr.commit_grinding_bits, "the out-of-domain point")
    z = t.draw_ext(b"ood")
    g = root_of_unity(n)
    gz = mul(z, np.uint64(g))

    # 5: out-of-domain consistency of the composition polynomial.
    t.absorb(b"ood", ood_bytes(proof))
    zn = ext_pow(z, n)
    if not zn[1:].any() and zn[0] == 1:
        raise InvalidProof("out-of-domain point fell in the trace domain")
    if in_lde_coset(z, lde_size):  # then a DEEP quotient would divide by zero
        raise InvalidProof("out-of-domain point fell in the LDE coset")
    try:
        consistent = ood_consistent(air, challenges, alphas, z, proof.ood_main, proof.ood_aux,
                                    proof.ood_comp)
    except ZeroDenominator as exc:
        raise InvalidProof(str(exc)) from None
    if not consistent:
        raise InvalidProof("constraints do not hold at the out-of-domain point")

    # 6-7: DEEP coefficients, FRI commitments, remainder, grinding, queries.
    _proof_of_work(t, next(nonces), pr.commit_grinding_bits, "the DEEP coefficients")
    coeffs = t.draw_exts(b"deep", num_deep_coefficients(air, segments))
    betas = []
    for i, root in enumerate(proof.fri_roots):
        t.absorb(b"fri", root)
        _proof_of_work(t, next(nonces), pr.commit_grinding_bits, f"folding challenge {i}")
        betas.append(t.draw_ext(b"fold"))
    t.absorb(b"remainder", np.ascontiguousarray(proof.fri_final, dtype="<u4").tobytes())
    _proof_of_work(t, proof.nonce, pr.grinding_bits, "the queries")
    positions = np.unique(t.draw_indices(b"queries", pr.num_queries, lde_size))

    # 8: openings of the trace and composition trees at the query positions.
    depth = log_n + pr.log_blowup
    _check_tree("main trace", proof.main_root, depth, positions, proof.main_open)
    if air.aux_width:
        _check_tree("aux trace", proof.aux_root, depth, positions, proof.aux_open)
    _check_tree("composition", proof.comp_root, depth, positions, proof.comp_open)
    x = _points(SHIFT, lde_size, positions)
    values = deep_at(x, z, gz, coeffs, proof,
                     (proof.main_open.values, proof.aux_open.values if air.aux_width else None,
                      proof.comp_open.values))

    # FRI: follow every query through the layers down to the remainder polynomial.
    fold, log_fold = pr.folding, pr.fri_log_folding
    shift, size = SHIFT, lde_size
    for i, (root, beta, opening) in enumerate(zip(proof.fri_roots, betas, proof.fri_open)):
        leaves = size // fold
        leaf_idx = np.unique(positions % leaves)
        _check_tree(f"FRI layer {i}", root, depth - (i + 1) * log_fold, leaf_idx, opening)
        cosets = opening.values.reshape(len(leaf_idx), fold, 4)
        row = np.searchsorted(leaf_idx, positions % leaves)
        if not np.array_equal(cosets[row, positions // leaves], values):
            raise InvalidProof(f"FRI layer {i} disagrees with the previous layer")
        values = fold_cosets(cosets, _points(shift, size, leaf_idx), beta, log_fold)
        positions = leaf_idx
        shift, size = pow(shift, fold, P), leaves
    remainder_at = ext_eval_at_base(proof.fri_final, _points(shift, size, positions))
    if not np.array_equal(remainder_at, values):
        raise InvalidProof("FRI remainder polynomial disagrees with the last layer")
    return security


def verify_air(air: Air, proof_bytes: bytes,
               min_security_bits: int = DEFAULT_MIN_SECURITY_BITS) -> Verdict:
    """Verify a proof for an AIR instance; never raises for a bad proof."""
    try:
        security = check(air, proof_bytes, min_security_bits)
    except InvalidProof as exc:
        return Verdict(False, str(exc))
    return Verdict(True, "", security.bits, security.limited_by)


def verify(air_cls: type[Air], public_inputs: Any, proof_bytes: bytes,
           min_security_bits: int = DEFAULT_MIN_SECURITY_BITS) -> Verdict:
    """Verify ``proof_bytes`` for the statement ``air_cls(public_inputs)``."""
    try:
        air = air_cls(public_inputs)
    except ValueError as exc:
        return Verdict(False, f"bad statement: {exc}")
    return verify_air(air, proof_bytes, min_security_bits)
