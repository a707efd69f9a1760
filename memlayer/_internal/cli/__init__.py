"""The ``memlayer`` command line: a thin layer over `MemoryManager` and `memlayer._internal.analytics`.

Every command takes ``--db`` (or ``MEMLAYER_DB``); the ones that call a model take ``--model`` (or
``MEMLAYER_MODEL``). A `MemlayerError` becomes one line on stderr and exit status 1, in one place
(`app._Group.invoke`); usage mistakes exit with 2. ``import memlayer`` never imports this package.
"""

from __future__ import annotations

# Each module registers its commands on `app`; imported in the order ``memlayer --help`` lists them.
from . import (  # noqa: F401
    demo,
    eval_command,
    job_commands,
    memory_commands,
    report_command,
    serve_command,
    store_commands,
)
from .app import app

__all__ = ["app", "main"]


def main() -> None:
    """The console script ``memlayer`` (also ``python -m memlayer``, which then calls itself that)."""
    app(prog_name="memlayer")
