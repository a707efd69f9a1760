"""`MemoryManager`: extraction, direct edits, reads, history and erasure of a user's memories.

The class is built from `memory.core` (state, options), `memory.edits` and `memory.reads`; this module adds
extraction.

An extraction is three steps: read the candidates (under the DB lock), make one typed LLM call (with
no lock held, so other threads keep reading and writing), then apply every operation in one
transaction together with the usage row. A failure at any step writes no memory and no event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

from .. import checks, clock, flow
from ..db import jobs as job_sql
from ..db.jobs import ClaimedJob, NewJob
from ..db.store import Connection
from ..errors import ConfigError
from ..llm import tracing
from ..llm.road import labelled
from ..llm.typed import typed_call
from ..llm.usage import LLMCallError
from ..records import ExtractionResult, Message
from .background import JobWorker, MemoryJob, Probe
from .edits import MemoryEdits
from .extraction import ExtractionPlan
from .pipeline import ALL_OPERATIONS, commit_reply, log_failed_call, plan
from .reads import MemoryReads

__all__ = ["MemoryManager"]

_log = logging.getLogger("memlayer")

Finish = Callable[[Connection], None]
MessagesInput = str | Message | dict[str, Any] | Sequence[str | Message | dict[str, Any]]


class MemoryManager(MemoryEdits, MemoryReads):
    """Long-term memory for the users of an agent, stored in a `DuckDb` (one process) or a `PostgresDb` (many).

    ``MemoryManager(model="openai:gpt-4o", db=DuckDb("agents.duckdb"),
    additional_instructions=["Ignore small talk."])``
    """

    # -- extraction -------------------------------------------------------------------------------

    # Overloads, so a type checker requires user_id and one of messages or message=, and knows the handle.
    @overload
    def create_user_memories(
        self,
        messages: MessagesInput,
        user_id: str,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        background: Literal[False] = False,
    ) -> ExtractionResult: ...

    @overload
    def create_user_memories(
        self,
        *,
        message: str,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        background: Literal[False] = False,
    ) -> ExtractionResult: ...

    @overload
    def create_user_memories(
        self,
        messages: MessagesInput,
        user_id: str,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        background: Literal[True],
    ) -> MemoryJob: ...

    def create_user_memories(
        self,
        messages: MessagesInput | None = None,
        user_id: str | None = None,
        *,
        message: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        background: bool = False,
    ) -> ExtractionResult | MemoryJob:
        """Extract memories from new messages with one LLM call, and apply them atomically.

        ``create_user_memories(messages, user_id)`` or ``create_user_memories(message="...", user_id=...)``.
        ``background=True`` queues the extraction in the store and returns at once with a `MemoryJob`
        (``job.wait(timeout)``, ``job.result``); a worker thread applies it exactly once, with retries.
        """
        if background:
            return self._queue_checked(messages, message, user_id, agent_id, session_id)
        return flow.run(self._extraction(messages, message, user_id, agent_id, session_id))

    @overload
    async def acreate_user_memories(
        self,
        messages: MessagesInput,
        user_id: str,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        background: Literal[False] = False,
    ) -> ExtractionResult: ...

    @overload
    async def acreate_user_memories(
        self,
        *,
        message: str,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        background: Literal[False] = False,
    ) -> ExtractionResult: ...

    @overload
    async def acreate_user_memories(
        self,
        messages: MessagesInput,
        user_id: str,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        background: Literal[True],
    ) -> MemoryJob: ...

    async def acreate_user_memories(
        self,
        messages: MessagesInput | None = None,
        user_id: str | None = None,
        *,
        message: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        background: bool = False,
    ) -> ExtractionResult | MemoryJob:
        """The async twin of `create_user_memories`."""
        if background:
            return await asyncio.to_thread(self._queue_checked, messages, message, user_id, agent_id, session_id)
        return await flow.arun(self._extraction(messages, message, user_id, agent_id, session_id))

    # -- background extraction (memlayer._internal.memory.background) ---------------------------------------

    def _queue_checked(
        self, messages: object, message: object, user_id: object, agent_id: object, session_id: object
    ) -> MemoryJob:
        user, msgs, (agent, session) = self._check_messages(messages, message, user_id, agent_id, session_id)
        self._require_model()
        job = NewJob(clock.new_id(), user, msgs, agent, session)
        with self.db.transaction() as conn:
            job_sql.enqueue(conn, job, job_sql.utc_now())
        return self._track_job(job)

    def _track_job(self, job: NewJob) -> MemoryJob:
        """Follow a job already committed to the store (an agent queues it with its run), and wake the worker."""
        return self.job_worker.track(job.job_id, job.user_id)

    @property
    def job_worker(self) -> JobWorker:
        """This manager's one background worker, made on first use (its thread starts with the first job);
        ``memlayer worker`` runs its loop (`JobWorker.serve`) in the foreground."""
        db = self.db
        with self._worker_lock:
            if self._worker is None:
                self._worker = JobWorker(db, self._apply_job, self.job_settings)
            return self._worker

    def _apply_job(self, job: ClaimedJob, probe: Probe) -> ExtractionResult:
        """One claimed job's extraction; its changes and its done mark commit in one transaction."""

        def finish(conn: Connection) -> None:
            probe("replied")  # the model has answered; nothing of it is committed yet
            job_sql.complete(conn, job, job_sql.utc_now())

        msgs = [m for m in job.messages if m.content.strip()]
        if not msgs:
            with self.db.transaction() as conn:
                job_sql.complete(conn, job, job_sql.utc_now())
            return ExtractionResult()
        return flow.run(self._planned_extraction(job.user_id, msgs, (job.agent_id, job.session_id), finish))

    def wait_for_memories(self, user_id: str, *, timeout: float | None = None) -> bool:
        """Wait until the extractions this process queued for ``user_id`` have had their attempt.

        ``timeout`` defaults to ``JobSettings.read_wait``; returns False if it passed first.
        """
        worker, user = self._worker, checks.user(user_id)
        wait = self.job_settings.read_wait if timeout is None else checks.seconds("timeout", timeout)
        return worker is None or worker.wait_user(user, wait)

    await_for_memories = flow.threaded(wait_for_memories)

    def run_memory_jobs(self, *, timeout: float | None = None) -> int:
        """Apply every ready job in the store in this thread (what ``memlayer worker --once`` does); returns how
        many were taken. Jobs other processes queued count too."""
        return self.job_worker.drain(timeout)

    arun_memory_jobs = flow.threaded(run_memory_jobs)

    def _extraction(
        self, messages: object, message: object, user_id: object, agent_id: object, session_id: object
    ) -> flow.Flow[ExtractionResult]:
        user, msgs, who = self._check_messages(messages, message, user_id, agent_id, session_id)
        if not msgs:
            return ExtractionResult()
        return (yield from self._planned_extraction(user, msgs, who, None))

    def _planned_extraction(
        self, user: str, msgs: list[Message], who: tuple[str | None, str | None], finish: Finish | None
    ) -> flow.Flow[ExtractionResult]:
        plan = yield flow.Blocking(self._plan, user, messages=msgs, task=None)
        return (yield from self._call_and_apply(plan, user, who, "extraction", finish))

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
        self,
        plan: ExtractionPlan,
        user: str,
        who: tuple[str | None, str | None],
        purpose: str,
        finish: Finish | None = None,
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
                    commit_reply, self.db, self._retrieval, plan, reply, user, *who, purpose, finish
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
