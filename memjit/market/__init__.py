"""The market: who may answer, how answers are judged, and who is paid.

BLS identities (``identity``), the SQLite ledger (``ledger``), bonded stake (``bonds``), worker
registration (``registry``), validator stake behind labels (``validators``), tasks and their
scorers (``tasks``), the oracle that verifies, references and scores deliveries (``oracle``),
the integer arithmetic of it all (``formulas``), rewards, fees and the faucet (``rewards``), what
the passing of time settles (``epoch``), the facts settled claims leave for the rollup
(``facts``), and the Darwinian pool that serves a request (``pool``). The rules and the attacks
they stop: docs/market.md.
"""
