"""The rollup's AIRs: a Poseidon2 permutation per row (poseidon2_air), the state tree's leaf
layout (leaf) and the batch AIR that proves a batch's state transition (batch)."""
