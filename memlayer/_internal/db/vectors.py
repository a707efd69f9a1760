"""SQL over ``memory_embeddings`` and ``embedders``: write vectors, check the embedder, load a user's rows.

A vector is stored as little-endian float32 bytes under the name of the embedder that made it. A
database holds one embedder's vectors at a time: `check_embedder` refuses another one, and says how
to re-embed, instead of letting two vector spaces be compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import clock
from ..errors import ConfigError
from .changes import chunks, naive
from .memories import held_during, holding_at
from .store import Connection, dialect

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "LoadedRows",
    "check_embedder",
    "drop_other_embedders",
    "load_user_rows",
    "missing_vectors",
    "stored_embedders",
    "write_vectors",
]


def stored_embedders(conn: Connection) -> dict[str, int]:
    return {name: dim for name, dim in conn.execute("SELECT model, dim FROM embedders ORDER BY model").fetchall()}


def check_embedder(conn: Connection, name: str, dim: int | None = None) -> None:
    """Refuse vectors of ``name`` where another embedder's are stored; register it when ``dim`` is given."""
    stored = stored_embedders(conn)
    others = {n: d for n, d in stored.items() if n != name}
    if others:
        held = ", ".join(f"{n!r} ({d}-d)" for n, d in others.items())
        raise ConfigError(
            f"this database's memories are embedded with {held}, not {name!r}: vectors of two models cannot "
            f"be compared. Call manager.reembed_memories() to re-embed every memory with {name!r} (the old "
            f"vectors are dropped), or pass that embedder to MemoryManager(embedder=...)"
        )
    if dim is None:
        return
    if name in stored and stored[name] != dim:
        raise ConfigError(
            f"embedder {name!r} returned {dim}-d vectors, but this database holds {stored[name]}-d ones from it; "
            "call manager.reembed_memories() after changing its dimensions"
        )
    if name not in stored:
        # ON CONFLICT: two processes may register the same embedder at once (Postgres); one row stays.
        conn.execute(
            "INSERT INTO embedders VALUES (?, ?, ?) ON CONFLICT (model) DO NOTHING", [name, dim, naive(clock.now())]
        )


def write_vectors(
    conn: Connection,
    user_id: str,
    model: str,
    keys: Sequence[tuple[str, int]],
    vectors: npt.NDArray[np.float32],
    input_vectors: Sequence[npt.NDArray[np.float32] | None] | None = None,
) -> None:
    """Store one vector per (memory_id, version), and its input's when given, inside the caller's transaction."""
    if not keys:
        return
    check_embedder(conn, model, int(vectors.shape[1]))
    inputs = list(input_vectors) if input_vectors is not None else [None] * len(keys)
    keyed = list(zip(keys, vectors, inputs, strict=True))
    for chunk in chunks(keyed, 5):
        rows: list[Any] = []
        for (memory_id, version), vector, source in chunk:
            blob = None if source is None else source.astype("<f4").tobytes()
            rows += [memory_id, version, user_id, model, vector.astype("<f4").tobytes(), blob]
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
        conn.execute(
            "INSERT INTO memory_embeddings (memory_id, version, user_id, model, embedding, input_embedding)"
            f" VALUES {values}",
            rows,
        )


def drop_other_embedders(conn: Connection, keep: str) -> int:
    """Delete every vector not made by ``keep``; returns how many."""
    deleted = conn.execute("DELETE FROM memory_embeddings WHERE model <> ? RETURNING 1", [keep]).fetchall()
    conn.execute("DELETE FROM embedders WHERE model <> ?", [keep])
    return len(deleted)


def missing_vectors(conn: Connection, model: str, limit: int) -> list[tuple[str, int, str, str, str | None]]:
    """Current memories with no vector from ``model``: (memory_id, version, user_id, text, input)."""
    rows = conn.execute(
        """
        SELECT m.memory_id, m.version, m.user_id, m.memory, m.input FROM memories m
        WHERE m.recorded_until IS NULL AND NOT EXISTS (
            SELECT 1 FROM memory_embeddings e
            WHERE e.model = ? AND e.memory_id = m.memory_id AND e.version = m.version
        )
        ORDER BY m.user_id, m.memory_id LIMIT ?
        """,
        [model, limit],
    ).fetchall()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


@dataclass
class LoadedRows:
    """One user's memory versions, column by column, oldest change first."""

    memory_ids: list[str]
    versions: list[int]
    texts: list[str]
    topics: list[list[str]]
    agent_ids: list[str | None]
    session_ids: list[str | None]
    inputs: list[str | None]
    created: list[datetime]
    updated: list[datetime]
    recorded_until: list[datetime | None]
    vectors: list[bytes | None]
    input_vectors: list[bytes | None]
    facts: list[tuple[Any, ...]]  # per memory: subject, attribute, held_from, held_until, learned_at


def load_user_rows(
    conn: Connection,
    user_id: str,
    model: str | None,
    *,
    as_of: datetime | None = None,
    valid_at: datetime | None = None,
    held_between: tuple[datetime, datetime] | None = None,
) -> LoadedRows:
    """The user's current memories with ``model``'s vectors, in one query; or those current at ``as_of``
    (record time), or those that held at ``valid_at`` or during ``held_between`` (event time, as memlayer
    knew at ``as_of``: `memlayer._internal.db.memories.holding_at`, `held_during`)."""
    if held_between is not None:
        validity, params = held_during(as_of, *held_between)
    elif valid_at is not None:
        validity, params = holding_at(as_of, valid_at)
    elif as_of is None:
        validity, params = "m.recorded_until IS NULL", []
    else:
        ts = naive(as_of)
        validity, params = "m.recorded_from <= ? AND (m.recorded_until IS NULL OR m.recorded_until > ?)", [ts, ts]
    if dialect(conn) == "postgres":
        rows = _select_user_rows(conn, user_id, model, validity, params)
    else:
        rows = _select_duckdb_user_rows(conn, user_id, model, validity, params)
    columns: list[list[Any]] = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(17)]
    ids, versions, texts, topics, agents, sessions, inputs, created, updated, recorded_until, vectors, sources = (
        columns[:12]
    )
    facts = list(zip(*columns[12:], strict=True))
    return LoadedRows(
        ids,
        versions,
        texts,
        [list(t) for t in topics],
        agents,
        sessions,
        inputs,
        created,
        updated,
        recorded_until,
        vectors,
        sources,
        facts,
    )


def _select_duckdb_user_rows(
    conn: Connection, user_id: str, model: str | None, validity: str, params: list[Any]
) -> list[tuple[Any, ...]]:
    # DuckDB picks the user_id index for up to 2,048 matches and fetches them row by row: measured
    # 60 ms for one user's 1k rows of 1.1M, against 19 ms for a scan that skips the row groups whose
    # zone maps exclude the user (rows stored by user), and 300-800 ms on a busy 100k-row file.
    conn.execute("SET index_scan_max_count = 0")
    conn.execute("SET index_scan_percentage = 0")
    try:
        return _select_user_rows(conn, user_id, model, validity, params)
    finally:
        conn.execute("RESET index_scan_max_count")
        conn.execute("RESET index_scan_percentage")


def _select_user_rows(
    conn: Connection, user_id: str, model: str | None, validity: str, params: list[Any]
) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"""
        SELECT m.memory_id, m.version, m.memory, m.topics, m.agent_id, m.session_id, m.input, m.created_at,
               m.recorded_from, m.recorded_until, e.embedding, e.input_embedding,
               m.subject, m.attribute, m.held_from, m.held_until, m.learned_at
        FROM memories m
        LEFT JOIN (
            SELECT memory_id, version, embedding, input_embedding FROM memory_embeddings WHERE user_id = ? AND model = ?
        ) e
            ON e.memory_id = m.memory_id AND e.version = m.version
        WHERE m.user_id = ? AND {validity}
        ORDER BY m.recorded_from, m.memory_id
        """,
        [user_id, model or "", user_id, *params],
    ).fetchall()
