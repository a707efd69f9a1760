"""How an `Agent` finds its store and its memory manager, and reads Agno's switches.

Kept beside the agent so that `agent.py` holds the run, and these rules (one store for sessions and
memories, one switch under two names) are read in one place.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..db import DuckDb
from ..db.store import Store
from ..errors import ConfigError
from ..llm.spec import ModelSpec
from ..memory.manager import MemoryManager
from .memory_tools import MemoryTools
from .tools import Tool, Toolkit

ToolItem = Callable[..., Any] | Tool | Toolkit


def always_on(update_memory_on_run: bool | None, enable_user_memories: bool | None) -> bool:
    # enable_user_memories is the older name for the same switch; two different answers is a mistake.
    if (
        update_memory_on_run is not None
        and enable_user_memories is not None
        and update_memory_on_run != enable_user_memories
    ):
        raise ConfigError("update_memory_on_run and enable_user_memories are the same switch; set only one")
    return bool(update_memory_on_run if update_memory_on_run is not None else enable_user_memories)


def wire_storage(
    model: ModelSpec, db: Store | None, manager: MemoryManager | None, uses_memory: bool
) -> tuple[Store, MemoryManager | None]:
    """One store for sessions and memories, so a user's history and memory live in one place."""
    if db is not None and not isinstance(db, Store):
        raise ConfigError(f"db must be a DuckDb or a PostgresDb, e.g. DuckDb('agents.duckdb'), got {db!r}")
    if manager is not None and not isinstance(manager, MemoryManager):
        raise ConfigError(f"memory_manager must be a MemoryManager, got {manager!r}")
    if manager is None:
        store_db = db if db is not None else DuckDb()
        return store_db, MemoryManager(model=for_extraction(model), db=store_db) if uses_memory else None
    store_db = db if db is not None else manager.db
    # The manager's own set-once binding: it refuses another db, and keeps a model it was given.
    manager.join(store_db, for_extraction(model))
    return store_db, manager


def toolkit_db(db: Store | None, tools: Sequence[ToolItem] | None) -> Store | None:
    """The agent's db, or the one its `MemoryTools(db=...)` was given (Agno's way); two different is a mistake."""
    for item in tools or []:
        given = item.db if isinstance(item, MemoryTools) else None
        if given is not None and db is not None and given is not db:
            raise ConfigError("MemoryTools(db=...) and the agent's db are different stores; pass the same one")
        db = db or given
    return db


def for_extraction(model: ModelSpec) -> ModelSpec:
    # A cap meant for chat answers would cut an extraction's JSON short; its schema bounds it instead.
    extra = {k: v for k, v in model.extra.items() if k not in ("max_tokens", "max_completion_tokens")}
    return dataclasses.replace(model, extra=extra)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or name
