"""The rollup: settled facts committed in batches under one state root.

The worker-account state tree (``smt``), batch headers (``header``), state diffs and accounts
(``state``), the signing committee (``committee``) and the batcher that cuts, commits, audits
and reverts batches (``batcher``).
"""
