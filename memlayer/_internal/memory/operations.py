"""The typed reply of one extraction call: a bounded list of add / update / delete operations.

The response model is built per call from the aliases the model was shown (``m1``, ``m2``, ...), so a
target it invents is not a valid value of the schema: validation fails and Instructor asks again.
Every string and list is bounded because a small model under a JSON grammar will otherwise run on to
``max_tokens``.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..checks import MAX_MEMORY_CHARS, MAX_TOPIC_CHARS, MAX_TOPICS
from ..facts import Attribute

__all__ = ["AddOp", "DeleteOp", "UpdateOp", "build_response_model"]

MAX_OPERATIONS = 12
MAX_REASON_CHARS = 120
MAX_SUBJECT_CHARS = 40
MAX_TIME_CHARS = 40

Topic = Annotated[str, Field(min_length=1, max_length=MAX_TOPIC_CHARS)]
MemoryText = Annotated[str, Field(min_length=1, max_length=MAX_MEMORY_CHARS)]
Reason = Annotated[str, Field(max_length=MAX_REASON_CHARS)]
Topics = Annotated[list[Topic], Field(max_length=MAX_TOPICS)]
Subject = Annotated[str, Field(min_length=1, max_length=MAX_SUBJECT_CHARS)]
When = Annotated[str | None, Field(max_length=MAX_TIME_CHARS)]


def _require(schema: dict[str, Any], *names: str, drop: tuple[str, ...] = ("topics",)) -> None:
    # ``topics`` still parses (a scripted reply, an older prompt) but is not asked for: the attribute is
    # the typed topic, and every property costs prompt tokens on every call (tools mode) or output ones.
    properties = schema["properties"]
    for name in drop:
        properties.pop(name, None)
    required = [name for name in schema.get("required", []) if name in properties]
    schema["required"] = required + [name for name in names if name not in required]


def _compact(schema: dict[str, Any]) -> None:
    """The schema as sent, made short: no titles, and each long enum (the attributes, the aliases) written
    once under ``$defs`` and referred to (1,369 tokens for 30 aliases before, far fewer after)."""
    hoisted: dict[str, Any] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node.get("enum", ())) > 3:
            name = "Attribute" if node["enum"][0] == "name" else "Alias"
            hoisted[name] = {"enum": node["enum"], "type": "string"}
            return {"$ref": f"#/$defs/{name}"}
        return {k: walk(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}

    for key, value in list(schema.items()):
        schema[key] = walk(value) if key != "$defs" else {name: walk(d) for name, d in value.items()}
    schema.setdefault("$defs", {}).update(hoisted)


class _Fact(BaseModel):
    """What a written memory is about (`memlayer._internal.facts`) and, when the user said, when it held.

    ``op`` (and an update's ``target``) are declared here, first, so that a grammar-constrained model
    writes them first, as the prompt's example does; each operation narrows them.
    """

    # A reply without a key still validates (as "user" / "other"), but the schema a model is given
    # requires both, so a grammar-constrained local model always writes them.
    model_config = ConfigDict(json_schema_extra=lambda schema: _require(schema, "subject", "attribute"))

    op: str
    target: str | None = None
    subject: Subject = "user"
    attribute: Attribute = "other"
    memory: MemoryText
    since: When = None
    until: When = None
    topics: Topics = Field(default_factory=list)
    reason: Reason = ""


class AddOp(_Fact):
    """Store a new fact about the user."""

    # An add targets nothing: the schema the model is given has no ``target`` for it.
    model_config = ConfigDict(
        json_schema_extra=lambda schema: _require(schema, "subject", "attribute", drop=("target", "topics"))
    )

    op: Literal["add"]
    target: None = Field(default=None, exclude=True)


class UpdateOp(_Fact):
    """Replace the text of an existing memory (by its alias) with a corrected or newer fact."""

    op: Literal["update"]
    target: str


class DeleteOp(BaseModel):
    """Forget an existing memory (by its alias): retracted, wrong, or asked to be forgotten."""

    op: Literal["delete"]
    target: str
    reason: Reason = ""


class _OperationsBase(BaseModel):
    # Operations apply in order. Two on one memory in one reply ("update m1", then "delete m1") are
    # not refused: small local models emit them often, a re-ask rarely fixes it, and reconciling the
    # reply gives one clear result (see `memlayer._internal.memory.reconcile.apply_operations`).
    operations: list[Any]

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The schema every provider is sent (Instructor reads it here), made short by `_compact`."""
        schema = super().model_json_schema(*args, **kwargs)
        _compact(schema)
        return schema


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
