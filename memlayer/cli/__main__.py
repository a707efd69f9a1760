"""``python -m memlayer.cli``: the same as the ``memlayer`` console script."""

from . import main

main()
