"""`Agent`: a chat model with tools, session history and long-term memory; its run loop, tools and memory tools.

``from memlayer.agent import Agent`` is Agno's path (``agno.agent``); imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Agent"]

if TYPE_CHECKING:
    from .agent import Agent


def __getattr__(name: str) -> Any:
    if name != "Agent":
        raise AttributeError(f"module 'memlayer.agent' has no attribute {name!r}")
    return importlib.import_module(".agent", __name__).Agent
