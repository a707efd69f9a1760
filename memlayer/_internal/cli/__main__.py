"""``python -m memlayer._internal.cli``: the same as the ``memlayer`` console script."""

from . import main

if __name__ == "__main__":  # not when a documentation tool imports every module
    main()
