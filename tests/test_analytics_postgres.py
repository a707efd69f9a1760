"""Analytics over a Postgres store: `query`, `store_stats`, export / import both ways, and the CLI with a dsn.

Real DuckDB and the real Postgres test server (tests/conftest.py). Both stores are filled through
`MemoryManager` with the clock pinned, so they hold the same ids and times and must answer alike.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from memlayer import ConfigError, DuckDb, MemoryManager
from memlayer._internal import clock
from memlayer._internal.analytics import TABLES, export_store, import_store, query, store_stats
from memlayer._internal.db import PostgresDb
from memlayer._internal.db.store import Store

from .conftest import _new_database
from .test_analytics import VIEWS, _fill
from .test_cli import run

START = datetime(2026, 11, 20, 9, 0)


def _filled(db: Store) -> dict[str, str]:
    with clock.pinned(START, seed="analytics"):
        return _fill(db)  # type: ignore[arg-type]  # _fill writes through the Store interface only


@pytest.fixture
def pg(fresh_postgres_dsn: str) -> Iterator[PostgresDb]:
    with PostgresDb(fresh_postgres_dsn) as store:
        yield store


@pytest.fixture
def other_pg(postgres_dsn: str, _migrated_template: str) -> Iterator[PostgresDb]:
    """A second store on the test server, blank but migrated."""
    with _new_database(postgres_dsn, _migrated_template) as (_, dsn), PostgresDb(dsn) as store:
        yield store


@pytest.fixture
def pair(tmp_path: Path, pg: PostgresDb) -> Iterator[tuple[DuckDb, PostgresDb, dict[str, str]]]:
    with DuckDb(tmp_path / "same.duckdb") as duck:
        ids = _filled(duck)
        assert _filled(pg) == ids
        yield duck, pg, ids


def _url(pg: PostgresDb, password: str | None = None) -> str:
    """The store's dsn as a postgresql:// URL, the form memlayer takes where it also takes a path."""
    params = conninfo_to_dict(pg.dsn.conninfo)
    auth = f"postgres:{password}@" if password else "postgres@"
    return f"postgresql://{auth}/{params['dbname']}?host={params['host']}&port={params['port']}"


def _dump(db: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {table: query(f"SELECT * FROM {table} ORDER BY ALL", db=db).rows for table in TABLES}


def _view(db: Any, view: str) -> list[tuple[Any, ...]]:
    # memory_history.recorded_for of a current version runs on with the clock: compare the rest.
    rows = query(f"SELECT * EXCLUDE (recorded_for) FROM {view}" if view == "memory_history" else f"FROM {view}", db=db)
    return sorted(rows.rows, key=repr)


def test_the_views_answer_alike_on_both_stores(pair: tuple[DuckDb, PostgresDb, dict[str, str]]) -> None:
    duck, pg, _ = pair
    for view in VIEWS:
        assert _view(pg, view) == _view(duck, view), view
    assert query("SELECT topic, memories, users FROM topic_counts ORDER BY topic", db=pg).rows == [
        ("drink", 1, 1),
        ("food", 2, 2),
        ("work", 1, 1),
    ]
    assert store_stats(pg) == store_stats(duck) == {
        "users": 2, "memories": 2, "versions": 4, "events": 5, "llm_calls": 4,
        "tokens": 1480, "cost_usd": 0.006, "sessions": 1, "messages": 3, "jobs_queued": 0, "jobs_parked": 0,
    }  # fmt: skip
    assert store_stats(pg, user_id="bo")["memories"] == 1
    # A dsn string reads the same store as the PostgresDb object.
    assert query("SELECT count(*) FROM memories", db=_url(pg)).rows == [(4,)]


def test_only_what_the_query_reads_is_copied(pair: tuple[DuckDb, PostgresDb, dict[str, str]]) -> None:
    from memlayer._internal.analytics.snapshot import pg_source, snapshot, tables_read_by

    _, pg, _ = pair
    with DuckDb() as blank, blank.reading() as conn:
        assert tables_read_by(conn, "SELECT * FROM session_summary") == {"sessions", "runs", "messages"}
        assert tables_read_by(conn, "WITH x AS (FROM topic_counts) SELECT * FROM x") == {"memories", "x"}
    with snapshot(pg_source(pg), sql="FROM topic_counts") as copy, copy.reading() as conn:
        assert conn.execute("SELECT count(*) FROM memories").fetchall() == [(4,)]
        assert conn.execute("SELECT count(*) FROM llm_calls").fetchall() == [(0,)]  # not read, not copied


def test_writes_are_refused_with_duckdbs_messages(pair: tuple[DuckDb, PostgresDb, dict[str, str]]) -> None:
    duck, pg, _ = pair
    for bad in [
        "DELETE FROM memories",
        "SELECT 1; DROP TABLE memories",
        "SELECT nextval('runs_seq')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY memories TO '/tmp/x.csv'",
    ]:
        with pytest.raises(ConfigError) as on_duck:
            query(bad, db=duck)
        with pytest.raises(ConfigError) as on_pg:
            query(bad, db=pg)
        assert str(on_pg.value) == str(on_duck.value).replace('"same"', '"memory"'), bad
    assert len(query("SELECT * FROM memories", db=pg)) == 4  # the server was not touched


def test_duckdb_to_postgres_and_back_loses_nothing(
    pair: tuple[DuckDb, PostgresDb, dict[str, str]], other_pg: PostgresDb, tmp_path: Path
) -> None:
    duck, _, ids = pair
    target = other_pg
    export_store(duck, tmp_path / "from-duck")
    assert import_store(target, tmp_path / "from-duck") == _counts(duck)
    assert import_store(target, tmp_path / "from-duck") == dict.fromkeys(TABLES, 0)  # twice changes nothing
    export_store(target, tmp_path / "from-pg", format="jsonl")
    with DuckDb(tmp_path / "back.duckdb") as back:
        import_store(back, tmp_path / "from-pg")
        assert _dump(back) == _dump(duck) == _dump(target)
        for store in (back, target):
            manager = MemoryManager(db=store)
            updated = query("SELECT recorded_from FROM memories WHERE version = 2", db=store).rows[0][0]
            moment = updated - timedelta(microseconds=1)  # the moment before tea's update
            assert [m.memory for m in manager.get_user_memories("ana", as_of=moment)] == [
                "Likes tea, 'green' or \"black\""
            ]
            history = manager.get_memory_history(ids["tea"], "ana")
            assert [(e.operation, e.new_memory) for e in history] == [
                ("add", "Likes tea, 'green' or \"black\""),
                ("update", "Likes green tea"),
            ]
    # New rows sort after the imported ones: the sequences were moved past the imported seq values.
    MemoryManager(db=target).add_user_memory("Sings", user_id="ana")
    seqs = query("SELECT seq, new_memory FROM memory_events ORDER BY seq", db=target).rows
    assert [s for s, _ in seqs[:5]] == [1, 2, 3, 4, 5]  # into a blank store seq is kept as exported
    assert seqs[-1][1] == "Sings" and seqs[-1][0] > 5


def _counts(db: Any) -> dict[str, int]:
    return {t: query(f"SELECT count(*) FROM {t}", db=db).rows[0][0] for t in TABLES}


def test_a_clash_refuses_the_whole_import_and_leaves_postgres_unchanged(
    pair: tuple[DuckDb, PostgresDb, dict[str, str]], tmp_path: Path
) -> None:
    duck, pg, _ = pair
    with duck.transaction() as conn:
        conn.execute("UPDATE llm_calls SET cost_usd = 9.5 WHERE call_id = 'c1'")
        conn.execute("INSERT INTO sessions VALUES ('s2', 'bo', NULL, TIMESTAMP '2026-11-21', TIMESTAMP '2026-11-21')")
    export_store(duck, tmp_path / "clashing")
    before = _dump(pg)
    with DuckDb(tmp_path / "copy.duckdb") as other:
        export_store(pg, tmp_path / "pg")
        import_store(other, tmp_path / "pg")
        with pytest.raises(ConfigError) as on_duck:
            import_store(other, tmp_path / "clashing")
    with pytest.raises(ConfigError) as on_pg:
        import_store(pg, tmp_path / "clashing")
    assert str(on_pg.value) == str(on_duck.value)
    assert "llm_calls: 1 imported row(s) clash with different rows already stored (first: call_id='c1')" in str(
        on_pg.value
    )
    assert _dump(pg) == before  # the new session s2 was not written either


def test_cli_reads_exports_and_imports_a_postgres_store(
    pair: tuple[DuckDb, PostgresDb, dict[str, str]], tmp_path: Path
) -> None:
    _, pg, _ = pair
    # A URL with a password (the test server trusts local users, so any password is accepted).
    url = _url(pg, password="s3cret-pw")
    outputs = []
    result = run("sql", "SELECT topic, memories FROM topic_counts ORDER BY topic", "--format", "csv", "--db", url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["topic,memories", "drink,1", "food,2", "work,1"]
    outputs.append(result)
    result = run("stats", env={"MEMLAYER_DB": url})
    assert result.exit_code == 0, result.stderr
    assert "password=***" in result.stdout and "1480" in result.stdout
    outputs.append(result)
    outputs.append(run("export", str(tmp_path / "cli-export"), "--db", url))
    assert outputs[-1].exit_code == 0, outputs[-1].stderr
    outputs.append(run("import", str(tmp_path / "cli-export"), "--db", url))
    assert outputs[-1].exit_code == 0, outputs[-1].stderr
    assert "imported into" in outputs[-1].stdout and "0 memories" in outputs[-1].stdout
    outputs.append(run("sql", "DELETE FROM memories", "--db", url))
    assert outputs[-1].exit_code == 1
    assert "this statement is of type DELETE" in outputs[-1].stderr
    bad = url.replace(f"port={conninfo_to_dict(pg.dsn.conninfo)['port']}", "port=1")
    outputs.append(run("stats", "--db", bad))
    assert outputs[-1].exit_code == 1 and "cannot reach Postgres" in outputs[-1].stderr
    for result in outputs:
        assert "s3cret-pw" not in result.stdout + result.stderr
    assert len(query("SELECT * FROM memories", db=pg)) == 4


def test_the_postgres_extra_is_imported_only_when_used(pg: PostgresDb, monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import sys, memlayer, memlayer._internal.analytics, memlayer._internal.cli.app\n"
        "print(sorted(m for m in ('pyarrow', 'adbc_driver_postgresql', 'adbc_driver_manager', 'psycopg')"
        " if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]"
    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'memlayer-ai\[postgres\]'"):
        query("SELECT 1", db=pg)
