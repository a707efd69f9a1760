"""The typed values memlayer hands back: memories, their events, messages and LLM usage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatMessage",
    "ExtractionResult",
    "LLMUsage",
    "Memory",
    "MemoryChange",
    "MemoryEvent",
    "Message",
    "Operation",
    "RunResponse",
    "SearchHit",
    "ToolCallRecord",
    "UserMemory",
]

Operation = Literal["add", "update", "delete"]


class Memory(BaseModel):
    """One version of a fact about a user. The current version has ``recorded_until=None``.

    Two clocks: ``updated_at`` / ``recorded_until`` are record time (when memlayer held this text);
    ``held_from`` / ``held_until`` are when the fact held in the user's life (None: not said), and
    ``learned_at`` is when memlayer learnt it (the time of the conversation it came from).
    ``subject`` and ``attribute`` say what it is about (`memlayer._internal.facts`).
    """

    model_config = ConfigDict(frozen=True)

    memory_id: str
    memory: str
    topics: list[str] = Field(default_factory=list)
    user_id: str
    agent_id: str | None = None
    session_id: str | None = None
    input: str | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime
    recorded_until: datetime | None = None
    subject: str = "user"
    attribute: str = "other"
    held_from: datetime | None = None
    held_until: datetime | None = None
    learned_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Agno's dict of a memory: times as ISO strings, no None values."""
        return _agno_dict(self.model_dump(exclude={"version", "recorded_until", "session_id"}))


class UserMemory(BaseModel):
    """A memory as Agno's ``UserMemory`` spells it: what `MemoryManager.add_user_memory` and
    ``replace_user_memory`` take in Agno-shaped code, and what ``optimize_memories`` returns.

    ``UserMemory(memory="Likes tea", topics=["drinks"])``; ``memory_id`` chooses the id. Times are
    datetimes (Agno's are epoch seconds; both, and ISO strings, are accepted). Reads return `Memory`,
    which has the same fields (and version history) and the same ``to_dict``.
    """

    memory: str
    memory_id: str | None = None
    topics: list[str] | None = None
    user_id: str | None = None
    input: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    feedback: str | None = None
    agent_id: str | None = None
    team_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Agno's dict of a memory: times as ISO strings, no None values."""
        return _agno_dict(self.model_dump())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserMemory:
        return cls.model_validate(data)


def _agno_dict(values: dict[str, Any]) -> dict[str, Any]:
    if values.get("updated_at") is None:
        values["updated_at"] = values.get("created_at")
    for key in ("created_at", "updated_at"):
        if isinstance(values.get(key), datetime):
            values[key] = values[key].isoformat()
    return {key: value for key, value in values.items() if value is not None}


class SearchHit(BaseModel):
    """One search result: the memory, its fused score, and each signal's share of that score.

    ``score`` is the sum of ``signals`` (``vector``, ``input_vector``, ``keywords``, ``input``, ``names``,
    ``recency``): each a normalised score times its weight, so 0 to a little over 4 (names weigh 0.2,
    recency 0.001). Scores order
    the results of one query; they are scaled per query, so do not compare two queries' scores.
    """

    model_config = ConfigDict(frozen=True)

    memory: Memory
    score: float
    signals: dict[str, float] = Field(default_factory=dict)


class MemoryEvent(BaseModel):
    """One row of the append-only log: what changed, why, and which LLM call decided it."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    memory_id: str
    user_id: str
    operation: Operation
    old_memory: str | None = None
    new_memory: str | None = None
    old_topics: list[str] | None = None
    new_topics: list[str] | None = None
    reason: str | None = None
    source: str
    agent_id: str | None = None
    session_id: str | None = None
    call_id: str | None = None
    model: str | None = None
    created_at: datetime


class Message(BaseModel):
    """One chat message given to extraction. ``created_at`` lets the model resolve "yesterday"."""

    role: Literal["system", "user", "assistant", "tool"] = "user"
    content: str
    created_at: datetime | None = None


class LLMUsage(BaseModel):
    """What one LLM call cost. Tokens and cost are summed over Instructor's retries."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    model: str
    purpose: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float = 0.0
    attempts: int = 1


class MemoryChange(BaseModel):
    """One operation as applied: the memory it touched, before and after."""

    model_config = ConfigDict(frozen=True)

    operation: Operation
    memory_id: str
    memory: str | None
    old_memory: str | None = None
    topics: list[str] = Field(default_factory=list)
    reason: str | None = None


class ExtractionResult(BaseModel):
    """The outcome of one extraction: what changed, what was skipped as a no-op, and the call."""

    model_config = ConfigDict(frozen=True)

    changes: list[MemoryChange] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    usage: LLMUsage | None = None

    @property
    def added(self) -> list[MemoryChange]:
        return [c for c in self.changes if c.operation == "add"]

    @property
    def updated(self) -> list[MemoryChange]:
        return [c for c in self.changes if c.operation == "update"]

    @property
    def deleted(self) -> list[MemoryChange]:
        return [c for c in self.changes if c.operation == "delete"]

    def __len__(self) -> int:
        """How many memories changed (Agno's ``len(result)`` of the model's text is non-zero when one did)."""
        return len(self.changes)

    def __str__(self) -> str:
        """What changed, one line each (where Agno's ``create_user_memories`` returns the model's text)."""
        return "\n".join(f"{c.operation} {c.memory_id}: {_change_text(c)}" for c in self.changes) or (
            "no change to the memories"
        )


def _change_text(change: MemoryChange) -> str:
    if change.old_memory and change.memory:
        return f"{change.old_memory} -> {change.memory}"
    return change.memory or change.old_memory or ""


class ChatMessage(BaseModel):
    """One stored message of a session: what was said, and the tool calls and results of a run."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    run_id: str | None = None
    session_id: str | None = None
    created_at: datetime | None = None


class ToolCallRecord(BaseModel):
    """One tool call the model made in a run, and what the tool answered."""

    model_config = ConfigDict(frozen=True)

    name: str
    arguments: str
    result: str
    failed: bool = False


class RunResponse(BaseModel):
    """The outcome of one agent run: the answer, the tool calls, the cost and the memory changes."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    session_id: str
    user_id: str
    agent_id: str | None = None
    model: str
    content: str
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    messages: list[ChatMessage] = Field(default_factory=list)
    llm_calls: list[LLMUsage] = Field(default_factory=list)
    memories_in_context: list[str] = Field(default_factory=list)
    memory_changes: list[MemoryChange] = Field(default_factory=list)
    memory_error: str | None = None
    # Background memory: the queued extraction of this run (``memory_job.wait()``, ``.result``); None in
    # the foreground mode, where ``memory_changes`` and ``memory_error`` carry its outcome.
    memory_job: Any = Field(default=None, exclude=True)
    stopped_early: bool = False  # the tool loop hit max_tool_rounds

    @property
    def input_tokens(self) -> int:
        return sum(call.input_tokens for call in self.llm_calls)

    @property
    def output_tokens(self) -> int:
        return sum(call.output_tokens for call in self.llm_calls)

    @property
    def cost_usd(self) -> float | None:
        costs = [call.cost_usd for call in self.llm_calls if call.cost_usd is not None]
        return sum(costs) if costs else None
