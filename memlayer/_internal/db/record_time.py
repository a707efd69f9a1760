"""Record time under names nobody reads as event time: the body of migration m009 on both stores."""

from __future__ import annotations

import re

from .store import Connection
from .views import RECORD_TIME_DROPPED, RECORD_TIME_VIEWS, TIMELINE_VIEWS

__all__ = ["record_time_names"]


def record_time_names(conn: Connection, store: str) -> None:
    """Record time under names nobody reads as event time (both stores run this body).

    ``valid_from`` / ``valid_to`` said when memlayer held a version, beside ``held_from`` / ``held_until``
    (when the fact held in the user's life): they become ``recorded_from`` / ``recorded_until``, in place,
    so a store made by an older memlayer opens with its rows as they were. The views that name them are
    made again (`memlayer._internal.db.views.RECORD_TIME_VIEWS`), and ``memory_timeline`` is added.
    """
    for view in RECORD_TIME_DROPPED[store]:
        conn.execute(f"DROP VIEW {view}")
    if store == "duckdb":
        _rebuild_duckdb_memories(conn)
    else:
        conn.execute("ALTER TABLE memories RENAME COLUMN valid_from TO recorded_from")
        conn.execute("ALTER TABLE memories RENAME COLUMN valid_to TO recorded_until")
    for view in RECORD_TIME_VIEWS[store] + TIMELINE_VIEWS:
        conn.execute(view)


def _renamed(sql: str) -> str:
    return re.sub(r"\bvalid_to\b", "recorded_until", re.sub(r"\bvalid_from\b", "recorded_from", sql))


def _rebuild_duckdb_memories(conn: Connection) -> None:
    """The memories table made again under the new names, its rows copied, in the migration's transaction.

    DuckDB refuses to rename a column under an index, and DuckDB 1.5 aborts the process ("pure virtual
    method called") at the commit of a transaction that renamed a column of a stored table and then
    made an index on it. A new table made from the stored one's own DDL, filled, swapped in and indexed
    is one transaction on every DuckDB this project supports (tested from 1.5.0 by scripts/lowest-versions).
    """
    row = conn.execute(
        "SELECT sql FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'"
        " AND table_name = 'memories'"
    ).fetchone()
    assert row is not None, "m009 runs after m001 made the memories table"
    ddl = re.sub(
        r"^CREATE TABLE (?:main\.)?memories\b", "CREATE TABLE memories_m009", _renamed(str(row[0])), flags=re.I
    )
    columns = [
        str(r[0])
        for r in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database()"
            " AND schema_name = 'main' AND table_name = 'memories' ORDER BY column_index"
        ).fetchall()
    ]
    conn.execute(ddl)
    old = ", ".join(f'"{c}"' for c in columns)
    conn.execute(f"INSERT INTO memories_m009 ({_renamed(old)}) SELECT {old} FROM memories")
    conn.execute("DROP TABLE memories")  # and its index
    conn.execute("ALTER TABLE memories_m009 RENAME TO memories")
    conn.execute("CREATE INDEX memories_user_idx ON memories (user_id)")
