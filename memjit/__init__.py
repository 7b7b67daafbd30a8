"""memjit: an open market for AI workers whose every answer comes with a STARK proof.

The layers, each importing only the ones above it in this list (tests/test_layering.py):

- ``memjit.errors``: the typed errors every layer raises, each with its CLI exit code;
- ``memjit.runtime``: from module bytes to a claim (content store, sandbox, WASM front end,
  tracer, witness, claims, tensor I/O), on top of ``circuits``, ``verifier`` and ``prover``;
- ``memjit.market``: identities, the ledger, registry, tasks, oracle, rewards, facts, the pool;
- ``memjit.rollup``: the state tree, batch headers and state diffs, the committee, the batcher;
- ``memjit.demo`` and the dishonest operators of ``memjit.workers`` (actors of the demo and the
  tests, handed to the pool, never imported by it), ``memjit.cli`` (the ``memjit`` command).
"""
