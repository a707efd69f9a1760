"""memlayer: long-term memory for AI agents, with any LLM.

Public names are imported on first use, so ``import memlayer`` stays fast; LiteLLM itself is only
imported when a model is first called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "CassetteError",
    "ChatMessage",
    "ConfigError",
    "DatabaseLockedError",
    "DuckDb",
    "ExtractionResult",
    "LLMUsage",
    "MemlayerError",
    "Memory",
    "MemoryChange",
    "MemoryEvent",
    "MemoryManager",
    "MemoryTools",
    "Message",
    "ModelError",
    "ModelSpec",
    "RunContext",
    "RunResponse",
    "StorageError",
    "Tool",
    "ToolCallRecord",
    "Toolkit",
    "export_store",
    "import_store",
    "parse_model",
    "query",
    "tool",
]

_WHERE = {
    "Agent": "agent",
    "MemoryTools": "tools",
    "RunContext": "tools",
    "Tool": "tools",
    "Toolkit": "tools",
    "tool": "tools",
    "ChatMessage": "types",
    "RunResponse": "types",
    "ToolCallRecord": "types",
    "CassetteError": "errors",
    "ConfigError": "errors",
    "DatabaseLockedError": "errors",
    "MemlayerError": "errors",
    "ModelError": "errors",
    "StorageError": "errors",
    "DuckDb": "db",
    "ExtractionResult": "types",
    "LLMUsage": "types",
    "Memory": "types",
    "MemoryChange": "types",
    "MemoryEvent": "types",
    "Message": "types",
    "MemoryManager": "manager",
    "ModelSpec": "models",
    "parse_model": "models",
    "export_store": "analytics",
    "import_store": "analytics",
    "query": "analytics",
}

if TYPE_CHECKING:
    from .agent import Agent
    from .analytics import export_store, import_store, query
    from .db import DuckDb
    from .errors import CassetteError, ConfigError, DatabaseLockedError, MemlayerError, ModelError, StorageError
    from .manager import MemoryManager
    from .models import ModelSpec, parse_model
    from .tools import MemoryTools, RunContext, Tool, Toolkit, tool
    from .types import (
        ChatMessage,
        ExtractionResult,
        LLMUsage,
        Memory,
        MemoryChange,
        MemoryEvent,
        Message,
        RunResponse,
        ToolCallRecord,
    )


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'memlayer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
