"""Checks of the values callers pass in: each returns the value as memlayer stores it, or raises `ConfigError`.

They run before anything is read, written or sent to a model, so a bad argument costs no LLM call and
leaves the store as it was, and its error names the argument instead of a DuckDB or pydantic internal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timezone
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError
from .records import Message

__all__ = [
    "count",
    "instructions",
    "limit",
    "memory_id",
    "memory_text",
    "messages",
    "one_of",
    "optional_seconds",
    "optional_text",
    "seconds",
    "source_input",
    "text",
    "time_window",
    "timestamp",
    "topic_filter",
    "topics",
    "user",
    "utf8",
    "who",
]

# One set of bounds on what a memory holds, however it is written: the Python API (`memory_text`, `topics`
# below), an agent's memory tools, the MCP tools, and the extraction's response schema
# (memlayer._internal.memory.operations), which is where they come from: a memory is one fact in a sentence or two,
# and a small model under a JSON grammar runs on to max_tokens without them.
MAX_MEMORY_CHARS = 240
MAX_TOPICS = 4
MAX_TOPIC_CHARS = 32

# DuckDB's LIMIT is a BIGINT; anything past it is an internal error, not a "no limit".
MAX_LIMIT = 2**62


def utf8(name: str, value: str) -> str:
    """``value`` if it can be stored: a lone surrogate (from bad decoding) cannot be encoded as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{name} is not valid text (it holds {value[exc.start : exc.end]!r}): {value!r}") from None
    return value


def text(name: str, value: object) -> str:
    """A non-blank string that can be stored."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
    return utf8(name, value)


def optional_text(name: str, value: object) -> str | None:
    return None if value is None else text(name, value)


def user(value: object) -> str:
    # Never a shared "default" bucket: a memory without an owner is a leak waiting to happen.
    if value is None:
        raise ConfigError(
            "user_id is required: every call names whose memories it touches (memlayer has no shared "
            "'default' user, where Agno falls back to one)"
        )
    return text("user_id", value)


def topic_filter(value: object) -> list[str]:
    """Topic names to filter by; one string is one topic (not its letters). Unbounded: old memories may hold more."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, (bytes, bytearray)):
        raise ConfigError(f"topics must be a list of strings, got {value!r}")
    return [text("each topic", item) for item in value]


def topics(value: object) -> list[str]:
    """A memory's topics: at most `MAX_TOPICS` names of at most `MAX_TOPIC_CHARS` characters each."""
    names = topic_filter(value)
    if len(names) > MAX_TOPICS:
        raise ConfigError(f"a memory has at most {MAX_TOPICS} topics, got {len(names)}: {names!r}")
    for name in names:
        if len(name) > MAX_TOPIC_CHARS:
            raise ConfigError(f"a topic has at most {MAX_TOPIC_CHARS} characters, got {len(name)}: {name!r}")
    return names


def count(name: str, value: object, *, minimum: int) -> int:
    """An int (not a bool, not a numeric string) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_LIMIT:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def seconds(name: str, value: object, *, positive: bool = False, hint: str = "") -> float:
    """A duration in seconds: a finite number >= 0, or > 0 when ``positive`` (a deadline)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (0 < value if positive else 0 <= value)
        or value == float("inf")
    ):
        raise ConfigError(f"{name} must be a number of seconds {'> 0' if positive else '>= 0'}{hint}, got {value!r}")
    return float(value)


def optional_seconds(name: str, value: object) -> float | None:
    """None, or a positive finite number of seconds (a deadline)."""
    return None if value is None else seconds(name, value, positive=True, hint=" (or None for no deadline)")


def one_of(name: str, value: object, choices: tuple[str, ...]) -> str:
    """One of a few named modes."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


def limit(value: object, *, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    return count("limit", value, minimum=1)


def timestamp(name: str, value: Any) -> datetime | None:
    """A moment in UTC from a datetime (naive means UTC), a date (its midnight, UTC) or an ISO 8601 string."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{name} must be an ISO 8601 time like '2024-01-01T12:00:00Z', got {value!r}") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=timezone.utc)
    if not isinstance(value, datetime):
        raise ConfigError(f"{name} must be a datetime, a date or an ISO 8601 string, got {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:
        raise ConfigError(f"{name} is out of range: {value!r}") from exc


def time_window(name: str, value: Any) -> tuple[datetime, datetime] | None:
    """A ``(start, end)`` pair of moments (each as `timestamp` takes it), start before end; None stays None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ConfigError(f"{name} must be a (start, end) pair of times, got {value!r}")
    start, end = timestamp(f"{name}[0]", value[0]), timestamp(f"{name}[1]", value[1])
    if start is None or end is None or start >= end:
        raise ConfigError(f"{name} must be a (start, end) pair with start before end, got {value!r}")
    return start, end


def messages(value: object) -> list[Message]:
    """A string, one message, or a list of strings, dicts and messages (another framework's too), as `Message`s."""
    items = [value] if isinstance(value, (str, Message, dict)) else value
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes, bytearray)):
        raise ConfigError(f"messages must be a string, a message dict or a list of them, got {value!r}")
    out = [_message(item) for item in items]
    for message in out:
        utf8("a message's content", message.content)
    return out


def _message(item: object) -> Message:
    try:
        if isinstance(item, Message):
            return item
        if isinstance(item, str):
            return Message(role="user", content=item)
        if isinstance(item, dict):
            return Message.model_validate({k: item.get(k) for k in ("role", "content", "created_at") if k in item})
        if hasattr(item, "content") and hasattr(item, "role"):  # another framework's message object
            return Message.model_validate(item, from_attributes=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"message {item!r} is not valid ({problems})") from None
    raise ConfigError(f"each message must be a string, a dict with role and content, or a Message, got {item!r}")


def memory_text(value: object) -> str:
    """A memory's text, stripped: one fact of at most `MAX_MEMORY_CHARS` characters."""
    stripped = text("memory", value).strip()
    if len(stripped) > MAX_MEMORY_CHARS:
        raise ConfigError(
            f"a memory has at most {MAX_MEMORY_CHARS} characters (one fact; split longer text), "
            f"got {len(stripped)}: {stripped[:60]!r}..."
        )
    return stripped


def memory_id(value: object) -> str:
    return text("memory_id", value)


def source_input(value: object) -> str | None:
    """The text a memory came from (``input=``), if given."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"input must be a string, got {value!r}")
    return utf8("input", value)


def who(agent_id: object, session_id: object) -> tuple[str | None, str | None]:
    """The optional agent and session a change is stamped with."""
    return optional_text("agent_id", agent_id), optional_text("session_id", session_id)


def instructions(value: object) -> list[str]:
    """``additional_instructions``: a string or a list of them; blank ones are dropped."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"additional_instructions must be a string or a list of strings, got {value!r}")
    return [utf8("additional_instructions", item) for item in items if item.strip()]
