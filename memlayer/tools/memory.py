"""``from memlayer.tools.memory import MemoryTools``: Agno's path (``agno.tools.memory``) to `MemoryTools`.

A lazy re-export (as ``memlayer`` itself), so this path is not a room above ``agent`` in the import graph.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["MemoryTools"]  # noqa: F822 (resolved by __getattr__ below, lazily)


def __getattr__(name: str) -> Any:
    if name != "MemoryTools":
        raise AttributeError(f"module 'memlayer.tools.memory' has no attribute {name!r}")
    return importlib.import_module("memlayer._internal.agent.memory_tools").MemoryTools
