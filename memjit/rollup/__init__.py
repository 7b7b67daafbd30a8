"""The rollup: settled facts committed in batches under one state root, each proven.

The Poseidon2 state tree of worker accounts (``tree``) and the state the facts define
(``zkstate``), batch headers (``header``), the signing committee (``committee``), the batcher
that cuts, commits, audits and reverts batches (``batcher``) and the batch prover
(``proving``).
"""
