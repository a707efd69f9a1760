"""`MemoryManager`: extraction, direct edits, reads, history and erasure of a user's memories.

The class is built from `memory.core` (state, options), `memory.edits` and `memory.reads`; this module adds
extraction.

An extraction is three steps: read the candidates (under the DB lock), make one typed LLM call (with
no lock held, so other threads keep reading and writing), then apply every operation in one
transaction together with the usage row. A failure at any step writes no memory and no event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, overload

from .. import checks, flow
from ..errors import ConfigError
from ..llm import tracing
from ..llm.road import labelled
from ..llm.typed import typed_call
from ..llm.usage import LLMCallError
from ..records import ExtractionResult, Message
from .edits import MemoryEdits
from .extraction import ExtractionPlan
from .pipeline import ALL_OPERATIONS, commit_reply, log_failed_call, plan
from .reads import MemoryReads

__all__ = ["MemoryManager"]

_log = logging.getLogger("memlayer")

MessagesInput = str | Message | dict[str, Any] | Sequence[str | Message | dict[str, Any]]


class MemoryManager(MemoryEdits, MemoryReads):
    """Long-term memory for the users of an agent, stored in a `DuckDb` (one process) or a `PostgresDb` (many).

    ``MemoryManager(model="openai:gpt-4o", db=DuckDb("agents.duckdb"),
    additional_instructions=["Ignore small talk."])``
    """

    # -- extraction -------------------------------------------------------------------------------

    # Two overloads each, so a type checker requires user_id and one of messages or message=.
    @overload
    def create_user_memories(
        self, messages: MessagesInput, user_id: str, *, agent_id: str | None = None, session_id: str | None = None
    ) -> ExtractionResult: ...

    @overload
    def create_user_memories(
        self, *, message: str, user_id: str, agent_id: str | None = None, session_id: str | None = None
    ) -> ExtractionResult: ...

    def create_user_memories(
        self,
        messages: MessagesInput | None = None,
        user_id: str | None = None,
        *,
        message: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> ExtractionResult:
        """Extract memories from new messages with one LLM call, and apply them atomically.

        ``create_user_memories(messages, user_id)`` or ``create_user_memories(message="...", user_id=...)``.
        """
        return flow.run(self._extraction(messages, message, user_id, agent_id, session_id))

    @overload
    async def acreate_user_memories(
        self, messages: MessagesInput, user_id: str, *, agent_id: str | None = None, session_id: str | None = None
    ) -> ExtractionResult: ...

    @overload
    async def acreate_user_memories(
        self, *, message: str, user_id: str, agent_id: str | None = None, session_id: str | None = None
    ) -> ExtractionResult: ...

    async def acreate_user_memories(
        self,
        messages: MessagesInput | None = None,
        user_id: str | None = None,
        *,
        message: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> ExtractionResult:
        """The async twin of `create_user_memories`."""
        return await flow.arun(self._extraction(messages, message, user_id, agent_id, session_id))

    def _extraction(
        self, messages: object, message: object, user_id: object, agent_id: object, session_id: object
    ) -> flow.Flow[ExtractionResult]:
        user, msgs, who = self._check_messages(messages, message, user_id, agent_id, session_id)
        if not msgs:
            return ExtractionResult()
        plan = yield flow.Blocking(self._plan, user, messages=msgs, task=None)
        return (yield from self._call_and_apply(plan, user, who, "extraction"))

    def _update_memory_task(
        self, task: str, user_id: str, *, agent_id: str | None = None, session_id: str | None = None
    ) -> flow.Flow[ExtractionResult]:
        """Carry out an instruction such as "forget where I live" with the same one-call path."""
        user, text, who = checks.user(user_id), checks.text("task", task), checks.who(agent_id, session_id)
        plan = yield flow.Blocking(self._plan, user, messages=None, task=text)
        return (yield from self._call_and_apply(plan, user, who, "task"))

    # Written once as a flow, with two drivers (memlayer._internal.flow): in this thread, in the event loop.
    update_memory_task = flow.sync_driver(_update_memory_task)
    aupdate_memory_task = flow.async_driver(_update_memory_task)

    def _call_and_apply(
        self, plan: ExtractionPlan, user: str, who: tuple[str | None, str | None], purpose: str
    ) -> flow.Flow[ExtractionResult]:
        """The one LLM call (no lock held), then every operation in one transaction (in a thread)."""
        model = self._require_model()
        with tracing.span("extract", operation="chat", model=model, user_id=user, purpose=purpose):
            try:
                call = typed_call(
                    model,
                    plan.messages,
                    plan.response_model,
                    purpose=purpose,
                    retries=self.max_retries,
                    provider_retries=self.provider_retries,
                )
                reply = yield from labelled(call, user_id=user, operation=purpose)
            except LLMCallError as exc:
                yield flow.Blocking(log_failed_call, self.db, exc, user, *who)
                raise
            with tracing.span("apply", user_id=user, purpose=purpose):
                result: ExtractionResult = yield flow.Blocking(
                    commit_reply, self.db, self._retrieval, plan, reply, user, *who, purpose
                )
        _log.debug("%s for %r: %s; skipped %s", purpose, user, result.changes, result.skipped)
        return result

    def _check_messages(
        self, messages: object, message: object, user_id: object, agent_id: object, session_id: object
    ) -> tuple[str, list[Message], tuple[str | None, str | None]]:
        # Everything that can be checked is checked here, before the model is called.
        user, who = checks.user(user_id), checks.who(agent_id, session_id)
        if messages is None and message is None:
            raise ConfigError("give messages=[...] or message='...' to extract memories from")
        if messages is None and not isinstance(message, str):
            raise ConfigError(f"message must be a string, got {message!r}")
        msgs = checks.messages(messages if messages is not None else message)
        if msgs and self.model is None:
            self._require_model()
        return user, [m for m in msgs if m.content.strip()], who

    def _plan(self, user: str, *, messages: list[Message] | None, task: str | None) -> ExtractionPlan:
        self._require_model()
        instructions = [*self.memory_capture_instructions, *self.additional_instructions]
        if self.allowed_operations != ALL_OPERATIONS:
            instructions.append(f"Allowed operations: {', '.join(self.allowed_operations)} (no others).")
        return plan(
            self.db,
            self._retrieval,
            user,
            messages,
            task,
            instructions,
            self.candidate_limit,
            system_message=self.system_message,
            allowed=self.allowed_operations,
        )

    def __repr__(self) -> str:
        # The db as set, not `db`: printing a manager must not make it an in-memory store.
        return f"MemoryManager(model={str(self.model) if self.model else None!r}, db={self._db!r})"
