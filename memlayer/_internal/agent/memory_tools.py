"""The memory tools: `MemoryTools` (think, list, search, add, update, delete, analyze) and the agentic memory tool.

Each acts for the run's ``user_id``, read from its `RunContext`, never from the model.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ..checks import MAX_MEMORY_CHARS, MAX_TOPIC_CHARS, MAX_TOPICS
from ..db.store import Store
from ..errors import ConfigError, MemlayerError
from ..records import MemoryChange
from .tools import RunContext, Tool, Toolkit, from_function

__all__ = ["AGENTIC_MEMORY_TOOL", "MemoryTools"]

# The bounds `MemoryManager` enforces (memlayer._internal.checks), in the schema, so the model sees them. (A blank
# topic is refused by the manager; the schema says nothing of it, as the recorded cassettes were sent.)
MemoryText = Annotated[str, Field(min_length=1, max_length=MAX_MEMORY_CHARS)]
Topics = Annotated[list[Annotated[str, Field(max_length=MAX_TOPIC_CHARS)]], Field(max_length=MAX_TOPICS)]


def _line(memory: Any) -> str:
    topics = f" [{', '.join(memory.topics)}]" if memory.topics else ""
    return f"{memory.memory_id}: {memory.memory}{topics}"


def get_memories(run_context: RunContext, limit: Annotated[int, Field(ge=1, le=50)] = 20) -> str:
    """List the user's current memories, newest first."""
    memories = run_context.manager().get_user_memories(run_context.user_id, limit=limit, order="newest")
    return "\n".join(_line(m) for m in memories) or "no memories stored for this user"


def search_memories(run_context: RunContext, query: Annotated[str, Field(max_length=200)]) -> str:
    """Find the user's memories most related to a query."""
    memories = run_context.manager().search_user_memories(query, limit=10, user_id=run_context.user_id)
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
    if old is None or not manager.delete_user_memory(memory_id, run_context.user_id):
        # Same words whether the id is unknown or another user's: the answer must not confirm it exists.
        raise ConfigError(f"user {run_context.user_id!r} has no current memory {memory_id!r}")
    run_context.memory_changes.append(
        MemoryChange(operation="delete", memory_id=memory_id, memory=None, old_memory=old.memory)
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


def think(run_context: RunContext, thought: Annotated[str, Field(min_length=1, max_length=1000)]) -> str:
    """A scratchpad: reason about which memory operations to make before making them. Returns every
    thought of this run so far."""
    run_context.notes.setdefault("memory_thoughts", []).append(thought)
    return "Memory Thoughts:\n" + "\n".join(f"- {t}" for t in run_context.notes["memory_thoughts"])


def analyze(run_context: RunContext, analysis: Annotated[str, Field(min_length=1, max_length=1000)]) -> str:
    """Check whether the memory operations made did what was needed; if not, think again or make more.
    Returns every analysis of this run so far."""
    run_context.notes.setdefault("memory_analysis", []).append(analysis)
    return "Memory Analysis:\n" + "\n".join(f"- {a}" for a in run_context.notes["memory_analysis"])


# One Tool per function, built once: JSON-mode reply models are cached by tool.
_MEMORY_TOOLS = {
    "think": from_function(think),
    "get": from_function(get_memories),
    "search": from_function(search_memories),
    "add": from_function(add_memory),
    "update": from_function(update_memory),
    "delete": from_function(delete_memory),
    "analyze": from_function(analyze),
}
AGENTIC_MEMORY_TOOL = from_function(update_user_memory)


class MemoryTools(Toolkit):
    """Tools to list, search, add, update and delete the run's user's memories, and Agno's ``think`` and
    ``analyze`` scratchpads (kept for the run, in its `RunContext`).

    ``Agent(tools=[MemoryTools(db=db)], db=db)``, or Agno's ``MemoryTools(db)``. ``think`` and ``analyze``
    are off unless asked for (``enable_think=True``, ``all=True``), unlike Agno: each is one more tool in
    every request and, used, one more model round trip. Every tool acts for the
    run's ``user_id`` only; an id that belongs to another user is answered as unknown. ``db``, if given,
    must be the agent's (an agent without one uses it). ``instructions``, ``add_instructions``,
    ``add_few_shot`` and ``few_shot_examples`` are Agno's toolkit prompt: accepted and ignored, as each
    tool's own description says how to use it.
    """

    def __init__(
        self,
        db: Store | None = None,
        *,
        enable_get_memories: bool = True,
        enable_search_memories: bool = True,
        enable_add_memory: bool = True,
        enable_update_memory: bool = True,
        enable_delete_memory: bool = True,
        enable_analyze: bool = False,
        enable_think: bool = False,
        instructions: str | None = None,
        add_instructions: bool = True,
        add_few_shot: bool = True,
        few_shot_examples: str | None = None,
        all: bool = False,
    ) -> None:
        if db is not None and not isinstance(db, Store):
            raise ConfigError(f"db must be a DuckDb or a PostgresDb, got {db!r}")
        self.db = db
        self.enabled = {
            "think": enable_think,
            "get": enable_get_memories,
            "search": enable_search_memories,
            "add": enable_add_memory,
            "update": enable_update_memory,
            "delete": enable_delete_memory,
            "analyze": enable_analyze,
        }
        if all:
            self.enabled = dict.fromkeys(self.enabled, True)

    def tools(self) -> list[Tool]:
        return [tool for key, tool in _MEMORY_TOOLS.items() if self.enabled[key]]

    def __repr__(self) -> str:
        return f"MemoryTools({[k for k, on in self.enabled.items() if on]})"
