"""`MemoryManager`'s direct edits (add, replace, delete, clear, erase) and ``optimize_memories``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast, overload

from .. import checks, clock, flow
from ..db import memories as memory_sql
from ..db.changes import ChangeSet, Provenance
from ..errors import ConfigError
from ..llm.typed import TypedReply
from ..records import Memory, UserMemory
from ..search.retrieval import NO_VECTORS
from .consolidation import (
    CONSOLIDATION_PROMPT_VERSION,
    Consolidation,
    apply_merges,
    as_user_memory,
    consolidation_request,
    projected,
)
from .consolidation import MAX_CANDIDATES as MAX_MERGE_CANDIDATES
from .core import ManagerCore
from .pipeline import add_once, current_memory, replacement_vectors, upsert

__all__ = ["MemoryEdits"]


class MemoryEdits(ManagerCore):
    """Changes made as the caller says, with no LLM call, and the one-call consolidation."""

    @overload
    def add_user_memory(self, memory: UserMemory, user_id: str) -> str: ...

    @overload
    def add_user_memory(
        self,
        memory: str,
        user_id: str,
        *,
        topics: Sequence[str] | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        input: str | None = None,
    ) -> Memory: ...

    def add_user_memory(
        self,
        memory: str | UserMemory,
        user_id: str,
        *,
        topics: Sequence[str] | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        input: str | None = None,
    ) -> Memory | str:
        """Store a memory as given, with no LLM call. ``input``: the text it came from (searched too).

        Agno's form, ``add_user_memory(memory=UserMemory(memory="...", topics=[...]), user_id="ana")``, returns
        the memory's id and fills in the record's ``memory_id`` and ``user_id``; a ``memory_id`` set on the
        record is used as the id (an existing one of this user gets a new version).
        A text the user already has as a current memory (ignoring case and spacing) is not stored twice:
        that memory is returned, on every store and however many processes add it at once.
        """
        if isinstance(memory, UserMemory):
            return self._upsert(memory, user_id, memory.memory_id)
        user, text, names = checks.user(user_id), checks.memory_text(memory), checks.topics(topics)
        agent, session = checks.who(agent_id, session_id)
        origin = Provenance(user, "api", clock.now(), agent, session, input=checks.source_input(input))
        return add_once(self.db, self._retrieval, origin, text, names)

    @overload
    def replace_user_memory(self, memory_id: str, memory: UserMemory, user_id: str) -> str: ...

    @overload
    def replace_user_memory(
        self, memory_id: str, memory: str, user_id: str, *, topics: Sequence[str] | None = None
    ) -> Memory: ...

    def replace_user_memory(
        self,
        memory_id: str,
        memory: str | UserMemory,
        user_id: str,
        *,
        topics: Sequence[str] | None = None,
    ) -> Memory | str:
        """Replace a memory's text (a new version; the old one stays in its history).

        Agno's form, with a `UserMemory`, returns the id and, as in Agno, stores the memory under that id if
        the user has none by it; with a text, an unknown id raises `ConfigError`.
        """
        if isinstance(memory, UserMemory):
            return self._upsert(memory, user_id, memory_id)
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

    def _upsert(self, record: UserMemory, user_id: str, memory_id: str | None) -> str:
        user = checks.user(user_id)  # required, as everywhere: the record's own user_id is overwritten, as in Agno
        text, names = checks.memory_text(record.memory), checks.topics(record.topics)
        agent = checks.optional_text("agent_id", record.agent_id)
        origin = Provenance(user, "api", clock.now(), agent, input=checks.source_input(record.input))
        if memory_id is None:
            stored = add_once(self.db, self._retrieval, origin, text, names)
        else:
            stored = upsert(self.db, self._retrieval, origin, checks.memory_id(memory_id), text, names)
        # As Agno does, the record given is filled in with what it became.
        record.memory_id, record.user_id = stored.memory_id, user
        return stored.memory_id

    def delete_user_memory(self, memory_id: str, user_id: str) -> bool:
        """Forget a memory now; its versions and events stay until `erase_user`.

        As in Agno, an id the user has no current memory by is nothing to do: returns False, writes nothing.
        """
        user, key = checks.user(user_id), checks.memory_id(memory_id)
        origin = Provenance(user, "api", clock.now())
        changes = ChangeSet(origin)
        with self._retrieval.transaction(self.db, changes, NO_VECTORS) as conn:
            memory = memory_sql.find_memory(conn, user, key)
            if memory is None:
                return False
            changes.delete(memory)
            changes.write(conn)
        return True

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

    def clear(self) -> int:
        """Agno's ``clear()``: forget the current memories of every user in the store (history kept, one
        transaction per user). Returns how many. To remove one user's data for good, use `erase_user`."""
        with self.db.reading() as conn:
            users = memory_sql.users_with_memories(conn)
        return sum(self.clear_user_memories(user) for user in users)

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

    def _optimize_memories(
        self, user_id: str, strategy: str | Any = "summarize", apply: bool = True
    ) -> flow.Flow[list[UserMemory]]:
        """Merge the user's overlapping memories into fewer, with one LLM call; returns the memories after.

        The model names groups of memories (by alias: an invented one cannot validate) and the text each
        group becomes; a memory in no group stays as it is. Applied (``apply=True``), all merges commit in one
        transaction with the usage row: each group's first memory gets the merged text as a new version, the
        others are deleted with the reason "merged into <id>", so nothing is erased and every step is in the
        history. ``apply=False`` writes nothing but the usage row and returns the memories as they would be.
        Unlike Agno's "summarize" (which replaces them all with one summary), facts are never dropped.
        ``strategy``: ``"summarize"`` (Agno's only one, as a string or its enum).
        """
        user = checks.user(user_id)
        name = getattr(strategy, "value", strategy)
        if name != "summarize":
            raise ConfigError(f"strategy must be 'summarize' (the one strategy memlayer has), got {strategy!r}")
        if not isinstance(apply, bool):
            raise ConfigError(f"apply must be True or False, got {apply!r}")
        self._require_model()
        memories: list[Memory] = yield flow.Blocking(self._listed, user, MAX_MERGE_CANDIDATES)
        if len(memories) < 2:
            return [as_user_memory(m) for m in memories]
        messages, response_model, aliases = consolidation_request(memories)
        reply = yield from self._typed(messages, response_model, user, "optimize")
        if not apply:
            yield flow.Blocking(self._log_usage, reply, user, CONSOLIDATION_PROMPT_VERSION)
            return projected(memories, cast(Consolidation, reply.value), aliases)
        yield flow.Blocking(self._apply_merges, reply, aliases, user)
        after: list[Memory] = yield flow.Blocking(self._listed, user, None)
        return [as_user_memory(m) for m in after]

    optimize_memories = flow.sync_driver(_optimize_memories)
    aoptimize_memories = flow.async_driver(_optimize_memories)

    def _listed(self, user: str, limit: int | None) -> list[Memory]:
        with self.db.reading() as conn:
            return memory_sql.list_memories(conn, user, limit=limit, order="stored")

    def _apply_merges(self, reply: TypedReply, aliases: dict[str, Memory], user: str) -> None:
        usage = reply.usage
        origin = Provenance(user, "optimize", clock.now(), call_id=usage.call_id, model=usage.model)
        changes = ChangeSet(origin)
        merges = cast(Consolidation, reply.value)
        texts = [merge.memory for merge in merges.merges]
        vectors = self._retrieval.embed(texts, [None] * len(texts))  # one batched call, outside the lock
        with self._retrieval.transaction(self.db, changes, vectors) as conn:
            apply_merges(conn, changes, merges, aliases)
            changes.write(conn)
            memory_sql.insert_llm_call(conn, usage, origin, prompt_version=CONSOLIDATION_PROMPT_VERSION)

    # -- async twins: the same signatures, run in a worker thread (tests/test_async_parity.py) ------

    aadd_user_memory = flow.threaded(add_user_memory)
    areplace_user_memory = flow.threaded(replace_user_memory)
    adelete_user_memory = flow.threaded(delete_user_memory)
    aclear_user_memories = flow.threaded(clear_user_memories)
    aerase_user = flow.threaded(erase_user)
    areembed_memories = flow.threaded(reembed_memories)
    aclear = flow.threaded(clear)
