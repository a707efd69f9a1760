"""Analytics: the m003 views, the read-only query entry point, and export / import of whole stores.

All on real DuckDB files. No LLM call is needed (direct edits, and usage / session rows written as
SQL, as the agent writes them), so there is no cassette here.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from memlayer import ConfigError, DatabaseLockedError, DuckDb, MemoryManager, StorageError
from memlayer._internal.analytics import TABLES, export_store, import_store, query, store_stats
from memlayer._internal.db.migrations import MIGRATIONS, apply_migrations

VIEWS = [
    "current_memories",
    "events_by_day",
    "llm_usage",
    "memory_churn",
    "memory_history",
    "memory_timeline",
    "parked_jobs",
    "session_messages",
    "session_summary",
    "topic_counts",
    "topic_events",
]


def _write(db: DuckDb, sql: str) -> None:
    # Fixtures only: db.sql() is read-only, as every change must go through the manager.
    with db.transaction() as conn:
        conn.execute(sql)


def _fill(db: DuckDb) -> dict[str, str]:
    """Two users with versions, deletes, LLM calls, a session with runs and messages."""
    manager = MemoryManager(db=db)
    tea = manager.add_user_memory("Likes tea, 'green' or \"black\"", user_id="ana", topics=["food", "x, y"])
    manager.replace_user_memory(tea.memory_id, "Likes green tea", user_id="ana", topics=["food", "drink"])
    rust = manager.add_user_memory("Learns Rust", user_id="ana", topics=["programming"], agent_id="coder")
    manager.delete_user_memory(rust.memory_id, user_id="ana")
    manager.add_user_memory("Runs a bakery", user_id="bo", topics=["work", "food"])
    _write(
        db,
        """
        INSERT INTO llm_calls VALUES
          ('c1', 'extraction', 'openai:gpt-4o', 'extract-v1', 'ana', 'coder', 's1', 300, 40, 0.002, 812.5, 1, 'ok',
           NULL, TIMESTAMP '2026-11-20 10:00:00'),
          ('c2', 'extraction', 'openai:gpt-4o', 'extract-v1', 'ana', 'coder', 's1', 310, 0, NULL, 90.0, 3, 'error',
           'the reply never validated', TIMESTAMP '2026-11-20 11:00:00'),
          ('c3', 'extraction', 'ollama:llama3.2', 'extract-v1', 'bo', NULL, NULL, 200, 30, NULL, 400.0, 1, 'ok', NULL,
           TIMESTAMP '2026-11-21 09:00:00'),
          ('c4', 'agent', 'openai:gpt-4o', NULL, 'ana', 'coder', 's1', 500, 100, 0.004, 1500.0, 1, 'ok', NULL,
           TIMESTAMP '2026-11-20 10:00:00')
        """,
    )
    session = "('s1', 'ana', 'coder', TIMESTAMP '2026-11-20 10:00', TIMESTAMP '2026-11-20 10:05')"
    _write(db, f"INSERT INTO sessions VALUES {session}")
    _write(
        db,
        """INSERT INTO runs (run_id, session_id, user_id, agent_id, model, status, error, input_tokens, output_tokens,
                             cost_usd, latency_ms, llm_calls, tool_calls, created_at)
           VALUES ('r1', 's1', 'ana', 'coder', 'openai:gpt-4o', 'ok', NULL, 500, 100, 0.004, 1500, 2, 1,
                   TIMESTAMP '2026-11-20 10:00')""",
    )
    _write(
        db,
        """INSERT INTO messages (message_id, run_id, session_id, user_id, agent_id, role, content, tool_calls,
                                 tool_call_id, tool_name, created_at) VALUES
           ('m1', 'r1', 's1', 'ana', 'coder', 'user', 'I learn Rust, "slowly"', NULL, NULL, NULL,
            TIMESTAMP '2026-11-20 10:00'),
           ('m2', 'r1', 's1', 'ana', 'coder', 'assistant', '', '[{"id": "t1", "function": {"name": "add_memory"}}]',
            NULL, NULL, TIMESTAMP '2026-11-20 10:00:01'),
           ('m3', 'r1', 's1', 'ana', 'coder', 'tool', 'ok', NULL, 't1', 'add_memory',
            TIMESTAMP '2026-11-20 10:00:02')""",
    )
    return {"tea": tea.memory_id, "rust": rust.memory_id}


def _dump(db: DuckDb) -> dict[str, list[tuple[Any, ...]]]:
    return {table: db.sql(f"SELECT * FROM {table} ORDER BY ALL") for table in TABLES}


@pytest.fixture
def filled(db: DuckDb) -> Iterator[DuckDb]:
    _fill(db)
    yield db


def test_views_from_a_blank_database(db: DuckDb) -> None:
    views = [row[0] for row in db.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1")]
    assert views == VIEWS
    assert ("m003_analytics_views",) in db.sql("SELECT name FROM schema_migrations ORDER BY name")
    for view in VIEWS:
        assert db.sql(f"SELECT count(*) FROM {view}") == [(0,)]


def test_m003_over_a_database_at_m002(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    conn = duckdb.connect(str(path))
    assert apply_migrations(conn, MIGRATIONS[:2]) == ["m001_memory_core", "m002_sessions"]
    conn.execute(
        """INSERT INTO memories VALUES ('a', 1, 'ana', NULL, NULL, 'Likes tea', 'likes tea', ['food'], NULL,
           TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01', NULL)"""
    )
    conn.execute(
        """INSERT INTO memory_events (event_id, memory_id, user_id, operation, new_memory, new_topics, source,
           created_at) VALUES ('e', 'a', 'ana', 'add', 'Likes tea', ['food'], 'api', TIMESTAMP '2026-01-01')"""
    )
    conn.close()
    with DuckDb(path) as db:  # opening it runs the migrations after m002
        assert [r[0] for r in db.sql("SELECT name FROM schema_migrations ORDER BY name")] == [
            name for name, _ in MIGRATIONS
        ]
        assert db.sql("SELECT topic, memories, users FROM topic_counts") == [("food", 1, 1)]
        assert db.sql("SELECT topic, operation, memory_id FROM topic_events") == [("food", "add", "a")]


def test_views_answer_the_questions(filled: DuckDb) -> None:
    db = filled
    assert db.sql("SELECT topic, memories, users FROM topic_counts ORDER BY topic") == [
        ("drink", 1, 1),
        ("food", 2, 2),
        ("work", 1, 1),
    ]
    # Every event and the topics it touched, before and after: the update of tea counts for "x, y"
    # (dropped) and "drink" (added), and once for "food" (kept).
    assert db.sql("SELECT topic, count(*) FROM topic_events GROUP BY topic ORDER BY 2 DESC, 1") == [
        ("food", 3),
        ("programming", 2),
        ("x, y", 2),
        ("drink", 1),
        ("work", 1),
    ]
    assert db.sql("SELECT operation, sum(events) FROM events_by_day GROUP BY 1 ORDER BY 1") == [
        ("add", 3),
        ("delete", 1),
        ("update", 1),
    ]
    assert db.sql(
        "SELECT user_id, adds, updates, deletes, memories_ever, memories_now, changes_per_memory "
        "FROM memory_churn ORDER BY user_id"
    ) == [("ana", 2, 1, 1, 2, 1, 1.0), ("bo", 1, 0, 0, 1, 1, 0.0)]
    history = db.sql("SELECT memory, version, is_current, recorded_until IS NOT NULL FROM memory_history ORDER BY ALL")
    assert history == [
        ("Learns Rust", 1, False, True),
        ("Likes green tea", 2, True, False),
        ("Likes tea, 'green' or \"black\"", 1, False, True),
        ("Runs a bakery", 1, True, False),
    ]
    usage = db.sql(
        "SELECT user_id, sum(calls), sum(failed_calls), sum(attempts), sum(total_tokens), sum(cost_usd), "
        "sum(unpriced_calls) FROM llm_usage WHERE purpose = 'extraction' GROUP BY user_id ORDER BY user_id"
    )
    assert usage == [("ana", 2, 1, 4, 650, 0.002, 1), ("bo", 1, 0, 1, 230, None, 1)]
    assert db.sql("SELECT model, sum(cost_usd) FROM llm_usage GROUP BY model ORDER BY model") == [
        ("ollama:llama3.2", None),
        ("openai:gpt-4o", 0.006),
    ]
    assert db.sql("SELECT session_id, runs, messages, user_messages, total_tokens, cost_usd FROM session_summary") == [
        ("s1", 1, 3, 1, 600, 0.004)
    ]
    assert db.sql("SELECT role, tool_name, model, run_status FROM session_messages ORDER BY seq") == [
        ("user", None, "openai:gpt-4o", "ok"),
        ("assistant", None, "openai:gpt-4o", "ok"),
        ("tool", "add_memory", "openai:gpt-4o", "ok"),
    ]


def test_query_returns_rows_and_dataframes(filled: DuckDb) -> None:
    result = query("SELECT topic, memories FROM topic_counts WHERE memories > ? ORDER BY topic", db=filled, params=[1])
    assert (result.columns, result.rows, list(result)) == (["topic", "memories"], [("food", 2)], [("food", 2)])
    sql = "SELECT topic, memories FROM topic_counts ORDER BY topic"
    assert query(sql, db=filled, output="arrow").to_pylist()[0] == {"topic": "drink", "memories": 1}
    assert query(sql, db=filled, output="pandas")["topic"].tolist() == ["drink", "food", "work"]
    assert query(sql, db=filled, output="polars")["memories"].to_list() == [1, 2, 1]
    assert store_stats(filled) == {
        "users": 2,
        "memories": 2,
        "versions": 4,
        "events": 5,
        "llm_calls": 4,
        "tokens": 1480,
        "cost_usd": 0.006,
        "sessions": 1,
        "messages": 3,
        "jobs_queued": 0,
        "jobs_parked": 0,
    }
    assert store_stats(filled, user_id="bo")["memories"] == 1


def test_a_missing_dataframe_library_is_a_clear_error(filled: DuckDb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "polars", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'memlayer-ai\[polars\]'"):
        query("SELECT 1", db=filled, output="polars")
    with pytest.raises(ConfigError, match="output must be one of"):
        query("SELECT 1", db=filled, output="excel")  # type: ignore[arg-type]


WRITES = [
    ("INSERT INTO memories SELECT * FROM memories", "INSERT"),
    ("UPDATE memories SET memory = 'x'", "UPDATE"),
    ("DELETE FROM memory_events", "DELETE"),
    ("DROP TABLE llm_calls", "DROP"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("ALTER TABLE memories ADD COLUMN x INT", "ALTER"),
    ("COPY memories TO 'stolen.csv'", "COPY"),
    ("ATTACH 'other.duckdb' AS other", "ATTACH"),
    ("DETACH memory", "DETACH"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("SET threads = 1", "SET"),
    ("CALL checkpoint()", "CALL"),
    ("EXPORT DATABASE 'dump'", "EXPORT"),
    ("INSTALL httpfs", "LOAD"),
    ("BEGIN TRANSACTION", "TRANSACTION"),
    ("EXPLAIN ANALYZE DELETE FROM memories", "EXPLAIN"),
    ("VACUUM", "VACUUM"),
    ("UPDATE memories SET memory = 'x' RETURNING *", "UPDATE"),
]


def test_writes_are_refused_before_they_run(filled: DuckDb) -> None:
    before = _dump(filled)
    for sql, kind in WRITES:
        with pytest.raises(ConfigError, match=f"of type {kind}, and the store was not touched"):
            query(sql, db=filled)
    assert _dump(filled) == before
    assert filled.sql("SELECT count(*) FROM duckdb_databases() WHERE NOT internal") == [(1,)]
    assert not (Path.cwd() / "stolen.csv").exists()


def test_tricks_inside_a_select_are_refused(filled: DuckDb) -> None:
    before = _dump(filled)
    with pytest.raises(ConfigError, match="exactly one statement, not 2"):
        query("SELECT 1; DELETE FROM memories", db=filled)
    with pytest.raises(ConfigError, match="exactly one statement"):
        query("SELECT 1; SELECT 2", db=filled)
    with pytest.raises(ConfigError, match=r"calls query\(\)"):
        query("SELECT * FROM query('DELETE FROM memories')", db=filled)
    # A SELECT can advance a sequence, which a rollback would not undo: the read-only transaction refuses it.
    with pytest.raises(ConfigError, match="tried to write and was refused"):
        query("SELECT nextval('memory_events_seq')", db=filled)
    with pytest.raises(ConfigError, match="does not parse"):
        query("SELEC 1", db=filled)
    with pytest.raises(ConfigError, match="give a SQL query"):
        query("  ", db=filled)
    assert _dump(filled) == before
    # The sequence did not move: the next event follows the last one.
    MemoryManager(db=filled).add_user_memory("Plays chess", user_id="bo")
    assert filled.sql("SELECT max(seq) FROM memory_events") == [(6,)]


def test_read_only_file_beside_readers_not_beside_a_writer_process(tmp_path: Path) -> None:
    path = tmp_path / "shared.duckdb"
    with DuckDb(path) as db:
        _fill(db)
        # In the process that writes, the path cannot be opened again read-only: DuckDB says so.
        with pytest.raises(StorageError, match="pass that DuckDb object as db= instead"):
            query("SELECT 1", db=path)
    # Closed: any number of read-only readers.
    assert query("SELECT count(*) FROM current_memories", db=path).rows == [(2,)]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseLockedError, match="A read-only reader in another process cannot open a file while"):
            query("SELECT 1", db=path)
    finally:
        holder.communicate("")
    with pytest.raises(ConfigError, match="no database at"):
        query("SELECT 1", db=tmp_path / "missing.duckdb")


def test_a_file_from_an_older_memlayer_gains_the_views_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    conn = duckdb.connect(str(path))
    apply_migrations(conn, MIGRATIONS[:2])
    conn.close()
    assert query("SELECT count(*) FROM topic_counts", db=path).rows == [(0,)]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_export_import_round_trip_keeps_every_row(filled: DuckDb, tmp_path: Path, fmt: str) -> None:
    counts = export_store(filled, tmp_path / "export", format=fmt)  # type: ignore[arg-type]
    assert counts == {"memories": 4, "memory_events": 5, "llm_calls": 4, "sessions": 1, "runs": 1, "messages": 3}
    with DuckDb(tmp_path / "copy.duckdb") as copy:
        assert import_store(copy, tmp_path / "export") == counts
        assert _dump(copy) == _dump(filled)  # every column of every row, seq numbers included
        # Importing again adds nothing: every row is already there, identical.
        assert set(import_store(copy, tmp_path / "export").values()) == {0}
        # New rows go after the imported ones (the sequence moved past them).
        MemoryManager(db=copy).add_user_memory("Plays chess", user_id="bo")
        assert copy.sql("SELECT new_memory, seq > 5 FROM memory_events ORDER BY seq DESC LIMIT 1") == [
            ("Plays chess", True)
        ]


def test_export_one_user_and_merge_into_another_store(filled: DuckDb, tmp_path: Path) -> None:
    assert export_store(filled, tmp_path / "ana", user_id="ana") == {
        "memories": 3,
        "memory_events": 4,
        "llm_calls": 3,
        "sessions": 1,
        "runs": 1,
        "messages": 3,
    }
    with DuckDb(tmp_path / "other.duckdb") as other:
        manager = MemoryManager(db=other)
        manager.add_user_memory("Likes jazz", user_id="cy")
        manager.add_user_memory("Likes blues", user_id="cy")
        import_store(other, tmp_path / "ana")
        assert other.sql("SELECT DISTINCT user_id FROM memories ORDER BY 1") == [("ana",), ("cy",)]
        # ana's events keep their order and come after what the store held.
        assert other.sql("SELECT user_id, operation FROM memory_events ORDER BY seq") == [
            ("cy", "add"),
            ("cy", "add"),
            ("ana", "add"),
            ("ana", "update"),
            ("ana", "add"),
            ("ana", "delete"),
        ]
        history = [(e.operation, e.new_memory) for e in MemoryManager(db=other).get_user_events(user_id="ana")]
        assert history == [(e.operation, e.new_memory) for e in MemoryManager(db=filled).get_user_events(user_id="ana")]


def test_a_clash_refuses_the_whole_import(filled: DuckDb, tmp_path: Path) -> None:
    export_store(filled, tmp_path / "export", format="jsonl")
    with DuckDb(tmp_path / "copy.duckdb") as copy:
        import_store(copy, tmp_path / "export")
        _write(copy, "UPDATE llm_calls SET cost_usd = 1.0 WHERE call_id = 'c3'")
        _write(copy, "DELETE FROM memories WHERE user_id = 'bo'")  # would be re-added, but nothing may be
        before = _dump(copy)
        with pytest.raises(ConfigError, match=r"llm_calls: 1 imported row\(s\) clash .* call_id='c3'"):
            import_store(copy, tmp_path / "export")
        assert _dump(copy) == before


def test_bad_exports_are_refused(filled: DuckDb, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a memlayer export"):
        import_store(filled, tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not an empty folder"):
        export_store(filled, tmp_path / "full")
    with pytest.raises(ConfigError, match="format must be one of"):
        export_store(filled, tmp_path / "new", format="xlsx")  # type: ignore[arg-type]
    export_store(filled, tmp_path / "cut", format="csv")
    (tmp_path / "cut" / "runs.csv").unlink()
    with pytest.raises(ConfigError, match=r"lacks runs\.csv"):
        import_store(filled, tmp_path / "cut")
