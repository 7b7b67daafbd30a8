"""FRI folding and the query-phase check of a folded oracle.

Layer i holds f_i on the coset s_i * <w_i> of size M_i (natural order), s_{i+1} = s_i^F.
A Merkle leaf of layer i groups the F = 2^k values at positions c + j * M_i / F (j < F): the
coset of x_c = s_i * w_i^c under the F-th roots of unity. Folding by F is k binary folds with
challenges beta, beta^2, beta^4, ...; a binary fold maps the pair f(x), f(-x) to

    f'(x^2) = (f(x) + f(-x)) / 2 + beta * (f(x) - f(-x)) / (2x),

so f_{i+1}(x_c^F) = sum_k beta^k f_k(x_c^F) where f(x) = sum_k x^k f_k(x^F). The prover applies
``fold_once`` to whole layers; the verifier to the opened cosets.
"""

from __future__ import annotations

import numpy as np

from circuits.field import P, add, batch_inv, ext_mul, ext_scale, mul, powers, root_of_unity, sub

INV_TWO = (P + 1) // 2


def fold_once(lo: np.ndarray, hi: np.ndarray, inv_two_x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """One binary fold: lo = f(x), hi = f(-x) (..., 4), inv_two_x = 1/(2x) (...), beta (4,)."""
    even = mul(add(lo, hi), np.uint64(INV_TWO))
    odd = ext_scale(sub(lo, hi), inv_two_x)
    return add(even, ext_mul(odd, beta))


def fold_cosets(values: np.ndarray, x: np.ndarray, beta: np.ndarray, log_folding: int) -> np.ndarray:
    """Fold opened cosets: values (n, F, 4) at x_c * zeta^j, x (n,) the coset offsets -> (n, 4)."""
    inv_two_x = batch_inv(mul(np.asarray(x, dtype=np.uint64), np.uint64(2)))
    for t in range(log_folding):
        half = values.shape[1] // 2
        twiddles = powers(pow(root_of_unity(2 * half), P - 2, P), half)
        values = fold_once(values[:, :half], values[:, half:],
                           mul(inv_two_x[:, None], twiddles[None, :]), beta)
        inv_two_x = mul(mul(inv_two_x, inv_two_x), np.uint64(2))  # 1/(2x^2) = 2 * (1/(2x))^2
        beta = ext_mul(beta, beta)
    return values[:, 0]
