"""Out-of-domain evaluations and the DEEP quotient polynomial over the LDE."""

from __future__ import annotations

import numpy as np

from circuits.field import P, add, ext_batch_inv, ext_from_base, ext_mul, ext_powers, lincomb, sub

BASIS = np.eye(4, dtype=np.uint64)  # 1, x, x^2, x^3 as extension elements


def recombine(coord_values: np.ndarray) -> np.ndarray:
    """Extension values of k ext columns from their 4k coordinate columns' values (4k, ..., 4)."""
    k = len(coord_values) // 4
    v = coord_values.reshape(k, 4, *coord_values.shape[1:])
    out = np.zeros((k,) + coord_values.shape[1:], dtype=np.uint64)
    for c in range(4):
        out = add(out, ext_mul(v[:, c], BASIS[c]))
    return out


def evaluate_at(coeffs: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Base-field polynomials (k, n) in coefficient form at one extension point -> (k, 4)."""
    return lincomb(np.ascontiguousarray(coeffs.T), ext_powers(point, coeffs.shape[1]))


def coordinate_weights(weights: np.ndarray) -> np.ndarray:
    """Weights (k, 4) for k ext columns, spread over their 4k coordinate columns."""
    return ext_mul(BASIS[None, :, :], weights[:, None, :]).reshape(-1, 4)


def ext_sum(a: np.ndarray) -> np.ndarray:
    return a.sum(axis=0, dtype=np.uint64) % np.uint64(P)


def deep_evals(x: np.ndarray, z: np.ndarray, gz: np.ndarray, coeffs: np.ndarray,
               columns: tuple[np.ndarray, np.ndarray, np.ndarray],
               ood: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """D(x) on the LDE: columns are base-coordinate LDEs (main (w, M), aux (4a, M), comp (4s, M));
    ood are (main (2, w, 4), aux (2, a, 4), comp (s, 4)); coefficients in the verifier's order."""
    main, aux, comp = columns
    w, a, s = len(main), len(aux) // 4, len(comp) // 4
    a_main, b_main = coeffs[:w], coeffs[w:2 * w]
    a_aux, b_aux = coeffs[2 * w:2 * w + a], coeffs[2 * w + a:2 * w + 2 * a]
    c_comp = coeffs[2 * (w + a):]
    at_x_z = add(lincomb(main, a_main), lincomb(comp, coordinate_weights(c_comp)))
    at_x_gz = lincomb(main, b_main)
    at_z = add(ext_sum(ext_mul(ood[0][0], a_main)), ext_sum(ext_mul(ood[2], c_comp)))
    at_gz = ext_sum(ext_mul(ood[0][1], b_main))
    if a:
        at_x_z = add(at_x_z, lincomb(aux, coordinate_weights(a_aux)))
        at_x_gz = add(at_x_gz, lincomb(aux, coordinate_weights(b_aux)))
        at_z = add(at_z, ext_sum(ext_mul(ood[1][0], a_aux)))
        at_gz = add(at_gz, ext_sum(ext_mul(ood[1][1], b_aux)))
    xe = ext_from_base(x)
    return add(ext_mul(sub(at_x_z, at_z), ext_batch_inv(sub(xe, z))),
               ext_mul(sub(at_x_gz, at_gz), ext_batch_inv(sub(xe, gz))))
