"""Long-term memory: `MemoryManager`, typed one-call extraction, its prompt and operation schema, and its evaluation.

``from memlayer.memory import MemoryManager, UserMemory`` is Agno's path (``agno.memory``); the names are
imported on first use, so importing a submodule does not load the manager.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["MemoryManager", "MemoryOptimizationStrategyType", "UserMemory"]

_WHERE = {
    "MemoryManager": ".manager",
    "MemoryOptimizationStrategyType": ".consolidation",
    "UserMemory": "..records",
}

if TYPE_CHECKING:
    from ..records import UserMemory
    from .consolidation import MemoryOptimizationStrategyType
    from .manager import MemoryManager


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'memlayer.memory' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
