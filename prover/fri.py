"""FRI commit phase (fold layer by layer, commit each) and query openings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits.field import P, batch_inv, ext_mul, mul, powers, root_of_unity
from circuits.ntt import coset_intt
from prover.merkle import MerkleTree
from verifier.fri import fold_once
from verifier.params import ProofParams
from verifier.proof import TreeOpening
from verifier.transcript import Transcript


@dataclass
class FriLayer:
    leaves: np.ndarray  # (size / F, 4F): leaf c holds the coset c + j * size / F, j < F
    tree: MerkleTree


def layer_leaves(f: np.ndarray, folding: int) -> np.ndarray:
    """Group the F values of each coset into one Merkle leaf."""
    size = len(f)
    return np.ascontiguousarray(f.reshape(folding, size // folding, 4).transpose(1, 0, 2)
                                ).reshape(size // folding, 4 * folding)


def fold_layer(f: np.ndarray, shift: int, beta: np.ndarray, log_folding: int) -> tuple[np.ndarray, int]:
    """Fold f on shift * <w_size> by 2^log_folding; returns the new layer and its shift."""
    for _ in range(log_folding):
        half = len(f) // 2
        x = mul(powers(np.uint64(root_of_unity(2 * half)), half), np.uint64(shift))
        f = fold_once(f[:half], f[half:], batch_inv(mul(x, np.uint64(2))), beta)
        beta = ext_mul(beta, beta)
        shift = shift * shift % P
    return f, shift


def commit(f: np.ndarray, shift: int, log_n: int, params: ProofParams, t: Transcript,
           check: bool) -> tuple[list[FriLayer], np.ndarray]:
    """Commit to the FRI layers of f (M, 4) of degree < 2^log_n; returns layers and remainder."""
    layers = []
    for _ in range(params.num_fri_layers(log_n)):
        leaves = layer_leaves(f, params.folding)
        tree = MerkleTree.from_field_rows(leaves)
        layers.append(FriLayer(leaves, tree))
        t.absorb(b"fri", tree.root)
        beta = t.draw_ext(b"fold")
        f, shift = fold_layer(f, shift, beta, params.fri_log_folding)
    remainder_len = 1 << (log_n - params.fri_log_folding * len(layers))
    coeffs = coset_intt(np.ascontiguousarray(f.T), shift)  # (4, size)
    if check and coeffs[:, remainder_len:].any():
        raise ValueError("FRI remainder exceeds its degree bound")
    remainder = np.ascontiguousarray(coeffs[:, :remainder_len].T)
    t.absorb(b"remainder", remainder.astype("<u4").tobytes())
    return layers, remainder


def open_layers(layers: list[FriLayer], positions: np.ndarray) -> list[TreeOpening]:
    """Open each layer at the leaves its queries fall in (positions: unique, in layer 0)."""
    out = []
    for layer in layers:
        leaf_idx = np.unique(positions % len(layer.leaves))
        out.append(TreeOpening(layer.leaves[leaf_idx], layer.tree.open(leaf_idx.tolist())))
        positions = leaf_idx
    return out
