"""`MemoryManager`'s reads: current and past memories, search (hybrid, or Agno's methods), history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal, cast

from .. import checks, flow
from ..db import memories as memory_sql
from ..db.memories import MemoryOrder
from ..errors import ConfigError
from ..records import Memory, MemoryEvent, SearchHit
from ..search.retrieval import SearchRequest, search_request
from .core import ManagerCore
from .selection import MAX_CANDIDATES, SELECTION_PROMPT_VERSION, Selection, chosen, selection_request

__all__ = ["MemoryReads", "RetrievalMethod"]

RetrievalMethod = Literal["hybrid", "semantic", "last_n", "first_n", "agentic"]


class MemoryReads(ManagerCore):
    """Reads of a user's memories; none of them changes one."""

    def get_user_memories(
        self,
        user_id: str,
        *,
        topics: Sequence[str] | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        as_of: datetime | str | date | None = None,
        valid_at: datetime | str | date | None = None,
        order: MemoryOrder = "stored",
    ) -> list[Memory]:
        """The user's memories that hold now, in the order they were first stored (as Agno returns them);
        ``order="newest"``: most recently changed first, ``"oldest"``: least.

        Two clocks: ``valid_at`` reads what held in the user's life then (event time: "where did they
        live in 2018?"); ``as_of`` what memlayer held then (record time: the store as it was). Both
        together: what memlayer knew at ``as_of`` about ``valid_at``. Each a datetime (naive means
        UTC), a date (its midnight, UTC) or an ISO 8601 string.
        """
        user, names = checks.user(user_id), checks.topic_filter(topics)
        agent, count = checks.optional_text("agent_id", agent_id), checks.limit(limit)
        moment, held = checks.timestamp("as_of", as_of), checks.timestamp("valid_at", valid_at)
        if order not in ("stored", "newest", "oldest"):
            raise ConfigError(f"order must be 'stored', 'newest' or 'oldest', got {order!r}")
        self._await_jobs(user)  # read-your-writes: this process's queued extractions for the user land first
        with self.db.reading() as conn:
            return memory_sql.list_memories(
                conn, user, topics=names or None, agent_id=agent, limit=count, as_of=moment, valid_at=held, order=order
            )

    def get_user_memory(
        self, memory_id: str, user_id: str, *, as_of: datetime | str | date | None = None
    ) -> Memory | None:
        """One memory of this user, or None when it does not exist, is deleted, or is someone else's."""
        user, key, moment = checks.user(user_id), checks.memory_id(memory_id), checks.timestamp("as_of", as_of)
        self._await_jobs(user)
        with self.db.reading() as conn:
            return memory_sql.find_memory(conn, user, key, as_of=moment)

    def _search_user_memories(
        self,
        query: str | None = None,
        limit: int | str | None = None,
        retrieval_method: RetrievalMethod | None = None,
        user_id: str | None = None,
        *,
        agent_id: str | None = None,
        topics: Sequence[str] | None = None,
        since: datetime | str | date | None = None,
        until: datetime | str | date | None = None,
        as_of: datetime | str | date | None = None,
        min_score: float | None = None,
        valid_at: datetime | str | date | None = None,
        held_between: tuple[datetime | str | date, datetime | str | date] | None = None,
    ) -> flow.Flow[list[Memory]]:
        """The user's memories that match ``query``; the arguments in Agno's order, ``user_id`` required.

        ``search_user_memories("tea", limit=5, user_id="ana")``; memlayer's earlier positional form,
        ``search_user_memories("tea", "ana")``, still works (a string in ``limit``'s place is the user).

        ``retrieval_method``: ``"hybrid"`` (or ``"semantic"``; the default when there is a query; up to 10
        by default): the most relevant first, by vector, keyword and recency signals fused (README
        "Search"), with the filters ``agent_id``, ``topics``, last changed in ``[since, until)``, ``as_of``
        and ``min_score``; by event time, ``valid_at`` (what held then) and ``held_between=(start, end)`` (what
        held at some time in it). A query that names a time ("in July 2022", "last summer", "before I
        moved") ranks the memories of that time first (`memlayer._internal.search.time`).
        Agno's methods: ``"last_n"`` (the default without a query): the ``limit`` most recently changed,
        oldest of them first; ``"first_n"``: the ``limit`` least recently changed; ``"agentic"``: one LLM call
        picks the related memories, most related first. It chooses among aliases (``m1``, ``m2``, ...) that
        the reply's schema admits, so an invented id cannot validate, from at most 100 candidates (the
        hybrid search's best when the user has more), so the prompt stays bounded; its usage is logged.
        """
        if isinstance(limit, str):
            # memlayer's earlier form, (query, user_id): a string is never a limit, so it is the user.
            if user_id is not None:
                raise ConfigError(f"limit must be a number, got {limit!r} (the arguments: query, limit, user_id=...)")
            limit, user_id = None, limit
        method = retrieval_method or ("hybrid" if query is not None else "last_n")
        if method == "semantic":  # the name Agno's tests and docs use for search by meaning
            method = "hybrid"
        user = checks.user(user_id)
        yield flow.Blocking(self._await_jobs, user)
        if method == "hybrid" or method == "agentic":
            wanted = (10 if limit is None else limit) if method == "hybrid" else MAX_CANDIDATES
            request = search_request(
                query, user, wanted, agent_id, topics, since, until, as_of, min_score,
                valid_at=valid_at, held_between=held_between,
            )  # fmt: skip
            if method == "hybrid":
                found: list[Memory] = yield flow.Blocking(self._retrieval.find_memories, self.db, request)
                return found
            return (yield from self._select(request, checks.limit(limit)))
        if method not in ("last_n", "first_n"):
            raise ConfigError(
                "retrieval_method must be 'hybrid' ('semantic'), 'last_n', 'first_n' or 'agentic', "
                f"got {retrieval_method!r}"
            )
        if held_between is not None:
            raise ConfigError("held_between filters a search: give a query, or use retrieval_method='hybrid'")
        newest = method == "last_n"
        listed: list[Memory] = yield flow.Blocking(
            self.get_user_memories, user, topics=topics, agent_id=agent_id, limit=limit, as_of=as_of,
            valid_at=valid_at, order="newest" if newest else "oldest",
        )  # fmt: skip
        return listed[::-1] if newest else listed

    search_user_memories = flow.sync_driver(_search_user_memories)
    asearch_user_memories = flow.async_driver(_search_user_memories)

    def _select(self, request: SearchRequest, limit: int | None) -> flow.Flow[list[Memory]]:
        """Agno's agentic search: one typed call picks among the candidates by alias."""
        self._require_model()
        candidates: list[Memory] = yield flow.Blocking(self._retrieval.find_memories, self.db, request)
        if not candidates:
            return []
        # Shown in the order stored, as Agno shows them; the search only chose which (at most 100).
        candidates.sort(key=lambda m: (m.created_at, m.memory_id))
        messages, response_model, aliases = selection_request(request.query, candidates, limit)
        reply = yield from self._typed(messages, response_model, request.user_id, "search")
        yield flow.Blocking(self._log_usage, reply, request.user_id, SELECTION_PROMPT_VERSION)
        return chosen(cast(Selection, reply.value), aliases, limit)

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
        valid_at: datetime | str | date | None = None,
        held_between: tuple[datetime | str | date, datetime | str | date] | None = None,
    ) -> list[SearchHit]:
        """`search_user_memories`, each memory a `SearchHit`: its fused ``score`` and the ``signals`` in it."""
        request = search_request(
            query, user_id, limit, agent_id, topics, since, until, as_of, min_score,
            valid_at=valid_at, held_between=held_between,
        )  # fmt: skip
        self._await_jobs(request.user_id)
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

    aget_user_memories = flow.threaded(get_user_memories)
    aget_user_memory = flow.threaded(get_user_memory)
    asearch_user_memories_with_scores = flow.threaded(search_user_memories_with_scores)
    aget_memory_history = flow.threaded(get_memory_history)
    aget_user_events = flow.threaded(get_user_events)
