"""``from memlayer.agent import Agent``: Agno's path (``agno.agent``) to `Agent`, imported on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Agent"]

if TYPE_CHECKING:
    from .._internal.agent.agent import Agent


def __getattr__(name: str) -> Any:
    if name != "Agent":
        raise AttributeError(f"module 'memlayer.agent' has no attribute {name!r}")
    return importlib.import_module("memlayer._internal.agent.agent").Agent
