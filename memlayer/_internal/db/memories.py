"""SQL over the memory tables: versioned reads and writes, events, LLM usage and erasure.

Every function takes an open connection (inside `DuckDb.transaction` for writes) and a ``user_id``,
and every query filters on it: no function here can reach another user's rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from .. import clock
from ..records import LLMUsage, Memory, MemoryEvent
from .changes import Provenance, memory_key, naive
from .revisions import drop_revision, lock_user
from .store import Connection

__all__ = [
    "current_fact_holders",
    "ended_facts_in",
    "erase_user",
    "find_by_text",
    "find_memory",
    "has_current_memory",
    "held_during",
    "holding_at",
    "insert_llm_call",
    "list_events",
    "list_memories",
    "memory_owner",
    "stored_keys",
    "users_with_memories",
]

_COLUMNS = (
    "memory_id, memory, topics, user_id, agent_id, session_id, input, version, created_at, recorded_from,"
    " recorded_until, subject, attribute, held_from, held_until, learned_at"
)
_EVENT_COLUMNS = (
    "event_id, memory_id, user_id, operation, old_memory, new_memory, old_topics, new_topics, "
    "reason, source, agent_id, session_id, call_id, model, created_at"
)


def _memory(row: tuple[Any, ...]) -> Memory:
    memory_id, text, topics, user_id, agent_id, session_id, source, version, created, recorded_from, recorded_until = (
        row[:11]
    )
    subject, attribute, held_from, held_until, learned_at = row[11:]
    return Memory(
        memory_id=memory_id,
        memory=text,
        topics=list(topics),
        user_id=user_id,
        agent_id=agent_id,
        session_id=session_id,
        input=source,
        version=version,
        created_at=clock.aware(created),
        updated_at=clock.aware(recorded_from),
        recorded_until=clock.aware(recorded_until),
        subject=subject or "user",
        attribute=attribute or "other",
        held_from=clock.aware(held_from),
        held_until=clock.aware(held_until),
        learned_at=clock.aware(learned_at),
    )


def _validity(as_of: datetime | None) -> tuple[str, list[Any]]:
    if as_of is None:
        return "recorded_until IS NULL", []
    ts = naive(as_of)
    return "recorded_from <= ? AND (recorded_until IS NULL OR recorded_until > ?)", [ts, ts]


def _holding(as_of: datetime | None, valid_at: datetime | None) -> tuple[str, list[Any]]:
    """The versions that hold in the user's life at ``valid_at`` (default: now), as memlayer knew at ``as_of``.

    Record time picks what memlayer held (``recorded_from`` / ``recorded_until``); a version closed because
    its value stopped holding (it has a ``held_until``: the old home after a move) stays known as the past.
    Event time then picks what held: from ``held_from`` (NULL: since before anything said) until
    ``held_until`` (NULL: still). Read now, a fact that starts later is shown (it was said), one that
    ended is not.
    """
    moment = naive(valid_at) if valid_at is not None else naive(clock.now())
    if as_of is None and valid_at is None:
        # Now: every current version whose fact has not ended; one that starts later (a job from next
        # month) is something the user said, and shown.
        return "recorded_until IS NULL AND (held_until IS NULL OR held_until > ?)", [moment]
    return _known(as_of, ("(held_from IS NULL OR held_from <= ?)", moment), ("held_until > ?", moment))


def held_during(as_of: datetime | None, start: datetime, end: datetime) -> tuple[str, list[Any]]:
    """The versions whose fact held at some time in ``[start, end)``, as memlayer knew at ``as_of``
    (default: now); a fact with no ``held_from`` held since before anything said, as in `_holding`."""
    return _known(as_of, ("(held_from IS NULL OR held_from < ?)", naive(end)), ("held_until > ?", naive(start)))


def holding_at(as_of: datetime | None, valid_at: datetime) -> tuple[str, list[Any]]:
    """The versions that held in the user's life at ``valid_at``, as memlayer knew at ``as_of`` (`_holding`)."""
    return _holding(as_of, valid_at)


def ended_facts_in(conn: Connection, user_id: str, window: tuple[datetime, datetime]) -> bool:
    """Whether a fact of the user that has ended (a closed version with a ``held_until``) held during
    ``window``: what a search for a time must read beyond the current memories."""
    where, params = held_during(None, *window)
    row = conn.execute(
        f"SELECT 1 FROM memories WHERE user_id = ? AND recorded_until IS NOT NULL AND {where} LIMIT 1",
        [user_id, *params],
    ).fetchone()
    return row is not None


def _known(as_of: datetime | None, began: tuple[str, Any], ended: tuple[str, Any]) -> tuple[str, list[Any]]:
    """Event time over the versions memlayer knew of at ``as_of`` (default: now): ``began``, a condition on
    ``held_from``, and ``ended``, on a ``held_until`` that is set (NULL: the fact still holds)."""
    start, end = began[0], f"(held_until IS NULL OR {ended[0]}"
    if as_of is None:
        return f"(recorded_until IS NULL OR held_until IS NOT NULL) AND {start} AND {end})", [began[1], ended[1]]
    # At ``as_of`` a version closed later was still open: the end it got when it was closed was not known.
    ts = naive(as_of)
    record = "recorded_from <= ? AND (recorded_until IS NULL OR recorded_until > ? OR held_until IS NOT NULL)"
    return f"{record} AND {start} AND {end} OR recorded_until > ?)", [ts, ts, began[1], ended[1], ts]


def list_memories(
    conn: Connection,
    user_id: str,
    *,
    topics: list[str] | None = None,
    agent_id: str | None = None,
    limit: int | None = None,
    as_of: datetime | None = None,
    valid_at: datetime | None = None,
    order: MemoryOrder = "newest",
) -> list[Memory]:
    """The user's memories that hold now (or at ``valid_at``), as memlayer knows them now (or knew at
    ``as_of``): most recently changed first (``"newest"``), least recently changed first (``"oldest"``),
    or in the order they were first stored (``"stored"``). Without ``valid_at``, ``as_of`` reads the
    versions that were current then, as before event time existed."""
    if valid_at is None and as_of is not None:
        where, params = _validity(as_of)
    else:
        where, params = _holding(as_of, valid_at)
    sql = f"SELECT {_COLUMNS} FROM memories WHERE user_id = ? AND {where}"
    params = [user_id, *params]
    if topics:
        sql += " AND topics && ?::VARCHAR[]"  # list overlap in DuckDB, array overlap in Postgres
        params.append(list(topics))
    if agent_id is not None:
        sql += " AND agent_id = ?"
        params.append(agent_id)
    sql += _ORDER[order]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_memory(row) for row in conn.execute(sql, params).fetchall()]


MemoryOrder = Literal["newest", "oldest", "stored"]
_ORDER = {
    "newest": " ORDER BY recorded_from DESC, memory",
    "oldest": " ORDER BY recorded_from, memory",
    "stored": " ORDER BY created_at, memory, memory_id",  # one change set's adds share a time: by text
}


def memory_owner(conn: Connection, memory_id: str) -> str | None:
    """Whose memory ``memory_id`` is (any version, current or not), or None if the id was never used.

    The one read across users: to refuse a chosen id that is taken, never to return another user's rows."""
    row = conn.execute("SELECT user_id FROM memories WHERE memory_id = ? LIMIT 1", [memory_id]).fetchone()
    return None if row is None else str(row[0])


def users_with_memories(conn: Connection) -> list[str]:
    """Every user with a current memory (for `MemoryManager.clear`, Agno's clear-everything)."""
    rows = conn.execute(
        "SELECT DISTINCT user_id FROM memories WHERE recorded_until IS NULL ORDER BY user_id"
    ).fetchall()
    return [str(row[0]) for row in rows]


def find_memory(conn: Connection, user_id: str, memory_id: str, *, as_of: datetime | None = None) -> Memory | None:
    """One memory of this user as it is now (or was at ``as_of``); None if it is not theirs or gone."""
    where, params = _validity(as_of)
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE user_id = ? AND memory_id = ? AND {where}",
        [user_id, memory_id, *params],
    ).fetchone()
    return None if row is None else _memory(row)


def has_current_memory(conn: Connection, user_id: str) -> bool:
    """Whether the user has any current memory."""
    row = conn.execute(
        "SELECT 1 FROM memories WHERE user_id = ? AND recorded_until IS NULL LIMIT 1", [user_id]
    ).fetchone()
    return row is not None


def find_by_text(conn: Connection, user_id: str, text: str) -> Memory | None:
    """The user's current memory whose text is ``text`` (compared by `memory_key`: case and spacing)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE user_id = ? AND memory_key = ? AND recorded_until IS NULL",
        [user_id, memory_key(text)],
    ).fetchone()
    return None if row is None else _memory(row)


def current_fact_holders(conn: Connection, user_id: str) -> dict[str, Memory]:
    """The user's current memories of single-valued facts, by fact key ("user:home" -> "Lives in Lisbon")."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}, fact_key FROM memories"
        " WHERE user_id = ? AND recorded_until IS NULL AND fact_key IS NOT NULL",
        [user_id],
    ).fetchall()
    return {row[-1]: _memory(row[:-1]) for row in rows}


def stored_keys(conn: Connection, user_id: str, texts: list[str]) -> set[str]:
    """Which of ``texts`` the user already has as a current memory (compared by `memory_key`)."""
    keys = sorted({memory_key(t) for t in texts})
    if not keys:
        return set()
    placeholders = ", ".join("?" * len(keys))
    rows = conn.execute(
        f"SELECT memory_key FROM memories"
        f" WHERE user_id = ? AND recorded_until IS NULL AND memory_key IN ({placeholders})",
        [user_id, *keys],
    ).fetchall()
    return {row[0] for row in rows}


def insert_llm_call(
    conn: Connection,
    usage: LLMUsage,
    origin: Provenance,
    *,
    prompt_version: str | None,
    error: str | None = None,
) -> None:
    conn.execute(
        """
        INSERT INTO llm_calls (call_id, purpose, model, prompt_version, user_id, agent_id, session_id,
            input_tokens, output_tokens, cost_usd, latency_ms, attempts, status, error, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            usage.call_id,
            usage.purpose,
            usage.model,
            prompt_version,
            origin.user_id,
            origin.agent_id,
            origin.session_id,
            usage.input_tokens,
            usage.output_tokens,
            usage.cost_usd,
            usage.latency_ms,
            usage.attempts,
            "error" if error else "ok",
            error,
            naive(origin.now),
        ],
    )


def list_events(conn: Connection, user_id: str, memory_id: str | None = None) -> list[MemoryEvent]:
    """The user's events, oldest first; only one memory's when ``memory_id`` is given."""
    sql = f"SELECT {_EVENT_COLUMNS} FROM memory_events WHERE user_id = ?"
    params: list[Any] = [user_id]
    if memory_id is not None:
        sql += " AND memory_id = ?"
        params.append(memory_id)
    rows = conn.execute(sql + " ORDER BY seq", params).fetchall()
    names = [c.strip() for c in _EVENT_COLUMNS.split(",")]
    events = []
    for row in rows:
        fields = dict(zip(names, row, strict=True))
        fields["created_at"] = clock.aware(fields["created_at"])
        events.append(MemoryEvent.model_validate(fields))
    return events


def erase_user(conn: Connection, user_id: str) -> dict[str, int]:
    """Delete every row held about the user, history and usage included. Returns rows per table.

    The user's revision row goes too (`user_revision` then returns 0, which no write issues), so a
    process holding their search index notices; it is bookkeeping, not data, and is not counted.
    """
    lock_user(conn, user_id)
    drop_revision(conn, user_id)
    counts = {}
    tables = ("memories", "memory_events", "llm_calls", "messages", "runs", "sessions", "memory_embeddings")
    for table in (*tables, "memory_jobs"):  # a queued job holds the messages of its turn
        deleted = conn.execute(f"DELETE FROM {table} WHERE user_id = ? RETURNING 1", [user_id]).fetchall()
        counts[table] = len(deleted)
    return counts
