"""`python -m memjit.cli`."""

from memjit.cli import main

main()
