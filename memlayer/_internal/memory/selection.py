"""Agno's ``retrieval_method="agentic"``: the model picks the memories related to a query, in one typed call.

The memories are shown as aliases (``m1``, ``m2``, ...) and the response model admits only those, so an id
the model invents fails validation (and Instructor asks again) instead of being looked up: the reply can
name nothing outside the list, and the list holds only this user's memories. Agno shows the model every
memory the user has; here at most `MAX_CANDIDATES`, the most relevant by hybrid search when there are more,
so the prompt stays bounded however many memories a user collects.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from ..records import Memory

__all__ = ["MAX_CANDIDATES", "SELECTION_PROMPT_VERSION", "Selection", "chosen", "selection_request"]

MAX_CANDIDATES = 100
SELECTION_PROMPT_VERSION = "select-v1"

_SYSTEM = """\
You search one user's stored memories. Reply with JSON: the ids of the memories related to the query, \
most related first, or {"memory_ids": []} when none is."""


class Selection(BaseModel):
    memory_ids: list[Any]


@functools.lru_cache(maxsize=64)
def _selection_model(aliases: tuple[str, ...], most: int) -> type[Selection]:
    alias: Any = Literal[aliases]
    return create_model(
        "MemorySelection",
        __base__=Selection,
        __doc__="The ids of the stored memories related to the query, most related first.",
        memory_ids=(list[alias], Field(default_factory=list, max_length=most)),
    )


def selection_request(
    query: str, memories: list[Memory], limit: int | None
) -> tuple[list[dict[str, str]], type[Selection], dict[str, Memory]]:
    """The prompt, the response model and the alias table of one selection among ``memories`` (not empty)."""
    aliases = {f"m{i}": memory for i, memory in enumerate(memories, start=1)}
    lines = "\n".join(
        f"{alias}: {m.memory}" + (f" [{', '.join(m.topics)}]" if m.topics else "") for alias, m in aliases.items()
    )
    messages = [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": f"Stored memories:\n{lines}\nQuery: {query}\nReply:"},
    ]
    most = min(limit or len(aliases), len(aliases))
    return messages, _selection_model(tuple(aliases), most), aliases


def chosen(reply: Selection, aliases: dict[str, Memory], limit: int | None) -> list[Memory]:
    """The memories the reply names, each once, in its order."""
    picked = list(dict.fromkeys(str(alias) for alias in reply.memory_ids))
    return [aliases[alias] for alias in picked][:limit]
