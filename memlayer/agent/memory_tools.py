"""The memory tools: `MemoryTools` (list, search, add, update, delete) and the agentic memory tool.

Each acts for the run's ``user_id``, read from its `RunContext`, never from the model.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ..checks import MAX_MEMORY_CHARS, MAX_TOPIC_CHARS, MAX_TOPICS
from ..errors import MemlayerError
from ..records import MemoryChange
from .tools import RunContext, Tool, Toolkit, from_function

__all__ = ["AGENTIC_MEMORY_TOOL", "MemoryTools"]

# The bounds `MemoryManager` enforces (memlayer.checks), in the schema, so the model sees them. (A blank
# topic is refused by the manager; the schema says nothing of it, as the recorded cassettes were sent.)
MemoryText = Annotated[str, Field(min_length=1, max_length=MAX_MEMORY_CHARS)]
Topics = Annotated[list[Annotated[str, Field(max_length=MAX_TOPIC_CHARS)]], Field(max_length=MAX_TOPICS)]


def _line(memory: Any) -> str:
    topics = f" [{', '.join(memory.topics)}]" if memory.topics else ""
    return f"{memory.memory_id}: {memory.memory}{topics}"


def get_memories(run_context: RunContext, limit: Annotated[int, Field(ge=1, le=50)] = 20) -> str:
    """List the user's current memories, newest first."""
    memories = run_context.manager().get_user_memories(run_context.user_id, limit=limit)
    return "\n".join(_line(m) for m in memories) or "no memories stored for this user"


def search_memories(run_context: RunContext, query: Annotated[str, Field(max_length=200)]) -> str:
    """Find the user's memories most related to a query."""
    memories = run_context.manager().search_user_memories(query, run_context.user_id, limit=10)
    return "\n".join(_line(m) for m in memories) or "no matching memories"


def add_memory(run_context: RunContext, memory: MemoryText, topics: Topics | None = None) -> str:
    """Store a new fact about the user."""
    new = run_context.manager().add_user_memory(
        memory, run_context.user_id, topics=topics, agent_id=run_context.agent_id, session_id=run_context.session_id
    )
    run_context.memory_changes.append(
        MemoryChange(operation="add", memory_id=new.memory_id, memory=new.memory, topics=new.topics)
    )
    return f"added {_line(new)}"


def update_memory(run_context: RunContext, memory_id: str, memory: MemoryText, topics: Topics | None = None) -> str:
    """Replace the text of one of the user's memories, by its id."""
    manager = run_context.manager()
    old = manager.get_user_memory(memory_id, run_context.user_id)
    new = manager.replace_user_memory(memory_id, memory, run_context.user_id, topics=topics)
    run_context.memory_changes.append(
        MemoryChange(
            operation="update",
            memory_id=new.memory_id,
            memory=new.memory,
            old_memory=old.memory if old else None,
            topics=new.topics,
        )
    )
    return f"updated {_line(new)}"


def delete_memory(run_context: RunContext, memory_id: str) -> str:
    """Forget one of the user's memories, by its id."""
    manager = run_context.manager()
    old = manager.get_user_memory(memory_id, run_context.user_id)
    manager.delete_user_memory(memory_id, run_context.user_id)
    run_context.memory_changes.append(
        MemoryChange(operation="delete", memory_id=memory_id, memory=None, old_memory=old.memory if old else None)
    )
    return f"deleted {memory_id}"


def update_user_memory(run_context: RunContext, task: Annotated[str, Field(min_length=1, max_length=300)]) -> str:
    """Change what you remember about the user, e.g. "remember they moved to Porto" or "forget their
    address". Use it when the user shares a lasting fact or asks you to forget one."""
    ctx = run_context
    try:
        result = ctx.manager().update_memory_task(task, ctx.user_id, agent_id=ctx.agent_id, session_id=ctx.session_id)
    except MemlayerError as exc:
        ctx.memory_errors.append(str(exc))
        raise
    ctx.memory_changes.extend(result.changes)
    if result.usage:
        ctx.llm_calls.append(result.usage)
    done = [f"{c.operation} {c.memory or c.old_memory!r}" for c in result.changes]
    return "; ".join(done) if done else "nothing needed to change"


# One Tool per function, built once: JSON-mode reply models are cached by tool.
_MEMORY_TOOLS = {
    "get": from_function(get_memories),
    "search": from_function(search_memories),
    "add": from_function(add_memory),
    "update": from_function(update_memory),
    "delete": from_function(delete_memory),
}
AGENTIC_MEMORY_TOOL = from_function(update_user_memory)


class MemoryTools(Toolkit):
    """Tools to list, search, add, update and delete the run's user's memories.

    ``Agent(tools=[MemoryTools()], db=db, memory_manager=manager)``. Every tool acts for the run's
    ``user_id`` only; an id that belongs to another user is answered as unknown.
    """

    def __init__(
        self,
        *,
        enable_get_memories: bool = True,
        enable_search_memories: bool = True,
        enable_add_memory: bool = True,
        enable_update_memory: bool = True,
        enable_delete_memory: bool = True,
    ) -> None:
        self.enabled = {
            "get": enable_get_memories,
            "search": enable_search_memories,
            "add": enable_add_memory,
            "update": enable_update_memory,
            "delete": enable_delete_memory,
        }

    def tools(self) -> list[Tool]:
        return [tool for key, tool in _MEMORY_TOOLS.items() if self.enabled[key]]

    def __repr__(self) -> str:
        return f"MemoryTools({[k for k, on in self.enabled.items() if on]})"
