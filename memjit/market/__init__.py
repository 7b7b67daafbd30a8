"""The market: who may answer, how answers are judged, and who is paid.

BLS identities (``identity``), the SQLite ledger (``ledger``), worker registration
(``registry``), tasks and their scorers (``tasks``), the oracle that verifies and scores
deliveries (``oracle``), rewards and fees (``rewards``), the facts settled claims leave for the
rollup (``facts``), and the Darwinian pool that serves a request (``pool``).
"""
