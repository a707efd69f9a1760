"""One extraction: pick candidate memories, alias them, build the typed request, apply the reply.

The model sees existing memories as ``m1``, ``m2``, ... instead of UUIDs: it cannot mistype an alias
into another user's id, and the response model only admits the aliases it was shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .db.changes import ChangeSet, memory_key
from .operations import AddOp, DeleteOp, UpdateOp, build_response_model
from .prompts import extraction_system_prompt, render_conversation, render_task
from .types import Memory, Message

__all__ = ["ExtractionPlan", "add_texts", "apply_operations", "changed_texts", "plan_extraction", "source_text"]

MAX_INPUT_CHARS = 2000  # of the source text kept on each memory


@dataclass(frozen=True)
class ExtractionPlan:
    """Everything one LLM call needs, and the alias table to read its reply with."""

    messages: list[dict[str, str]]
    response_model: type[BaseModel]
    aliases: dict[str, Memory]
    input: str


def plan_extraction(
    *,
    messages: list[Message] | None = None,
    task: str | None = None,
    additional_instructions: list[str],
    candidate_limit: int,
    rank: Callable[[str, int], list[Memory]],
) -> ExtractionPlan:
    """Build the request for new ``messages`` (or a ``task``) against the user's relevant memories.

    ``rank(text, limit)`` picks the candidates: the manager's hybrid search, the same one
    `MemoryManager.search_user_memories` uses.
    """
    source = source_text(messages=messages, task=task)
    if messages is not None:
        rows = [(m.role, m.content, m.created_at.isoformat() if m.created_at else None) for m in messages]
        user_content = render_conversation(rows)
    else:
        assert task is not None
        user_content = render_task(task)
    candidates = rank(source, candidate_limit)
    aliases = {f"m{i}": memory for i, memory in enumerate(candidates, start=1)}
    system = extraction_system_prompt(
        [(alias, m.memory, m.topics) for alias, m in aliases.items()], additional_instructions
    )
    return ExtractionPlan(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user_content}],
        response_model=build_response_model(tuple(aliases)),
        aliases=aliases,
        input=source[:MAX_INPUT_CHARS],
    )


def source_text(*, messages: list[Message] | None = None, task: str | None = None) -> str:
    """The input an extraction works from, as stored on its memories and searched for candidates."""
    if messages is not None:
        return "\n".join(f"{m.role}: {m.content}" for m in messages)
    assert task is not None
    return task


def _clean_topics(topics: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for topic in topics:
        cleaned = topic.strip().lower()
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def apply_operations(changes: ChangeSet, plan: ExtractionPlan, operations: list[Any], stored: set[str]) -> list[str]:
    """Turn a validated reply into ``changes``, in order. Returns the operations skipped as no-ops.

    ``stored`` holds the `memory_key` of every add text the user already has. An add of a fact
    already stored, or an update that changes nothing, is skipped rather than versioned:
    duplicates are what piles up in memory stores that trust every reply. A second operation on
    one alias acts on the result of the first; one on an alias already deleted is skipped.
    """
    current: dict[str, Memory | None] = dict(plan.aliases)
    seen = set(stored)
    skipped: list[str] = []
    for op in operations:
        if isinstance(op, AddOp):
            text, topics = op.memory.strip(), _clean_topics(op.topics)
            if memory_key(text) in seen:
                skipped.append(f"add: already stored: {text}")
                continue
            seen.add(memory_key(text))
            changes.add(text, topics, op.reason)
            continue
        old = current[op.target]
        if old is None:
            skipped.append(f"{op.op} {op.target}: already deleted in this reply")
        elif isinstance(op, UpdateOp):
            text, topics = op.memory.strip(), _clean_topics(op.topics) or old.topics
            if text == old.memory and topics == old.topics:
                skipped.append(f"update {op.target}: no change")
                continue
            current[op.target] = changes.update(old, text, topics, op.reason)
        elif isinstance(op, DeleteOp):
            changes.delete(old, op.reason)
            current[op.target] = None
        else:  # pragma: no cover - the response model admits only the three
            raise TypeError(f"unknown operation {op!r}")
    return skipped


def add_texts(operations: list[Any]) -> list[str]:
    """The texts of the reply's adds, to look up as duplicates in one query."""
    return [op.memory.strip() for op in operations if isinstance(op, AddOp)]


def changed_texts(operations: list[Any]) -> list[str]:
    """The texts of the reply's adds and updates: the ones to embed, in one batch."""
    return [op.memory.strip() for op in operations if isinstance(op, (AddOp, UpdateOp))]
