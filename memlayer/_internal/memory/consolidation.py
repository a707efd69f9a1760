"""``optimize_memories``: merge a user's overlapping memories into fewer, with one typed LLM call.

Agno's "summarize" strategy deletes every memory of the user and writes the model's summary in their
place. Here the model names groups of memories (by alias, ``m1``, ``m2``, ...: an invented one fails
validation) and the one text each group becomes; a memory in no group is left as it is, so what the model
leaves out is never lost. Applied, a group is one versioned change set: its first memory gets the merged
text as a new version and the others are deleted with the reason "merged into <id>", so every merged
memory keeps its history and events and the merge can be read back (``get_memory_history``, ``as_of``).
"""

from __future__ import annotations

import functools
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model, model_validator

from ..checks import MAX_MEMORY_CHARS
from ..db import memories as memory_sql
from ..db.changes import ChangeSet
from ..db.store import Connection
from ..records import Memory, UserMemory
from .operations import Topics

__all__ = [
    "CONSOLIDATION_PROMPT_VERSION",
    "Consolidation",
    "MemoryOptimizationStrategyType",
    "apply_merges",
    "consolidation_request",
    "projected",
]

CONSOLIDATION_PROMPT_VERSION = "optimize-v1"


class MemoryOptimizationStrategyType(str, Enum):
    """Agno's optimisation strategies; memlayer has its one, ``SUMMARIZE`` (merging, see this module)."""

    SUMMARIZE = "summarize"


MAX_CANDIDATES = 200
MAX_MERGES = 20

_SYSTEM = """\
You tidy one user's stored memories. Find memories that say the same thing or belong in one fact, and \
merge each such group into one short memory that keeps every detail (names, dates, numbers), in the \
language of the memories. Reply with JSON: {"merges": [{"sources": ["m1", "m4"], "memory": "...", \
"topics": ["..."]}]}. A memory can be in one group only; leave out memories that need no merge; reply \
{"merges": []} when nothing overlaps."""


class Merge(BaseModel):
    sources: list[Any]
    memory: Annotated[str, Field(min_length=1, max_length=MAX_MEMORY_CHARS)]
    topics: Topics = Field(default_factory=list)


class Consolidation(BaseModel):
    merges: list[Any]

    @model_validator(mode="after")
    def _each_memory_once(self) -> Consolidation:
        seen: set[str] = set()
        for merge in self.merges:
            for alias in merge.sources:
                if alias in seen:
                    raise ValueError(f"{alias} is in two merges; put each memory in one group only")
                seen.add(alias)
        return self


@functools.lru_cache(maxsize=64)
def _consolidation_model(aliases: tuple[str, ...]) -> type[Consolidation]:
    alias: Any = Literal[aliases]
    merge = create_model(
        "Merge",
        __base__=Merge,
        __doc__="Memories that become one: their aliases, and the one memory they become.",
        sources=(list[alias], Field(min_length=2, max_length=len(aliases))),
    )
    return create_model(
        "MemoryMerges",
        __base__=Consolidation,
        __doc__="Groups of overlapping memories to merge; an empty list when nothing overlaps.",
        merges=(list[merge], Field(default_factory=list, max_length=MAX_MERGES)),
    )


def consolidation_request(
    memories: list[Memory],
) -> tuple[list[dict[str, str]], type[Consolidation], dict[str, Memory]]:
    """The prompt, response model and alias table for merging ``memories`` (at least two)."""
    aliases = {f"m{i}": memory for i, memory in enumerate(memories, start=1)}
    lines = "\n".join(
        f"{alias}: {m.memory}" + (f" [{', '.join(m.topics)}]" if m.topics else "") for alias, m in aliases.items()
    )
    messages = [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": f"Stored memories:\n{lines}\nReply:"},
    ]
    return messages, _consolidation_model(tuple(aliases)), aliases


def apply_merges(conn: Connection, changes: ChangeSet, reply: Consolidation, aliases: dict[str, Memory]) -> int:
    """Add each merge to ``changes``: a new version of its first memory, a delete of the others.

    A merge whose memories changed since they were shown to the model is skipped. Returns how many applied.
    """
    applied = 0
    for merge in reply.merges:
        shown = [aliases[str(alias)] for alias in merge.sources]
        now = [memory_sql.find_memory(conn, m.user_id, m.memory_id) for m in shown]
        if any(current is None or current.version != m.version for current, m in zip(now, shown, strict=True)):
            continue
        keep, *merged = shown
        names = ", ".join(m.memory_id for m in merged)
        changes.update(keep, merge.memory, list(merge.topics), reason=f"merged {names} into it")
        for memory in merged:
            changes.delete(memory, reason=f"merged into {keep.memory_id}")
        applied += 1
    return applied


def projected(memories: list[Memory], reply: Consolidation, aliases: dict[str, Memory]) -> list[UserMemory]:
    """The memories as they would be after the merges (``apply=False``), in the order given."""
    by_id: dict[str, UserMemory | None] = {m.memory_id: as_user_memory(m) for m in memories}
    for merge in reply.merges:
        keep, *merged = (aliases[str(alias)] for alias in merge.sources)
        by_id[keep.memory_id] = as_user_memory(keep).model_copy(
            update={"memory": merge.memory, "topics": list(merge.topics)}
        )
        for memory in merged:
            by_id[memory.memory_id] = None
    return [m for m in by_id.values() if m is not None]


def as_user_memory(memory: Memory) -> UserMemory:
    return UserMemory(
        memory=memory.memory,
        memory_id=memory.memory_id,
        topics=list(memory.topics),
        user_id=memory.user_id,
        input=memory.input,
        created_at=memory.created_at,
        updated_at=memory.updated_at,
        agent_id=memory.agent_id,
    )
