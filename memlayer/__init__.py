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
    "Embedder",
    "ExtractionResult",
    "JobSettings",
    "LLMUsage",
    "MemlayerError",
    "Memory",
    "MemoryChange",
    "MemoryEvent",
    "MemoryJob",
    "MemoryManager",
    "MemoryTools",
    "Message",
    "ModelError",
    "ModelSpec",
    "PostgresDb",
    "RunContext",
    "RunResponse",
    "SearchHit",
    "StorageError",
    "Store",
    "Tool",
    "ToolCallRecord",
    "Toolkit",
    "UserMemory",
    "export_store",
    "import_store",
    "parse_model",
    "query",
    "tool",
]

_WHERE = {
    "Agent": "agent.agent",
    "MemoryTools": "agent.memory_tools",
    "RunContext": "agent.tools",
    "Tool": "agent.tools",
    "Toolkit": "agent.tools",
    "tool": "agent.tools",
    "CassetteError": "errors",
    "ConfigError": "errors",
    "DatabaseLockedError": "errors",
    "MemlayerError": "errors",
    "ModelError": "errors",
    "StorageError": "errors",
    "DuckDb": "db",
    "PostgresDb": "db",
    "Store": "db",
    "ChatMessage": "records",
    "ExtractionResult": "records",
    "LLMUsage": "records",
    "Memory": "records",
    "MemoryChange": "records",
    "MemoryEvent": "records",
    "Message": "records",
    "RunResponse": "records",
    "SearchHit": "records",
    "ToolCallRecord": "records",
    "UserMemory": "records",
    "MemoryManager": "memory.manager",
    "JobSettings": "memory.background",
    "MemoryJob": "memory.background",
    "ModelSpec": "llm.spec",
    "parse_model": "llm.spec",
    "Embedder": "search.embedders",
    "export_store": "analytics.transfer",
    "import_store": "analytics.imports",
    "query": "analytics.query",
}

if TYPE_CHECKING:
    from .agent.agent import Agent
    from .agent.memory_tools import MemoryTools
    from .agent.tools import RunContext, Tool, Toolkit, tool
    from .analytics.imports import import_store
    from .analytics.query import query
    from .analytics.transfer import export_store
    from .db import DuckDb, PostgresDb, Store
    from .errors import CassetteError, ConfigError, DatabaseLockedError, MemlayerError, ModelError, StorageError
    from .llm.spec import ModelSpec, parse_model
    from .memory.background import JobSettings, MemoryJob
    from .memory.manager import MemoryManager
    from .records import (
        ChatMessage,
        ExtractionResult,
        LLMUsage,
        Memory,
        MemoryChange,
        MemoryEvent,
        Message,
        RunResponse,
        SearchHit,
        ToolCallRecord,
        UserMemory,
    )
    from .search.embedders import Embedder


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'memlayer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # The public names only, each once (an imported name is also in globals(), beside the helpers).
    return sorted({*__all__, "__version__"})
