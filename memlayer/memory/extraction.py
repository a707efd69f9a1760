"""One extraction: pick candidate memories, alias them, build the typed request, apply the reply.

The model sees existing memories as ``m1``, ``m2``, ... instead of UUIDs: it cannot mistype an alias
into another user's id, and the response model only admits the aliases it was shown.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Set
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel

from ..db.changes import ChangeSet, memory_key
from ..records import Memory, Message
from .dates import resolve_relative_dates
from .operations import AddOp, DeleteOp, UpdateOp, build_response_model
from .prompts import extraction_prompt, render_conversation, render_memories, render_task

__all__ = [
    "ExtractionPlan",
    "add_texts",
    "apply_operations",
    "changed_texts",
    "content_words",
    "final_text",
    "grounded",
    "plan_extraction",
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
    return ExtractionPlan(
        messages=[*extraction_prompt(additional_instructions), {"role": "user", "content": user_content}],
        response_model=build_response_model(tuple(aliases)),
        aliases=aliases,
        input=source[:MAX_INPUT_CHARS],
        user_text=(task or "") if messages is None else "\n".join(m.content for m in messages if m.role == "user"),
        today=next((m.created_at.date() for m in reversed(messages or []) if m.created_at), None),
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
    """Turn a validated reply into ``changes``, in order. Returns the operations skipped, and why.

    ``stored`` holds the `memory_key` of every add text the user already has. Small models do each
    of these, and a store that trusts every reply fills up with them, so they are skipped:
    - an add of a fact already stored (the same text, or one whose words a shown memory holds);
    - an add or update that is not grounded in what the user said (`grounded`): the prompt's
      example, a fact only the assistant stated, an invented detail;
    - an update that changes nothing;
    - a delete of a memory none of whose words the user said ("bye" does not retract a job).
    English relative dates in a text become dates first (`memlayer.memory.dates`).
    An update that turns a memory into another stored one deletes it instead (the two are merged).
    A second operation on one alias acts on the result of the first; one on an alias already
    deleted is skipped.
    """
    current: dict[str, Memory | None] = dict(plan.aliases)
    seen = set(stored)
    said = content_words(plan.user_text)
    skipped: list[str] = []
    for op in operations:
        if isinstance(op, AddOp):
            text, topics = final_text(op, plan), _clean_topics(op.topics)
            why = _skip_add(text, seen, said, [m.memory for m in current.values() if m is not None])
            if why:
                skipped.append(f"add: {why}: {text}")
                continue
            seen.add(memory_key(text))
            changes.add(text, topics, op.reason)
            continue
        old = current[op.target]
        if old is None:
            skipped.append(f"{op.op} {op.target}: already deleted in this reply")
        elif isinstance(op, UpdateOp):
            text, topics = final_text(op, plan), _clean_topics(op.topics) or old.topics
            if text == old.memory and topics == old.topics:
                skipped.append(f"update {op.target}: no change")
            elif not grounded(text, said):
                skipped.append(f"update {op.target}: not said by the user: {text}")
            elif memory_key(text) in _keys_besides(old, current, seen):
                changes.delete(old, f"merged into the stored {text!r}")
                current[op.target] = None
            else:
                seen.add(memory_key(text))
                current[op.target] = changes.update(old, text, topics, op.reason)
        elif isinstance(op, DeleteOp):
            if said and not _mentioned(old.memory, said):
                skipped.append(f"delete {op.target}: the user did not mention it: {old.memory}")
                continue
            changes.delete(old, op.reason)
            current[op.target] = None
        else:  # pragma: no cover - the response model admits only the three
            raise TypeError(f"unknown operation {op!r}")
    return skipped


def _keys_besides(old: Memory, current: dict[str, Memory | None], seen: set[str]) -> set[str]:
    """The texts the user holds besides ``old``: the other shown memories, and this reply's adds."""
    shown = {memory_key(m.memory) for m in current.values() if m is not None and m.memory_id != old.memory_id}
    return shown | (seen - {memory_key(old.memory)})


def _skip_add(text: str, seen: set[str], said: Set[str], shown: list[str]) -> str | None:
    if memory_key(text) in seen:
        return "already stored"
    if not grounded(text, said):
        return "not said by the user"
    words = content_words(text)
    if words and any(words <= content_words(memory) for memory in shown):
        return "already stored"
    return None


def _mentioned(memory: str, said: Set[str]) -> bool:
    # "Forget where I live" names "Lives in Lisbon"; "I eat everything now" does not, and a small
    # model that deletes the city there destroys a true fact.
    return any(_same_word(w, s) for w in content_words(memory) if not w.isdigit() for s in said)


def grounded(text: str, said: Set[str]) -> bool:
    """Whether most of a memory's words (numbers aside) are words the user said, in some inflection.

    A memory restates the user ("I teach maths now" -> "Works as a maths teacher"); one made of
    other words is the model's invention. With nothing said by the user (a tool's or system's
    input), there is nothing to check against.
    """
    words = [w for w in content_words(text) if not w.isdigit()]
    if not said or not words:
        return True
    hits = sum(any(_same_word(w, s) for s in said) for w in words)
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


def _same_word(a: str, b: str) -> bool:
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
