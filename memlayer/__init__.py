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
    "LiteLLMEmbedder",
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
    "Agent": "_internal.agent.agent",
    "MemoryTools": "_internal.agent.memory_tools",
    "RunContext": "_internal.agent.tools",
    "Tool": "_internal.agent.tools",
    "Toolkit": "_internal.agent.tools",
    "tool": "_internal.agent.tools",
    "CassetteError": "_internal.errors",
    "ConfigError": "_internal.errors",
    "DatabaseLockedError": "_internal.errors",
    "MemlayerError": "_internal.errors",
    "ModelError": "_internal.errors",
    "StorageError": "_internal.errors",
    "DuckDb": "_internal.db",
    "PostgresDb": "_internal.db",
    "Store": "_internal.db",
    "ChatMessage": "_internal.records",
    "ExtractionResult": "_internal.records",
    "LLMUsage": "_internal.records",
    "Memory": "_internal.records",
    "MemoryChange": "_internal.records",
    "MemoryEvent": "_internal.records",
    "Message": "_internal.records",
    "RunResponse": "_internal.records",
    "SearchHit": "_internal.records",
    "ToolCallRecord": "_internal.records",
    "UserMemory": "_internal.records",
    "MemoryManager": "_internal.memory.manager",
    "JobSettings": "_internal.memory.background",
    "MemoryJob": "_internal.memory.background",
    "ModelSpec": "_internal.llm.spec",
    "parse_model": "_internal.llm.spec",
    "Embedder": "_internal.search.embedders",
    "LiteLLMEmbedder": "_internal.search.embedders",
    "export_store": "_internal.analytics.transfer",
    "import_store": "_internal.analytics.imports",
    "query": "_internal.analytics.query",
}

if TYPE_CHECKING:
    from ._internal.agent.agent import Agent
    from ._internal.agent.memory_tools import MemoryTools
    from ._internal.agent.tools import RunContext, Tool, Toolkit, tool
    from ._internal.analytics.imports import import_store
    from ._internal.analytics.query import query
    from ._internal.analytics.transfer import export_store
    from ._internal.db import DuckDb, PostgresDb, Store
    from ._internal.errors import (
        CassetteError,
        ConfigError,
        DatabaseLockedError,
        MemlayerError,
        ModelError,
        StorageError,
    )
    from ._internal.llm.spec import ModelSpec, parse_model
    from ._internal.memory.background import JobSettings, MemoryJob
    from ._internal.memory.manager import MemoryManager
    from ._internal.records import (
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
    from ._internal.search.embedders import Embedder, LiteLLMEmbedder


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
