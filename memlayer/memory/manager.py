"""`MemoryManager`: extraction, direct edits, reads, history and erasure of a user's memories.

An extraction is three steps: read the candidates (under the DB lock), make one typed LLM call (with
no lock held, so other threads keep reading and writing), then apply every operation in one
transaction together with the usage row. A failure at any step writes no memory and no event.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, overload

from .. import checks, clock, flow
from ..db import DuckDb
from ..db import memories as memory_sql
from ..db.changes import ChangeSet, Provenance
from ..db.store import Store
from ..errors import ConfigError
from ..llm import tracing
from ..llm.litellm import start_import
from ..llm.road import labelled
from ..llm.spec import Mode, ModelSpec, parse_model
from ..llm.typed import typed_call
from ..llm.usage import LLMCallError
from ..records import ExtractionResult, Memory, MemoryEvent, Message, SearchHit
from ..search.embedders import Embedder, EmbedderOption
from ..search.retrieval import NO_VECTORS, Retrieval, search_request
from .extraction import ExtractionPlan
from .pipeline import add_once, commit_reply, current_memory, log_failed_call, plan, replacement_vectors

__all__ = ["MemoryManager"]

MessagesInput = str | Message | dict[str, Any] | Sequence[str | Message | dict[str, Any]]


class MemoryManager:
    """Long-term memory for the users of an agent, stored in a `DuckDb` (one process) or a `PostgresDb` (many).

    ``MemoryManager(model="openai:gpt-4o", db=DuckDb("agents.duckdb"),
    additional_instructions=["Ignore small talk."])``
    """

    def __init__(
        self,
        model: str | ModelSpec | None = None,
        db: Store | None = None,
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
        if self.model is not None:
            start_import()  # LiteLLM and Instructor, in a background thread: the first request finds them
        if db is not None and not isinstance(db, Store):
            raise ConfigError(f"db must be a DuckDb or a PostgresDb, e.g. DuckDb('agents.duckdb'), got {db!r}")
        # Set once: given here, joined by an Agent (`join`), or an in-memory one on first use.
        self._db: Store | None = db
        self._db_lock = threading.Lock()
        self.additional_instructions = checks.instructions(additional_instructions)
        self.max_retries = checks.count("max_retries", max_retries, minimum=0)
        self.provider_retries = checks.count("provider_retries", provider_retries, minimum=0)
        self.candidate_limit = checks.count("candidate_limit", candidate_limit, minimum=1)
        # "auto": the offline embedder when memlayer-ai[local] is installed, else keyword search only.
        self._retrieval = Retrieval(embedder)

    @property
    def db(self) -> Store:
        """The store; one owner, so retrieval, reads and writes always reach the same file."""
        with self._db_lock:
            if self._db is None:
                self._db = DuckDb()
            return self._db

    def join(self, db: Store, model: ModelSpec) -> None:
        """Fill in what this manager was made without, from the `Agent` it is given to.

        The db is set once: a manager with none (and not yet used) joins ``db``; one with another db is
        refused. ``model`` is used only when the manager has none. Nothing the caller set is replaced.
        """
        with self._db_lock:
            if self._db is None:
                self._db = db
            elif self._db is not db:
                raise ConfigError(
                    "the agent's db and its memory_manager's db are different stores; pass the same one "
                    "to both so sessions and memories live in one file"
                )
            if self.model is None:
                self.model = model

    @property
    def embedder(self) -> Embedder | None:
        """What embeds memories and queries; None when search is by keywords and recency only."""
        return self._retrieval.embedder

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

    # Written once as a flow, with two drivers (memlayer.flow): in this thread, in the event loop.
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
        return plan(self.db, self._retrieval, user, messages, task, self.additional_instructions, self.candidate_limit)

    def _require_model(self) -> ModelSpec:
        if self.model is None:
            raise ConfigError("this MemoryManager has no model; pass model='provider:model' to extract memories")
        return self.model

    # -- direct edits -----------------------------------------------------------------------------

    def add_user_memory(
        self,
        memory: str,
        user_id: str,
        *,
        topics: Sequence[str] | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        input: str | None = None,
    ) -> Memory:
        """Store a memory as given, with no LLM call. ``input``: the text it came from (searched too).

        A text the user already has as a current memory (ignoring case and spacing) is not stored twice:
        that memory is returned, on every store and however many processes add it at once.
        """
        user, text, names = checks.user(user_id), checks.memory_text(memory), checks.topics(topics)
        agent, session = checks.who(agent_id, session_id)
        origin = Provenance(user, "api", clock.now(), agent, session, input=checks.source_input(input))
        return add_once(self.db, self._retrieval, origin, text, names)

    def replace_user_memory(
        self, memory_id: str, memory: str, user_id: str, *, topics: Sequence[str] | None = None
    ) -> Memory:
        """Replace a memory's text (a new version; the old one stays in its history)."""
        user, text, key = checks.user(user_id), checks.memory_text(memory), checks.memory_id(memory_id)
        names = None if topics is None else checks.topics(topics)
        origin = Provenance(user, "api", clock.now())
        changes = ChangeSet(origin)
        vectors = replacement_vectors(self.db, self._retrieval, user, key, text)
        with self._retrieval.transaction(self.db, changes, vectors) as conn:
            old = current_memory(conn, user, key)
            new = changes.update(old, text, names if names is not None else old.topics)
            changes.write(conn)
        return new

    def delete_user_memory(self, memory_id: str, user_id: str) -> None:
        """Forget a memory now; its versions and events stay until `erase_user`."""
        user, key = checks.user(user_id), checks.memory_id(memory_id)
        origin = Provenance(user, "api", clock.now())
        changes = ChangeSet(origin)
        with self._retrieval.transaction(self.db, changes, NO_VECTORS) as conn:
            changes.delete(current_memory(conn, user, key))
            changes.write(conn)

    def clear_user_memories(self, user_id: str) -> int:
        """Forget every current memory of one user (history kept). Returns how many."""
        user = checks.user(user_id)
        origin = Provenance(user, "api", clock.now())
        changes = ChangeSet(origin)
        with self._retrieval.transaction(self.db, changes, NO_VECTORS) as conn:
            current = memory_sql.list_memories(conn, user)
            for memory in current:
                changes.delete(memory, "cleared")
            changes.write(conn)
        return len(current)

    def erase_user(self, user_id: str) -> dict[str, int]:
        """Delete everything held about one user: memories, every version, events, sessions and LLM usage.

        The store is then rewritten (`DuckDb.rewrite`), so no byte of the user's data stays in it or its
        WAL: this costs a copy of the whole database file, in time and free disk space.
        """
        user = checks.user(user_id)
        with self.db.reading():  # the loaded index is dropped before any other thread can search
            with self.db.transaction() as conn:
                counts = memory_sql.erase_user(conn, user)
            self._retrieval.forget(self.db, user)
            if any(counts.values()):
                self.db.rewrite()
        return counts

    def reembed_memories(self, *, batch_size: int = 256) -> int:
        """Embed every current memory with this manager's embedder, after a change of embedder.

        Vectors of any other embedder are deleted first. Returns how many memories were embedded.
        """
        return self._retrieval.reembed(self.db, checks.count("batch_size", batch_size, minimum=1))

    # -- reads ------------------------------------------------------------------------------------

    def get_user_memories(
        self,
        user_id: str,
        *,
        topics: Sequence[str] | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        as_of: datetime | str | date | None = None,
    ) -> list[Memory]:
        """The user's memories now (or as they were at ``as_of``), most recently changed first.

        ``as_of``: a datetime (naive means UTC), a date (its midnight, UTC) or an ISO 8601 string.
        """
        user, names = checks.user(user_id), checks.topic_filter(topics)
        agent, count = checks.optional_text("agent_id", agent_id), checks.limit(limit)
        moment = checks.timestamp("as_of", as_of)
        with self.db.reading() as conn:
            return memory_sql.list_memories(conn, user, topics=names or None, agent_id=agent, limit=count, as_of=moment)

    def get_user_memory(
        self, memory_id: str, user_id: str, *, as_of: datetime | str | date | None = None
    ) -> Memory | None:
        """One memory of this user, or None when it does not exist, is deleted, or is someone else's."""
        user, key, moment = checks.user(user_id), checks.memory_id(memory_id), checks.timestamp("as_of", as_of)
        with self.db.reading() as conn:
            return memory_sql.find_memory(conn, user, key, as_of=moment)

    def search_user_memories(
        self,
        query: str,
        user_id: str,
        *,
        limit: int = 10,
        agent_id: str | None = None,
        topics: Sequence[str] | None = None,
        since: datetime | str | date | None = None,
        until: datetime | str | date | None = None,
        as_of: datetime | str | date | None = None,
        min_score: float | None = None,
    ) -> list[Memory]:
        """The user's memories most relevant to ``query``, best first (hybrid search: README "Search").

        Filters: ``agent_id``, any of ``topics``, last changed in ``[since, until)``, ``as_of`` (the memories
        as they were then; times as in `get_user_memories`); ``min_score`` drops weaker matches."""
        request = search_request(query, user_id, limit, agent_id, topics, since, until, as_of, min_score)
        return self._retrieval.find_memories(self.db, request)

    def search_user_memories_with_scores(
        self,
        query: str,
        user_id: str,
        *,
        limit: int = 10,
        agent_id: str | None = None,
        topics: Sequence[str] | None = None,
        since: datetime | str | date | None = None,
        until: datetime | str | date | None = None,
        as_of: datetime | str | date | None = None,
        min_score: float | None = None,
    ) -> list[SearchHit]:
        """`search_user_memories`, each memory a `SearchHit`: its fused ``score`` and the ``signals`` in it."""
        request = search_request(query, user_id, limit, agent_id, topics, since, until, as_of, min_score)
        return self._retrieval.find_hits(self.db, request)

    def get_memory_history(self, memory_id: str, user_id: str) -> list[MemoryEvent]:
        """Every add, update and delete of one memory, oldest first, with the reason and model."""
        user, key = checks.user(user_id), checks.memory_id(memory_id)
        with self.db.reading() as conn:
            return memory_sql.list_events(conn, user, key)

    def get_user_events(self, user_id: str) -> list[MemoryEvent]:
        """Every change to any of the user's memories, oldest first."""
        user = checks.user(user_id)
        with self.db.reading() as conn:
            return memory_sql.list_events(conn, user)

    # -- async twins: the same signatures, run in a worker thread (tests/test_async_parity.py) ------

    aadd_user_memory = flow.threaded(add_user_memory)
    areplace_user_memory = flow.threaded(replace_user_memory)
    adelete_user_memory = flow.threaded(delete_user_memory)
    aclear_user_memories = flow.threaded(clear_user_memories)
    aerase_user = flow.threaded(erase_user)
    areembed_memories = flow.threaded(reembed_memories)
    aget_user_memories = flow.threaded(get_user_memories)
    aget_user_memory = flow.threaded(get_user_memory)
    asearch_user_memories = flow.threaded(search_user_memories)
    asearch_user_memories_with_scores = flow.threaded(search_user_memories_with_scores)
    aget_memory_history = flow.threaded(get_memory_history)
    aget_user_events = flow.threaded(get_user_events)

    def __repr__(self) -> str:
        return f"MemoryManager(model={str(self.model) if self.model else None!r}, db={self._db!r})"
