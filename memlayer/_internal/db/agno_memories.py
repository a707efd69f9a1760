"""Agno's memory methods on a store (``db.get_user_memories``, ``db.upsert_user_memory``, ``db.clear_memories``).

Agno's code calls them on its db object; `DuckDb` and `PostgresDb` have them, with memlayer's rules: every
call names its user (there is no "all users" read), a write is a versioned change with its event, and an
id that is another user's is refused. A write here makes no embedding (it has no embedder: that belongs
to a `MemoryManager`), so a memory written here is found by keywords and recency until
``MemoryManager.reembed_memories`` runs; the loaded search indexes of the user are dropped after each
write, so the next search reads the change. The manager's methods are the road; these are for code
written against Agno's db.
"""

from __future__ import annotations

from typing import Any

from .. import checks, clock
from ..errors import ConfigError
from ..records import Memory, UserMemory
from . import memories as memory_sql
from .changes import ChangeSet, Provenance
from .store import Store

__all__ = ["AgnoMemoryMethods"]


class AgnoMemoryMethods(Store):
    """Agno's db-level memory methods, shared by `DuckDb` and `PostgresDb`."""

    def get_user_memories(
        self,
        user_id: str,
        *,
        agent_id: str | None = None,
        topics: list[str] | None = None,
        limit: int | None = None,
    ) -> list[Memory]:
        """The user's current memories, in the order stored."""
        user, names = checks.user(user_id), checks.topic_filter(topics)
        agent, count = checks.optional_text("agent_id", agent_id), checks.limit(limit)
        with self.reading() as conn:
            return memory_sql.list_memories(
                conn, user, topics=names or None, agent_id=agent, limit=count, order="stored"
            )

    def get_user_memory(self, memory_id: str, user_id: str) -> Memory | None:
        """One current memory of the user, or None (also when the id is another user's)."""
        with self.reading() as conn:
            return memory_sql.find_memory(conn, checks.user(user_id), checks.memory_id(memory_id))

    def get_all_memory_topics(self, user_id: str) -> list[str]:
        """The topics of the user's current memories, sorted, each once."""
        return sorted({topic for memory in self.get_user_memories(user_id) for topic in memory.topics})

    def upsert_user_memory(self, memory: UserMemory) -> Memory:
        """Store ``memory`` for ``memory.user_id``: a new version of its ``memory_id`` if the user has it, else a
        new memory (under that id, or a new one). A text the user already holds is not stored twice."""
        if not isinstance(memory, UserMemory):
            raise ConfigError(f"upsert_user_memory takes a UserMemory, got {memory!r}")
        user, text, names = checks.user(memory.user_id), checks.memory_text(memory.memory), checks.topics(memory.topics)
        key = None if memory.memory_id is None else checks.memory_id(memory.memory_id)
        agent = checks.optional_text("agent_id", memory.agent_id)
        changes = ChangeSet(Provenance(user, "api", clock.now(), agent, input=checks.source_input(memory.input)))
        with self.transaction() as conn:
            old = None if key is None else memory_sql.find_memory(conn, user, key)
            if key is not None and old is None and memory_sql.memory_owner(conn, key) is not None:
                raise ConfigError(f"memory_id {key!r} is not free; give another id, or none to have one made")
            if old is not None and (old.memory, old.topics) == (text, names):
                return old
            new = changes.add(text, names, memory_id=key) if old is None else changes.update(old, text, names)
            changes.write(conn)
            stored = (memory_sql.find_by_text(conn, user, text) or new) if changes.skipped else new
        self._forget_indexes(user)
        memory.memory_id, memory.user_id = stored.memory_id, user
        return stored

    def delete_user_memory(self, memory_id: str, user_id: str) -> bool:
        """Forget one current memory of the user (its history stays); False when there is none by that id."""
        return self.delete_user_memories([memory_id], user_id) == 1

    def delete_user_memories(self, memory_ids: list[str], user_id: str) -> int:
        """Forget these current memories of the user in one transaction; returns how many there were."""
        if isinstance(memory_ids, str) or not isinstance(memory_ids, list | tuple):
            raise ConfigError(f"memory_ids must be a list of ids, got {memory_ids!r}")
        user, keys = checks.user(user_id), [checks.memory_id(key) for key in memory_ids]
        changes = ChangeSet(Provenance(user, "api", clock.now()))
        with self.transaction() as conn:
            found = [m for m in (memory_sql.find_memory(conn, user, key) for key in dict.fromkeys(keys)) if m]
            for memory in found:
                changes.delete(memory)
            changes.write(conn)
        self._forget_indexes(user)
        return len(found)

    def clear_memories(self) -> int:
        """Forget the current memories of every user (histories stay; one transaction per user)."""
        with self.reading() as conn:
            users = memory_sql.users_with_memories(conn)
        cleared = 0
        for user in users:
            changes = ChangeSet(Provenance(user, "api", clock.now()))
            with self.transaction() as conn:
                current = memory_sql.list_memories(conn, user)
                for memory in current:
                    changes.delete(memory, "cleared")
                changes.write(conn)
            self._forget_indexes(user)
            cleared += len(current)
        return cleared

    def _forget_indexes(self, user: str) -> None:
        # The loaded search indexes are attached to this store by the search room, which this one is
        # below: each is told to drop the user, and reloads from the tables on its next search.
        for item in self.attachments():
            forget: Any = getattr(item, "forget", None)
            if callable(forget):
                forget(user)
