"""`MemoryManager`: extraction, direct edits, reads, history and erasure of a user's memories.

An extraction is three steps: read the candidates (under the DB lock), make one typed LLM call (with
no lock held, so other threads keep reading and writing), then apply every operation in one
transaction together with the usage row. A failure at any step writes no memory and no event.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from . import checks
from .db import DuckDb
from .db import memories as store
from .db.changes import ChangeSet, WriteContext, stored_keys, utcnow
from .embed import Embedder, EmbedderOption
from .errors import ConfigError, MemlayerError
from .extract import ExtractionPlan, add_texts, apply_operations, changed_texts, plan_extraction, source_text
from .models import LLMCallError, Mode, ModelSpec, TypedReply, acomplete_typed, complete_typed, parse_model
from .prompts import PROMPT_VERSION
from .retrieval import Retrieval, SearchFilters
from .types import ExtractionResult, Memory, MemoryEvent, Message

__all__ = ["MemoryManager", "require_user"]

_log = logging.getLogger("memlayer")

MessagesInput = str | Message | dict[str, Any] | Sequence[str | Message | dict[str, Any]]


def require_user(user_id: object) -> str:
    """The user_id, checked (`memlayer.checks.user`); shared with the agent and the tools."""
    return checks.user(user_id)


class MemoryManager:
    """Long-term memory for the users of an agent, stored in a `DuckDb`.

    ``MemoryManager(model="openai:gpt-4o", db=DuckDb("agents.duckdb"),
    additional_instructions=["Ignore small talk."])``
    """

    def __init__(
        self,
        model: str | ModelSpec | None = None,
        db: DuckDb | None = None,
        *,
        additional_instructions: str | Sequence[str] | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        mode: Mode | None = None,
        max_retries: int = 2,
        provider_retries: int = 2,
        candidate_limit: int = 30,
        embedder: EmbedderOption = "auto",
        **model_kwargs: Any,
    ) -> None:
        self.model = (
            None if model is None else parse_model(model, api_base=api_base, api_key=api_key, mode=mode, **model_kwargs)
        )
        if db is not None and not isinstance(db, DuckDb):
            raise ConfigError(f"db must be a DuckDb, e.g. DuckDb('agents.duckdb'), got {db!r}")
        # Set once: given here, joined by an Agent (`join_db`), or an in-memory one on first use.
        self._db: DuckDb | None = db
        self._db_lock = threading.Lock()
        if isinstance(additional_instructions, str):
            additional_instructions = [additional_instructions]
        self.additional_instructions = [s for s in additional_instructions or [] if s.strip()]
        if max_retries < 0 or provider_retries < 0 or candidate_limit < 1:
            raise ConfigError("max_retries and provider_retries must be >= 0, candidate_limit >= 1")
        self.max_retries = max_retries
        self.provider_retries = provider_retries
        self.candidate_limit = candidate_limit
        # "auto": the offline embedder when memlayer[local] is installed, else keyword search only.
        self._retrieval = Retrieval(lambda: self.db, embedder)

    @property
    def db(self) -> DuckDb:
        """The store; one owner, so retrieval, reads and writes always reach the same file."""
        with self._db_lock:
            if self._db is None:
                self._db = DuckDb()
            return self._db

    def join_db(self, db: DuckDb) -> None:
        """Use ``db`` when this manager was made without one and has not been used yet (an `Agent`'s)."""
        with self._db_lock:
            if self._db is None:
                self._db = db
            elif self._db is not db:
                raise ConfigError(
                    "the agent's db and its memory_manager's db are different DuckDb objects; pass the same one "
                    "to both so sessions and memories live in one file"
                )

    @property
    def embedder(self) -> Embedder | None:
        """What embeds memories and queries; None when search is by keywords and recency only."""
        return self._retrieval.embedder

    # -- extraction -------------------------------------------------------------------------------

    def create_user_memories(
        self,
        messages: MessagesInput | None = None,
        user_id: str | None = None,
        *,
        message: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> ExtractionResult:
        """Extract memories from new messages with one LLM call, and apply them atomically."""
        user, msgs = self._check_messages(messages, message, user_id)
        if not msgs:
            return ExtractionResult()
        plan = self._plan(user, messages=msgs)
        reply = self._call(plan, user, agent_id, session_id, "extraction")
        return self._apply(plan, reply, user, agent_id, session_id, "extraction")

    async def acreate_user_memories(
        self,
        messages: MessagesInput | None = None,
        user_id: str | None = None,
        *,
        message: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> ExtractionResult:
        user, msgs = self._check_messages(messages, message, user_id)
        if not msgs:
            return ExtractionResult()
        plan = await asyncio.to_thread(self._plan, user, messages=msgs)
        reply = await self._acall(plan, user, agent_id, session_id, "extraction")
        return await asyncio.to_thread(self._apply, plan, reply, user, agent_id, session_id, "extraction")

    def update_memory_task(
        self, task: str, user_id: str | None = None, *, agent_id: str | None = None, session_id: str | None = None
    ) -> ExtractionResult:
        """Carry out an instruction such as "forget where I live" with the same one-call path."""
        user, task = require_user(user_id), self._check_task(task)
        plan = self._plan(user, task=task)
        reply = self._call(plan, user, agent_id, session_id, "task")
        return self._apply(plan, reply, user, agent_id, session_id, "task")

    async def aupdate_memory_task(
        self, task: str, user_id: str | None = None, *, agent_id: str | None = None, session_id: str | None = None
    ) -> ExtractionResult:
        user, task = require_user(user_id), self._check_task(task)
        plan = await asyncio.to_thread(self._plan, user, task=task)
        reply = await self._acall(plan, user, agent_id, session_id, "task")
        return await asyncio.to_thread(self._apply, plan, reply, user, agent_id, session_id, "task")

    def _check_messages(
        self, messages: MessagesInput | None, message: str | None, user_id: str | None
    ) -> tuple[str, list[Message]]:
        user = require_user(user_id)
        if messages is None and message is None:
            raise ConfigError("give messages=[...] or message='...' to extract memories from")
        msgs = Message.coerce(messages if messages is not None else message or "")
        return user, [m for m in msgs if m.content.strip()]

    def _check_task(self, task: object) -> str:
        if not isinstance(task, str) or not task.strip():
            raise ConfigError(f"task must be a non-empty string, got {task!r}")
        return task

    def _spec(self) -> ModelSpec:
        if self.model is None:
            raise ConfigError("this MemoryManager has no model; pass model='provider:model' to extract memories")
        return self.model

    def _plan(self, user: str, *, messages: list[Message] | None = None, task: str | None = None) -> ExtractionPlan:
        self._spec()
        # Candidates by the same hybrid search as search_user_memories; the query is embedded only
        # by a local embedder, so an extraction makes at most one (batched) remote embedding call.
        vector = self._retrieval.query_vector(source_text(messages=messages, task=task), remote=False)
        with self.db.reading() as conn:
            return plan_extraction(
                messages=messages,
                task=task,
                additional_instructions=self.additional_instructions,
                candidate_limit=self.candidate_limit,
                rank=lambda text, limit: self._retrieval.search(conn, user, text, limit, query_vector=vector),
            )

    def _call_args(self, plan: ExtractionPlan, purpose: str) -> dict[str, Any]:
        return {
            "spec": self._spec(),
            "messages": plan.messages,
            "response_model": plan.response_model,
            "purpose": purpose,
            "retries": self.max_retries,
            "provider_retries": self.provider_retries,
        }

    def _call(
        self, plan: ExtractionPlan, user: str, agent: str | None, session: str | None, purpose: str
    ) -> TypedReply:
        try:
            return complete_typed(**self._call_args(plan, purpose))
        except LLMCallError as exc:
            self._log_failed_call(exc, user, agent, session)
            raise

    async def _acall(
        self, plan: ExtractionPlan, user: str, agent: str | None, session: str | None, purpose: str
    ) -> TypedReply:
        try:
            return await acomplete_typed(**self._call_args(plan, purpose))
        except LLMCallError as exc:
            await asyncio.to_thread(self._log_failed_call, exc, user, agent, session)
            raise

    def _log_failed_call(self, exc: LLMCallError, user: str, agent: str | None, session: str | None) -> None:
        # The usage row is the only write for a failed call: it cost tokens, and changed nothing.
        ctx = WriteContext(user, exc.usage.purpose, utcnow(), agent, session, model=exc.model)
        try:
            with self.db.transaction() as conn:
                store.insert_llm_call(conn, exc.usage, ctx, prompt_version=PROMPT_VERSION, error=str(exc))
        except MemlayerError as log_error:
            # The caller needs the original failure, not a second one from logging it (a locked file).
            _log.warning("could not record the failed LLM call %s: %s", exc.usage.call_id, log_error)

    def _apply(
        self, plan: ExtractionPlan, reply: TypedReply, user: str, agent: str | None, session: str | None, source: str
    ) -> ExtractionResult:
        ctx = WriteContext(
            user_id=user,
            source=source,
            now=utcnow(),
            agent_id=agent,
            session_id=session,
            call_id=reply.usage.call_id,
            model=reply.usage.model,
            input=plan.input,
        )
        operations = list(getattr(reply.value, "operations", []))
        changes = ChangeSet(ctx)
        try:
            vectors = self._retrieval.embed(changed_texts(operations))  # one batched call, outside the lock
            with self._retrieval.transaction(changes, vectors) as conn:
                skipped = apply_operations(changes, plan, operations, stored_keys(conn, user, add_texts(operations)))
                changes.write(conn)
                store.insert_llm_call(conn, reply.usage, ctx, prompt_version=PROMPT_VERSION)
        except MemlayerError as exc:
            failed = LLMCallError(str(exc), model=reply.usage.model, usage=reply.usage, last_reply=None)
            self._log_failed_call(failed, user, agent, session)
            raise
        return ExtractionResult(changes=changes.changes, skipped=skipped, usage=reply.usage)

    # -- direct edits -----------------------------------------------------------------------------

    def add_user_memory(
        self,
        memory: str,
        user_id: str | None = None,
        *,
        topics: Sequence[str] | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        input: str | None = None,
    ) -> Memory:
        """Store a memory as given, with no LLM call. ``input``: the text it came from (searched too)."""
        user, text = require_user(user_id), _text(memory)
        ctx = WriteContext(user, "api", utcnow(), agent_id, session_id, input=input)
        changes = ChangeSet(ctx)
        new = changes.add(text, list(topics or []))
        vectors = self._retrieval.embed([text])
        with self._retrieval.transaction(changes, vectors) as conn:
            changes.write(conn)
        return new

    def replace_user_memory(
        self, memory_id: str, memory: str, user_id: str | None = None, *, topics: Sequence[str] | None = None
    ) -> Memory:
        """Replace a memory's text (a new version; the old one stays in its history)."""
        user, text = require_user(user_id), _text(memory)
        ctx = WriteContext(user, "api", utcnow())
        changes = ChangeSet(ctx)
        vectors = self._retrieval.embed([text])
        with self._retrieval.transaction(changes, vectors) as conn:
            old = _owned(conn, user, memory_id)
            new = changes.update(old, text, list(topics) if topics is not None else old.topics)
            changes.write(conn)
        return new

    def delete_user_memory(self, memory_id: str, user_id: str | None = None) -> None:
        """Forget a memory now; its versions and events stay until `erase_user`."""
        user = require_user(user_id)
        ctx = WriteContext(user, "api", utcnow())
        changes = ChangeSet(ctx)
        with self._retrieval.transaction(changes, {}) as conn:
            changes.delete(_owned(conn, user, memory_id))
            changes.write(conn)

    def clear_user_memories(self, user_id: str | None = None) -> int:
        """Forget every current memory of one user (history kept). Returns how many."""
        user = require_user(user_id)
        ctx = WriteContext(user, "api", utcnow())
        changes = ChangeSet(ctx)
        with self._retrieval.transaction(changes, {}) as conn:
            current = store.list_memories(conn, user)
            for memory in current:
                changes.delete(memory, "cleared")
            changes.write(conn)
        return len(current)

    def erase_user(self, user_id: str | None = None) -> dict[str, int]:
        """Delete everything held about one user: memories, every version, events, sessions and LLM usage.

        The file is then rewritten (`DuckDb.rewrite`), so no byte of the user's data stays in it or its
        WAL: this costs a copy of the whole database file, in time and free disk space.
        """
        user = require_user(user_id)
        with self.db.reading():  # the loaded index is dropped before any other thread can search
            with self.db.transaction() as conn:
                counts = store.erase_user(conn, user)
            self._retrieval.forget(user)
            if any(counts.values()):
                self.db.rewrite()
        return counts

    def reembed_memories(self, *, batch_size: int = 256) -> int:
        """Embed every current memory with this manager's embedder, after a change of embedder.

        Vectors of any other embedder are deleted first. Returns how many memories were embedded.
        """
        return self._retrieval.reembed(batch_size)

    # -- reads ------------------------------------------------------------------------------------

    def get_user_memories(
        self,
        user_id: str | None = None,
        *,
        topics: Sequence[str] | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        as_of: datetime | None = None,
    ) -> list[Memory]:
        """The user's memories now (or as they were at ``as_of``), most recently changed first."""
        user = require_user(user_id)
        with self.db.reading() as conn:
            return store.list_memories(
                conn, user, topics=list(topics) if topics else None, agent_id=agent_id, limit=limit, as_of=as_of
            )

    def get_user_memory(
        self, memory_id: str, user_id: str | None = None, *, as_of: datetime | None = None
    ) -> Memory | None:
        """One memory of this user, or None when it does not exist, is deleted, or is someone else's."""
        user = require_user(user_id)
        with self.db.reading() as conn:
            return store.find_memory(conn, user, memory_id, as_of=as_of)

    def search_user_memories(
        self,
        query: str,
        user_id: str | None = None,
        *,
        limit: int = 10,
        agent_id: str | None = None,
        topics: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        as_of: datetime | None = None,
    ) -> list[Memory]:
        """The user's memories most relevant to ``query``, best first: hybrid search (memlayer.search).

        Vector similarity (when there is an embedder), BM25 keywords and recency, fused by rank.
        Filters: ``agent_id``, any of ``topics``, last changed in ``[since, until)``, and ``as_of``
        to search the memories as they were then.
        """
        user = require_user(user_id)
        if not isinstance(query, str):
            raise ConfigError(f"query must be a string, got {query!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"limit must be a positive integer, got {limit!r}")
        filters = SearchFilters(agent_id=agent_id, topics=tuple(topics or ()), since=since, until=until)
        vector = self._retrieval.query_vector(query)  # outside the lock: it may be a remote call
        with self.db.reading() as conn:
            return self._retrieval.search(conn, user, query, limit, query_vector=vector, filters=filters, as_of=as_of)

    def get_memory_history(self, memory_id: str, user_id: str | None = None) -> list[MemoryEvent]:
        """Every add, update and delete of one memory, oldest first, with the reason and model."""
        user = require_user(user_id)
        with self.db.reading() as conn:
            return store.list_events(conn, user, memory_id)

    def get_user_events(self, user_id: str | None = None) -> list[MemoryEvent]:
        """Every change to any of the user's memories, oldest first."""
        user = require_user(user_id)
        with self.db.reading() as conn:
            return store.list_events(conn, user)

    # -- async twins of the direct edits and reads --------------------------------------------

    async def aadd_user_memory(self, memory: str, user_id: str | None = None, **kwargs: Any) -> Memory:
        return await asyncio.to_thread(self.add_user_memory, memory, user_id, **kwargs)

    async def areplace_user_memory(
        self, memory_id: str, memory: str, user_id: str | None = None, **kwargs: Any
    ) -> Memory:
        return await asyncio.to_thread(self.replace_user_memory, memory_id, memory, user_id, **kwargs)

    async def adelete_user_memory(self, memory_id: str, user_id: str | None = None) -> None:
        await asyncio.to_thread(self.delete_user_memory, memory_id, user_id)

    async def aclear_user_memories(self, user_id: str | None = None) -> int:
        return await asyncio.to_thread(self.clear_user_memories, user_id)

    async def aerase_user(self, user_id: str | None = None) -> dict[str, int]:
        return await asyncio.to_thread(self.erase_user, user_id)

    async def aget_user_memories(self, user_id: str | None = None, **kwargs: Any) -> list[Memory]:
        return await asyncio.to_thread(self.get_user_memories, user_id, **kwargs)

    async def aget_user_memory(self, memory_id: str, user_id: str | None = None, **kwargs: Any) -> Memory | None:
        return await asyncio.to_thread(self.get_user_memory, memory_id, user_id, **kwargs)

    async def asearch_user_memories(
        self, query: str, user_id: str | None = None, *, limit: int = 10, **kwargs: Any
    ) -> list[Memory]:
        return await asyncio.to_thread(self.search_user_memories, query, user_id, limit=limit, **kwargs)

    async def areembed_memories(self, *, batch_size: int = 256) -> int:
        return await asyncio.to_thread(self.reembed_memories, batch_size=batch_size)

    async def aget_memory_history(self, memory_id: str, user_id: str | None = None) -> list[MemoryEvent]:
        return await asyncio.to_thread(self.get_memory_history, memory_id, user_id)

    def __repr__(self) -> str:
        return f"MemoryManager(model={str(self.model) if self.model else None!r}, db={self.db!r})"


def _text(memory: object) -> str:
    if not isinstance(memory, str) or not memory.strip():
        raise ConfigError(f"memory must be a non-empty string, got {memory!r}")
    return memory.strip()


def _owned(conn: Any, user: str, memory_id: str) -> Memory:
    memory = store.find_memory(conn, user, memory_id)
    if memory is None:
        # Same words whether the id is unknown or another user's: an error must not confirm it exists.
        raise ConfigError(f"user {user!r} has no current memory {memory_id!r}")
    return memory
