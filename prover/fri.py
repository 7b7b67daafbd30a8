"""FRI commit phase (fold layer by layer, commit each) and query openings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from circuits.field import P, root_of_unity
from circuits.kernels import emul, ext_mul, mul, powers
from circuits.ntt import coset_intt
from prover.merkle import MerkleTree
from verifier.fri import INV_TWO
from verifier.params import ProofParams
from verifier.proof import TreeOpening
from verifier.transcript import Transcript


_P = np.uint64(P)


@dataclass
class FriLayer:
    leaves: np.ndarray  # (size / F, 4F): leaf c holds the coset c + j * size / F, j < F
    tree: MerkleTree


def layer_leaves(f: np.ndarray, folding: int) -> np.ndarray:
    """Group the F values of each coset into one Merkle leaf."""
    size = len(f)
    return np.ascontiguousarray(f.reshape(folding, size // folding, 4).transpose(1, 0, 2)
                                ).reshape(size // folding, 4 * folding)


@numba.njit(cache=True, parallel=True)
def _fold_kernel(f, inv_two_x, beta):
    """verifier.fri.fold_once on the two halves of f, fused into one parallel pass."""
    half = f.shape[0] // 2
    out = np.empty((half, 4), dtype=np.uint64)
    inv2 = np.uint64(INV_TWO)
    for i in numba.prange(half):
        e = np.empty(4, dtype=np.uint64)
        d = np.empty(4, dtype=np.uint64)
        for c in range(4):
            lo, hi = f[i, c], f[i + half, c]
            e[c] = ((lo + hi) % _P) * inv2 % _P
            d[c] = (lo + _P - hi) % _P * inv_two_x[i] % _P
        o0, o1, o2, o3 = emul(d[0], d[1], d[2], d[3], beta[0], beta[1], beta[2], beta[3])
        out[i, 0] = (e[0] + o0) % _P
        out[i, 1] = (e[1] + o1) % _P
        out[i, 2] = (e[2] + o2) % _P
        out[i, 3] = (e[3] + o3) % _P
    return out


def fold_layer(f: np.ndarray, shift: int, beta: np.ndarray, log_folding: int) -> tuple[np.ndarray, int]:
    """Fold f on shift * <w_size> by 2^log_folding; returns the new layer and its shift."""
    for _ in range(log_folding):
        half = len(f) // 2
        # 1 / (2 x_c) = (1 / (2 shift)) * w^-c: powers, no inversions.
        w_inv = pow(root_of_unity(2 * half), P - 2, P)
        inv_two_x = mul(powers(np.uint64(w_inv), half), np.uint64(pow(2 * shift, P - 2, P)))
        f = _fold_kernel(f, inv_two_x, beta)
        beta = ext_mul(beta, beta)
        shift = shift * shift % P
    return f, shift


def commit(f: np.ndarray, shift: int, log_n: int, params: ProofParams, t: Transcript,
           check: bool, stats,
           proof_of_work: Callable[[], int]) -> tuple[list[FriLayer], np.ndarray, list[int]]:
    """Commit to the FRI layers of f (M, 4) of degree < 2^log_n; returns the layers, the
    remainder and the proof-of-work nonces ground before the folding challenges.

    `stats` (a prover.stark.ProverStats) times the Merkle commitments apart from the folding;
    `proof_of_work` grinds and absorbs the nonce due before each folding challenge."""
    layers, nonces = [], []
    for _ in range(params.num_fri_layers(log_n)):
        with stats.phase("fri"):
            leaves = layer_leaves(f, params.folding)
        with stats.phase("merkle"):
            tree = MerkleTree.from_field_rows(leaves)
        layers.append(FriLayer(leaves, tree))
        t.absorb(b"fri", tree.root)
        nonces.append(proof_of_work())
        beta = t.draw_ext(b"fold")
        with stats.phase("fri"):
            f, shift = fold_layer(f, shift, beta, params.fri_log_folding)
    remainder_len = 1 << (log_n - params.fri_log_folding * len(layers))
    with stats.phase("fri"):
        coeffs = coset_intt(np.ascontiguousarray(f.T), shift)  # (4, size)
    if check and coeffs[:, remainder_len:].any():
        raise ValueError("FRI remainder exceeds its degree bound")
    remainder = np.ascontiguousarray(coeffs[:, :remainder_len].T)
    t.absorb(b"remainder", remainder.astype("<u4").tobytes())
    return layers, remainder, nonces


def open_layers(layers: list[FriLayer], positions: np.ndarray) -> list[TreeOpening]:
    """Open each layer at the leaves its queries fall in (positions: unique, in layer 0)."""
    out = []
    for layer in layers:
        leaf_idx = np.unique(positions % len(layer.leaves))
        out.append(TreeOpening(layer.leaves[leaf_idx], layer.tree.open(leaf_idx.tolist())))
        positions = leaf_idx
    return out
