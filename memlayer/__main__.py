"""``python -m memlayer``: the same as the ``memlayer`` console script.

Run through `runpy` as ``python -m memlayer._internal.cli`` would be: the entry point stands on top of the
house (`tests/test_architecture.py`), rather than being a seventh floor above the command line.
"""

import runpy

if __name__ == "__main__":  # not when a documentation tool imports every module
    runpy.run_module("memlayer._internal.cli", run_name="__main__", alter_sys=True)
