"""``from memlayer.memory import MemoryManager, UserMemory``: Agno's path (``agno.memory``), imported on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["MemoryManager", "MemoryOptimizationStrategyType", "UserMemory"]

_WHERE = {
    "MemoryManager": "memlayer._internal.memory.manager",
    "MemoryOptimizationStrategyType": "memlayer._internal.memory.consolidation",
    "UserMemory": "memlayer._internal.records",
}

if TYPE_CHECKING:
    from .._internal.memory.consolidation import MemoryOptimizationStrategyType
    from .._internal.memory.manager import MemoryManager
    from .._internal.records import UserMemory


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'memlayer.memory' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
