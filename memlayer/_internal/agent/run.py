"""One agent run in progress: what the model is sent, what is stored, and where its text goes.

`RunState` collects a run's replies, tool calls and LLM usage; `RunState.store` writes the run, its
messages and its LLM calls in one transaction; `RunState.response` is what the caller gets back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from .. import clock
from ..db import jobs, sessions
from ..db import memories as memory_sql
from ..db.changes import Provenance
from ..db.jobs import NewJob
from ..db.store import Store
from ..errors import MemlayerError
from ..llm.chat import ChatReply, ToolCall
from ..memory.background import MemoryJob
from ..memory.manager import MemoryManager
from ..records import ChatMessage, LLMUsage, Message, RunResponse, ToolCallRecord
from .prompt import AGENT_PROMPT_VERSION
from .tools import RunContext

__all__ = ["RunState", "RunStream", "Sink"]

_log = logging.getLogger("memlayer")


@dataclass
class RunState:
    """One run in progress: what the model is sent (``prompt_messages``), what will be stored, and what it cost."""

    ctx: RunContext
    model: str
    prompt_messages: list[dict[str, Any]]
    stored: list[ChatMessage]
    memories: list[str]
    started: datetime
    calls: list[LLMUsage] = field(default_factory=list)
    tool_records: list[ToolCallRecord] = field(default_factory=list)
    content: str = ""
    stopped_early: bool = False
    failed_call: str | None = None

    def add_reply(self, reply: ChatReply) -> bool:
        """Record a reply; True when it asks for tools and the loop goes on."""
        self.calls.append(reply.usage)
        self.prompt_messages.append(reply.message)
        now = clock.now()
        if not reply.tool_calls:
            self.content = reply.content
            self.stored.append(ChatMessage(role="assistant", content=reply.content, created_at=now))
            return False
        calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls]
        self.stored.append(
            ChatMessage(role="assistant", content=reply.content or None, tool_calls=calls, created_at=now)
        )
        return True

    def record_tool(self, call: ToolCall, text: str, failed: bool) -> str:
        self.tool_records.append(ToolCallRecord(name=call.name, arguments=call.arguments, result=text, failed=failed))
        self.stored.append(
            ChatMessage(role="tool", content=text, tool_call_id=call.id, tool_name=call.name, created_at=clock.now())
        )
        return text

    def conversation(self) -> list[ChatMessage]:
        """What the user and the assistant said, without the tool rounds: the input of extraction."""
        return [m for m in self.stored if m.role in ("user", "assistant") and m.content and not m.tool_calls]

    def extraction_job(self) -> NewJob:
        """The always-on extraction of this run, as a job to queue with it."""
        ctx = self.ctx
        return NewJob(ctx.run_id, ctx.user_id, self._extraction_input(), ctx.agent_id, ctx.session_id, ctx.run_id)

    def extract_now(self, manager: MemoryManager) -> str | None:
        """Foreground always-on memory: the extraction in this run; returns why it failed, if it did."""
        ctx = self.ctx
        try:
            result = manager.create_user_memories(
                self._extraction_input(), ctx.user_id, agent_id=ctx.agent_id, session_id=ctx.session_id
            )
        except MemlayerError as exc:
            # The answer is already stored and is still returned; the failure is reported, not hidden.
            _log.warning("memory extraction after run %s failed: %s", ctx.run_id, exc)
            return str(exc)
        ctx.memory_changes.extend(result.changes)
        if result.usage:
            ctx.llm_calls.append(result.usage)
        return None

    def _extraction_input(self) -> list[Message]:
        return [Message(role=m.role, content=m.content or "", created_at=m.created_at) for m in self.conversation()]

    def save(self, db: Store, error: str | None = None, job: NewJob | None = None) -> None:
        """The session, the run, its messages, its chat calls and its memory ``job``, in one transaction."""
        ctx = self.ctx
        record = sessions.RunRecord(
            ctx.run_id, ctx.session_id, ctx.user_id, ctx.agent_id, self.model, error, self.calls,
            len(self.tool_records), self.started,
        )  # fmt: skip
        write = Provenance(ctx.user_id, "chat", self.started, ctx.agent_id, ctx.session_id, model=self.model)
        with db.transaction() as conn:
            sessions.write_run(conn, record, self.stored)
            for usage in self.calls:
                failed = error if usage.call_id == self.failed_call else None
                memory_sql.insert_llm_call(conn, usage, write, prompt_version=AGENT_PROMPT_VERSION, error=failed)
            if job is not None:  # queued with the answer: a run that was answered has its extraction queued
                jobs.enqueue(conn, job, jobs.utc_now())

    def response(self, memory_error: str | None, memory_job: MemoryJob | None = None) -> RunResponse:
        ctx = self.ctx
        return RunResponse(
            run_id=ctx.run_id,
            session_id=ctx.session_id,
            user_id=ctx.user_id,
            agent_id=ctx.agent_id,
            model=self.model,
            content=self.content,
            tool_calls=self.tool_records,
            messages=self.stored,
            llm_calls=[*self.calls, *ctx.llm_calls],  # the run's chat calls, then those its tools made
            memories_in_context=self.memories,
            memory_changes=ctx.memory_changes,
            memory_error=memory_error,
            memory_job=memory_job,
            stopped_early=self.stopped_early,
        )


class RunStream:
    """The text of a streamed run as it arrives; ``.response`` holds the `RunResponse` once it ends."""

    def __init__(self, chunks: Iterator[str | RunResponse]) -> None:
        self._chunks = chunks
        self.response: RunResponse | None = None

    def __iter__(self) -> Iterator[str]:
        for chunk in self._chunks:
            if isinstance(chunk, RunResponse):
                self.response = chunk
            else:
                yield chunk


class Sink:
    """Where a run's chunks go: to a terminal as they arrive (or at the end), or nowhere."""

    def __init__(self, out: TextIO | None, stream: bool) -> None:
        self.out, self.stream = out, stream
        self.response: RunResponse | None = None

    def take(self, chunk: str | RunResponse) -> None:
        if isinstance(chunk, RunResponse):
            self.response = chunk
        elif self.out is not None and self.stream:
            self.out.write(chunk)
            self.out.flush()

    def finish(self) -> RunResponse:
        assert self.response is not None, "a run always ends with its response"
        if self.out is not None:
            self.out.write(("" if self.stream else self.response.content) + "\n")
            _print_memory_notes(self.response, self.out)
        return self.response


def _print_memory_notes(response: RunResponse, out: TextIO) -> None:
    for change in response.memory_changes:
        text = change.memory if change.memory is not None else change.old_memory
        out.write(f"[memory] {change.operation}: {text}\n")
    if response.memory_error:
        out.write(f"[memory] not updated: {response.memory_error}\n")
