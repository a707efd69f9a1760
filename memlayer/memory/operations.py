"""The typed reply of one extraction call: a bounded list of add / update / delete operations.

The response model is built per call from the aliases the model was shown (``m1``, ``m2``, ...), so a
target it invents is not a valid value of the schema: validation fails and Instructor asks again.
Every string and list is bounded because a small model under a JSON grammar will otherwise run on to
``max_tokens``.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

__all__ = ["AddOp", "DeleteOp", "UpdateOp", "build_response_model"]

MAX_OPERATIONS = 12
MAX_MEMORY_CHARS = 240
MAX_REASON_CHARS = 120
MAX_TOPICS = 4
MAX_TOPIC_CHARS = 32

Topic = Annotated[str, Field(min_length=1, max_length=MAX_TOPIC_CHARS)]
MemoryText = Annotated[str, Field(min_length=1, max_length=MAX_MEMORY_CHARS)]
Reason = Annotated[str, Field(max_length=MAX_REASON_CHARS)]
Topics = Annotated[list[Topic], Field(max_length=MAX_TOPICS)]


class AddOp(BaseModel):
    """Store a new fact about the user."""

    op: Literal["add"]
    memory: MemoryText
    topics: Topics = Field(default_factory=list)
    reason: Reason = ""


class UpdateOp(BaseModel):
    """Replace the text of an existing memory (by its alias) with a corrected or newer fact."""

    op: Literal["update"]
    target: str
    memory: MemoryText
    topics: Topics = Field(default_factory=list)
    reason: Reason = ""


class DeleteOp(BaseModel):
    """Forget an existing memory (by its alias): retracted, wrong, or asked to be forgotten."""

    op: Literal["delete"]
    target: str
    reason: Reason = ""


class _OperationsBase(BaseModel):
    # Operations apply in order. Two on one memory in one reply ("update m1", then "delete m1") are
    # not refused: small local models emit them often, a re-ask rarely fixes it, and in-order
    # application gives one clear result (see `extract.apply_operations`).
    operations: list[Any]


@functools.lru_cache(maxsize=64)
def build_response_model(
    aliases: tuple[str, ...], allowed: tuple[str, ...] = ("add", "update", "delete")
) -> type[_OperationsBase]:
    """The response model for one call: update/delete exist only when there are aliases to target,
    and only the ``allowed`` operations exist at all (`MemoryManager`'s ``add_memories=False``, ...).

    Aliases are always ``m1..mN``, so a handful of models serve every call; caching them saves the
    3 ms pydantic takes to build one, and lets Instructor reuse its schema.
    """
    kinds: list[Any] = [AddOp] if "add" in allowed else []
    if aliases:
        target: Any = Literal[tuple(aliases)]
        if "update" in allowed:
            kinds.append(create_model("UpdateOp", __base__=UpdateOp, __doc__=UpdateOp.__doc__, target=(target, ...)))
        if "delete" in allowed:
            kinds.append(create_model("DeleteOp", __base__=DeleteOp, __doc__=DeleteOp.__doc__, target=(target, ...)))
    # No operation allowed here (only updates, and nothing to update): the one valid reply is empty.
    item: Any = kinds[0] if len(kinds) == 1 else AddOp
    if len(kinds) > 1:
        item = Annotated[Union[tuple(kinds)], Field(discriminator="op")]  # noqa: UP007
    return create_model(
        "MemoryOperations",
        __base__=_OperationsBase,
        __doc__="The changes to make to the user's memories; an empty list when nothing is worth keeping.",
        operations=(list[item], Field(default_factory=list, max_length=MAX_OPERATIONS if kinds else 0)),
    )
