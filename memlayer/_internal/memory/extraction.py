"""One extraction: pick candidate memories, alias them, build the typed request, apply the reply.

The model sees existing memories as ``m1``, ``m2``, ... instead of UUIDs: it cannot mistype an alias
into another user's id, and the response model only admits the aliases it was shown.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from .. import clock
from ..facts import typed_instructions
from ..records import Memory, Message
from .dates import resolve_relative_dates
from .operations import AddOp, UpdateOp, build_response_model
from .prompts import extraction_prompt, render_conversation, render_memories, render_task

__all__ = [
    "ExtractionPlan",
    "add_texts",
    "changed_texts",
    "clean_topics",
    "content_words",
    "final_text",
    "grounded",
    "plan_extraction",
    "same_word",
    "source_text",
]

MAX_INPUT_CHARS = 2000  # of the source text kept on each memory


@dataclass(frozen=True)
class ExtractionPlan:
    """Everything one LLM call needs, and the alias table to read its reply with."""

    messages: list[dict[str, str]]
    response_model: type[BaseModel]
    aliases: dict[str, Memory]
    input: str
    user_text: str  # what the user (or the task) said: an add must be grounded in it
    today: date | None = None  # the day of the last dated message: relative dates count from it
    learned_at: datetime | None = None  # the time of the last dated message: when memlayer learnt its facts
    capture: frozenset[str] | None = None  # the attributes the developer's instructions keep (None: all)
    ignore: frozenset[str] = field(default_factory=frozenset)  # and the ones they exclude
    allowed: tuple[str, ...] = ("add", "update", "delete")  # the operations the developer lets extraction make


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
    candidates = rank(source, candidate_limit)
    aliases = {f"m{i}": memory for i, memory in enumerate(candidates, start=1)}
    stored = render_memories([(alias, m.memory) for alias, m in aliases.items()])
    if messages is not None:
        user_content = render_conversation([(m.role, m.content, m.created_at) for m in messages], stored)
    else:
        assert task is not None
        user_content = render_task(task, stored)
    capture, ignore = typed_instructions(additional_instructions)
    learned = next((m.created_at for m in reversed(messages or []) if m.created_at), None)
    if messages is None:
        learned = clock.now()  # a task is said now: "moved last month" is counted from today
    return ExtractionPlan(
        messages=[*extraction_prompt(additional_instructions), {"role": "user", "content": user_content}],
        response_model=build_response_model(tuple(aliases)),
        aliases=aliases,
        input=source[:MAX_INPUT_CHARS],
        user_text=(task or "") if messages is None else "\n".join(m.content for m in messages if m.role == "user"),
        today=None if learned is None else learned.date(),
        learned_at=learned,
        capture=capture,
        ignore=ignore,
    )


def source_text(*, messages: list[Message] | None = None, task: str | None = None) -> str:
    """The input an extraction works from, as stored on its memories and searched for candidates."""
    if messages is not None:
        return "\n".join(f"{m.role}: {m.content}" for m in messages)
    assert task is not None
    return task


def clean_topics(topics: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for topic in topics:
        cleaned = topic.strip().lower()
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def grounded(text: str, said: Set[str]) -> bool:
    """Whether most of a memory's words (numbers aside) are words the user said, in some inflection.

    A memory restates the user ("I teach maths now" -> "Works as a maths teacher"); one made of
    other words is the model's invention. With nothing said by the user (a tool's or system's
    input), there is nothing to check against.
    """
    words = [w for w in content_words(text) if not w.isdigit()]
    if not said or not words:
        return True
    hits = sum(any(same_word(w, s) for s in said) for w in words)
    return hits * 2 >= len(words)


# Function words that carry no fact. Negations are kept: "Does not eat meat" is not "Eats meat".
_FUNCTION_WORDS = frozenset(
    "a an the and or of at by for with to from in on into is am are was were be been has have had "
    "i me my mine myself we our us user user's their them they it its this that as also named called who".split()
)
_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=512)
def content_words(text: str) -> frozenset[str]:
    """The lower-cased words of ``text`` that can carry a fact.

    Cached: an extraction compares each add with every shown memory, the same 30 texts each time.
    """
    return frozenset(w for w in _WORD.findall(text.casefold()) if w not in _FUNCTION_WORDS)


def same_word(a: str, b: str) -> bool:
    # One word in two inflections ("lives"/"live", "vegetarisch"/"vegetarier") share a stem this long.
    n = min(len(a), len(b), 5)
    return (n >= 3 and a[:n] == b[:n]) or a == b


def final_text(op: AddOp | UpdateOp, plan: ExtractionPlan) -> str:
    """The text an add or update stores: the model's, stripped, with relative dates made dates."""
    return resolve_relative_dates(op.memory.strip(), plan.today)


def add_texts(plan: ExtractionPlan, operations: list[Any]) -> list[str]:
    """The texts of the reply's adds, to look up as duplicates in one query."""
    return [final_text(op, plan) for op in operations if isinstance(op, AddOp)]


def changed_texts(plan: ExtractionPlan, operations: list[Any]) -> list[str]:
    """The texts of the reply's adds and updates: the ones to embed, in one batch."""
    return [final_text(op, plan) for op in operations if isinstance(op, (AddOp, UpdateOp))]
