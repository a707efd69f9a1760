"""Record time renamed (m009): a store made by the previous schema opens with its rows and both times.

No model is called: the old stores are written as SQL in the schema 0.2 shipped (migrations m001-m008),
on a real DuckDB file and a real PostgreSQL server, then opened by this memlayer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import duckdb

from memlayer import DuckDb, MemoryManager, Store
from memlayer._internal.db.migrations import MIGRATIONS, apply_migrations

USER = "ana"
# A move as m008 stored it: Berlin's version closed in record time on March 1st, and ended in the
# user's life in 2019 where Lisbon's began; a deleted hobby, which never belongs to the timeline.
OLD_ROWS = [
    ("home", 1, "Lives in Berlin", "2026-01-01", "2026-03-01", "2015-01-01", "2019-06-01", "home"),
    ("home", 2, "Lives in Lisbon", "2026-03-01", None, "2019-06-01", None, "home"),
    ("chess", 1, "Plays chess", "2026-01-01", "2026-02-01", None, None, "other"),
]
INSERT = (
    "INSERT INTO memories (memory_id, version, user_id, memory, memory_key, topics, created_at, valid_from,"
    " valid_to, held_from, held_until, learned_at, attribute, fact_key) VALUES ({p})"
)


def _write_old_rows(execute: Callable[[str, list[Any]], object], mark: str) -> None:
    for memory_id, version, text, start, end, held_from, held_until, attribute in OLD_ROWS:
        key = "user:home" if attribute == "home" and end is None else None
        values = [memory_id, version, USER, text, text.lower(), [attribute], start, start, end]
        values += [held_from, held_until, start, attribute, key]
        execute(INSERT.format(p=", ".join([mark] * len(values))), values)


def _reads_as_a_timeline(store: Store) -> None:
    applied = [r[0] for r in store.sql("SELECT name FROM schema_migrations ORDER BY name")]
    assert applied.index("m009_record_time_names") == applied.index("m008_fact_keys_and_times") + 1
    manager = MemoryManager(db=store)
    assert [m.memory for m in manager.get_user_memories(user_id=USER)] == ["Lives in Lisbon"]
    assert [m.memory for m in manager.get_user_memories(user_id=USER, valid_at="2017-05-01")] == ["Lives in Berlin"]
    # What memlayer knew in February: Berlin, still open then (its end was learnt in March), and chess.
    known = manager.get_user_memories(user_id=USER, as_of="2026-02-15")
    assert sorted(m.memory for m in known) == ["Lives in Berlin"]
    old = manager.get_user_memories(user_id=USER, as_of="2026-01-15")
    assert sorted((m.memory, m.recorded_until is not None) for m in old) == [
        ("Lives in Berlin", True),
        ("Plays chess", True),
    ]
    assert store.sql(
        "SELECT memory, starts_at::DATE, held_until::DATE, is_current FROM memory_timeline"
        " WHERE user_id = ? ORDER BY starts_at",
        [USER],
    ) == [
        ("Lives in Berlin", dt.date(2015, 1, 1), dt.date(2019, 6, 1), False),
        ("Lives in Lisbon", dt.date(2019, 6, 1), None, True),
    ]
    history = store.sql(
        "SELECT memory, recorded_from::DATE, recorded_until::DATE FROM memory_history ORDER BY recorded_from, memory"
    )
    assert history[0] == ("Lives in Berlin", dt.date(2026, 1, 1), dt.date(2026, 3, 1))
    assert store.sql("SELECT topic, memories FROM topic_counts") == [("home", 1)]
    assert store.sql("SELECT memories_now FROM memory_churn") == []  # the rows were written without events


def test_a_duckdb_store_of_the_previous_schema_opens_with_record_time_renamed(tmp_path: object) -> None:
    path = f"{tmp_path}/old.duckdb"
    conn = duckdb.connect(path)
    apply_migrations(conn, MIGRATIONS[:8])
    _write_old_rows(conn.execute, "?")
    conn.close()
    with DuckDb(path) as store:
        _reads_as_a_timeline(store)
    with DuckDb(path) as store:  # the renamed file opens again, with nothing left to migrate
        columns = [r[0] for r in store.sql("SELECT column_name FROM duckdb_columns() WHERE table_name = 'memories'")]
        assert "recorded_until" in columns and "valid_to" not in columns
        assert store.sql("SELECT count(*) FROM memories") == [(3,)]


def test_a_postgres_store_of_the_previous_schema_opens_with_record_time_renamed(empty_postgres_dsn: str) -> None:
    import psycopg

    from memlayer import PostgresDb
    from memlayer._internal.db.pg_migrations import PG_MIGRATIONS, apply_pg_migrations
    from memlayer._internal.db.postgres import PgConnection

    with psycopg.connect(empty_postgres_dsn, autocommit=True) as raw:
        apply_pg_migrations(PgConnection(raw), PG_MIGRATIONS[:8])
        _write_old_rows(raw.execute, "%s")
    with PostgresDb(empty_postgres_dsn) as pg:
        _reads_as_a_timeline(pg)
        # The unique index on a user's current fact follows the rename: a second home is still one update.
        MemoryManager(db=pg).add_user_memory("Lives in Porto", user_id=USER)
        assert pg.sql("SELECT memory FROM memories WHERE recorded_until IS NULL AND fact_key = 'user:home'") == [
            ("Lives in Porto",)
        ]


def test_an_export_made_before_the_rename_imports_under_the_new_names(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from memlayer._internal.analytics import export_store, import_store

    folder = Path(f"{tmp_path}/export")
    with DuckDb(f"{tmp_path}/a.duckdb") as source:
        manager = MemoryManager(db=source)
        manager.add_user_memory("Lives in Berlin", user_id=USER)
        manager.add_user_memory("Lives in Lisbon", user_id=USER)
        export_store(source, folder, format="jsonl")
        expected = source.sql("SELECT memory, recorded_from, recorded_until FROM memories ORDER BY ALL")
    # The files as memlayer 0.2 wrote them: the same rows under the old names, and no m009 in the manifest.
    rows = (folder / "memories.jsonl").read_text()
    (folder / "memories.jsonl").write_text(
        rows.replace('"recorded_from"', '"valid_from"').replace('"recorded_until"', '"valid_to"')
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["migrations"].remove("m009_record_time_names")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with DuckDb(f"{tmp_path}/b.duckdb") as target:
        import_store(target, folder)
        assert target.sql("SELECT memory, recorded_from, recorded_until FROM memories ORDER BY ALL") == expected
        assert [m.memory for m in MemoryManager(db=target).get_user_memories(user_id=USER)] == ["Lives in Lisbon"]
