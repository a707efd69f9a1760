"""The store's behaviour on both backends (``store`` runs each test on DuckDB and on a real Postgres server),
and what only Postgres has: its errors, its migrations under a lock, the unique current version, VACUUM.

These go through `ChangeSet` and the SQL functions of `memlayer._internal.db`, which is what the manager calls.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from memlayer import ConfigError, StorageError
from memlayer._internal.clock import now as utcnow
from memlayer._internal.db import DuckDb, PostgresDb, Store, sessions, vectors
from memlayer._internal.db import changes as changes_module
from memlayer._internal.db import memories as mem
from memlayer._internal.db.changes import ChangeSet, Provenance
from memlayer._internal.db.migrations import MIGRATIONS
from memlayer._internal.db.pg_migrations import PG_MIGRATIONS, apply_pg_migrations
from memlayer._internal.db.postgres import PgConnection, to_numbered
from memlayer._internal.db.revisions import user_revision
from memlayer._internal.db.store import Connection, dialect
from memlayer._internal.records import ChatMessage, LLMUsage, Memory

ALICE, BOB = "alice", "bob"


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "duckdb":
        with DuckDb(tmp_path / "memories.duckdb") as duck:
            yield duck
    else:
        with PostgresDb(request.getfixturevalue("fresh_postgres_dsn"), max_size=2) as pg:
            yield pg


@pytest.fixture
def pg(fresh_postgres_dsn: str) -> Iterator[PostgresDb]:
    with PostgresDb(fresh_postgres_dsn, max_size=2) as db:
        yield db


def edit(db: Store, user: str, build: Callable[[ChangeSet, Connection], object], **ctx: str) -> ChangeSet:
    """One write transaction: ``build`` fills the set (reading through the connection), then it is written."""
    changes = ChangeSet(Provenance(user, "api", utcnow(), **ctx))
    with db.transaction() as conn:
        build(changes, conn)
        changes.write(conn)
    return changes


def add(db: Store, user: str, text: str, topics: list[str] | None = None, **ctx: str) -> Memory:
    found: list[Memory] = []
    edit(db, user, lambda c, _: found.append(c.add(text, topics or [])), **ctx)
    return found[0]


def current(db: Store, user: str, **filters: object) -> list[str]:
    with db.reading() as conn:
        return [m.memory for m in mem.list_memories(conn, user, **filters)]  # type: ignore[arg-type]


def test_edits_are_versions_and_events(store: Store) -> None:
    tea = add(store, ALICE, "Likes tea", ["food"], agent_id="chef")
    t1 = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.002)
    edit(store, ALICE, lambda c, _: c.update(tea, "Likes green tea", ["food"]))
    t2 = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.002)
    with store.reading() as conn:
        green = mem.find_memory(conn, ALICE, tea.memory_id)
    assert green is not None and (green.version, green.agent_id, green.created_at) == (2, "chef", tea.created_at)
    edit(store, ALICE, lambda c, _: c.delete(green))

    assert current(store, ALICE) == []
    assert current(store, ALICE, as_of=t1) == ["Likes tea"]
    assert current(store, ALICE, as_of=t2) == ["Likes green tea"]
    with store.reading() as conn:
        events = mem.list_events(conn, ALICE, tea.memory_id)
    assert [(e.operation, e.old_memory, e.new_memory, e.old_topics) for e in events] == [
        ("add", None, "Likes tea", None),
        ("update", "Likes tea", "Likes green tea", ["food"]),
        ("delete", "Likes green tea", None, ["food"]),
    ]


def test_reads_filter_and_order(store: Store) -> None:
    add(store, ALICE, "Likes tea", ["food"], agent_id="chef")
    time.sleep(0.002)
    add(store, ALICE, "Writes Rust", ["programming", "work"], agent_id="coder")
    add(store, BOB, "Likes coffee", ["food"])
    assert current(store, ALICE) == ["Writes Rust", "Likes tea"]
    assert current(store, ALICE, topics=["food"]) == ["Likes tea"]
    assert current(store, ALICE, topics=["work", "none"]) == ["Writes Rust"]
    assert current(store, ALICE, agent_id="coder") == ["Writes Rust"]
    assert current(store, ALICE, limit=1) == ["Writes Rust"]


def test_users_are_isolated(store: Store) -> None:
    bobs = add(store, BOB, "Bob's secret")
    add(store, ALICE, "Alice's fact")
    with store.reading() as conn:
        assert mem.find_memory(conn, ALICE, bobs.memory_id) is None
        assert mem.list_events(conn, ALICE, bobs.memory_id) == []
    # A set for Alice that targets Bob's memory changes no row, and so is refused whole.
    forged = bobs.model_copy(update={"user_id": ALICE})
    with pytest.raises(StorageError, match="changed while this change was prepared; retry"):
        edit(store, ALICE, lambda c, _: c.update(forged, "hacked", []))
    assert current(store, BOB) == ["Bob's secret"]


def test_clear_keeps_history_erase_removes_everything(store: Store) -> None:
    edit(store, ALICE, lambda c, _: [c.add(f"fact {i}", []) for i in range(150)])
    add(store, BOB, "Bob's fact")
    with store.reading() as conn:
        alices = mem.list_memories(conn, ALICE)
    edit(store, ALICE, lambda c, _: [c.delete(m, "cleared") for m in alices])
    assert current(store, ALICE) == []
    assert store.sql("SELECT count(*) FROM memory_events WHERE user_id = ?", [ALICE]) == [(300,)]
    with store.transaction() as conn:
        counts = mem.erase_user(conn, ALICE)
    store.rewrite()
    assert counts == {
        "memories": 150,
        "memory_events": 300,
        "llm_calls": 0,
        "messages": 0,
        "runs": 0,
        "sessions": 0,
        "memory_embeddings": 0,
        "memory_jobs": 0,
    }
    for table in ("memories", "memory_events", "user_revisions"):
        assert store.sql(f"SELECT count(*) FROM {table} WHERE user_id = ?", [ALICE]) == [(0,)]
    assert current(store, BOB) == ["Bob's fact"]


def test_a_failed_transaction_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction() as conn:
            changes = ChangeSet(Provenance(ALICE, "api", utcnow()))
            changes.add("Likes tea", [])
            changes.write(conn)
            raise RuntimeError("boom")
    assert current(store, ALICE) == []
    assert store.sql("SELECT count(*) FROM memory_events") == [(0,)]


def test_a_set_larger_than_one_statement_takes_is_written_whole(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Postgres takes 65,535 parameters a statement (a set of 4,400 adds has more); a limit of 200 makes
    # this set of 60 take several statements of each kind, without the seconds 6,000 rows would cost.
    monkeypatch.setattr(changes_module, "_MAX_PARAMS", 200)
    made = edit(store, ALICE, lambda c, _: [c.add(f"fact {i}", []) for i in range(60)])
    keys = [(m.memory_id, m.version) for m in made.current_versions()]
    with store.transaction() as conn:
        vectors.write_vectors(conn, ALICE, "toy", keys, np.ones((len(keys), 2), dtype=np.float32))
    with store.reading() as conn:
        rows = vectors.load_user_rows(conn, ALICE, "toy")
        alices = mem.list_memories(conn, ALICE)
    assert len(rows.texts) == 60 and all(v is not None for v in rows.vectors)
    edit(store, ALICE, lambda c, _: [c.delete(m) for m in alices])
    assert current(store, ALICE) == []
    assert store.sql("SELECT count(*), min(seq) + 119 = max(seq) FROM memory_events") == [(120, True)]


def test_duckdb_keeps_no_revision(tmp_path: Path) -> None:
    # One writing process updates its own index; the upsert would cost a fifth of each commit.
    with DuckDb(tmp_path / "m.duckdb") as duck:
        add(duck, ALICE, "Likes tea")
        with duck.reading() as conn:
            assert user_revision(conn, ALICE) == 0
        assert duck.sql("SELECT count(*) FROM user_revisions") == [(0,)]


def test_user_revision_changes_with_every_write_only(pg: PostgresDb) -> None:
    store = pg
    with store.reading() as conn:
        assert user_revision(conn, ALICE) == 0
    tea = add(store, ALICE, "Likes tea")
    with store.reading() as conn:
        first = user_revision(conn, ALICE)
        current(store, ALICE)
        assert user_revision(conn, ALICE) == first > 0  # a read leaves it
    add(store, BOB, "Likes coffee")
    with store.reading() as conn:
        assert user_revision(conn, ALICE) == first  # another user's write leaves it
    edit(store, ALICE, lambda c, _: c.update(tea, "Likes green tea", []))
    with store.reading() as conn:
        second = user_revision(conn, ALICE)
    assert second > first
    with store.transaction() as conn:
        mem.erase_user(conn, ALICE)
    with store.reading() as conn:
        assert user_revision(conn, ALICE) == 0  # no row left about Alice, and 0 was never issued
    add(store, ALICE, "Likes tea")
    with store.reading() as conn:
        assert user_revision(conn, ALICE) > second


def test_sql_is_read_only(store: Store) -> None:
    add(store, ALICE, "Likes tea", ["food"])
    assert store.sql("SELECT memory, topics FROM current_memories WHERE memory LIKE ?", ["%tea"]) == [
        ("Likes tea", ["food"])
    ]
    for query, error in [
        ("DELETE FROM memories", "only read-only queries"),
        ("SELECT 1; DELETE FROM memories", "exactly one statement"),
    ]:
        with pytest.raises(ConfigError, match=error):
            store.sql(query)
    with pytest.raises(ConfigError):
        store.sql("SELECT 1", "not a list")  # type: ignore[arg-type]
    assert current(store, ALICE) == ["Likes tea"]


def test_vectors_round_trip_as_float32_bytes(store: Store) -> None:
    tea, rust = add(store, ALICE, "Likes tea"), add(store, ALICE, "Writes Rust")
    vecs = np.arange(8, dtype=np.float32).reshape(2, 4) / 3
    with store.transaction() as conn:
        vectors.write_vectors(conn, ALICE, "toy-embedder", [(tea.memory_id, 1)], vecs[:1])
    with store.reading() as conn:
        assert vectors.missing_vectors(conn, "toy-embedder", 10) == [(rust.memory_id, 1, ALICE, "Writes Rust", None)]
        rows = vectors.load_user_rows(conn, ALICE, "toy-embedder")
        assert vectors.stored_embedders(conn) == {"toy-embedder": 4}
        with pytest.raises(ConfigError, match="cannot be compared"):
            vectors.check_embedder(conn, "other-embedder")
    assert rows.texts == ["Likes tea", "Writes Rust"]
    assert rows.vectors[1] is None
    loaded = rows.vectors[0]
    assert isinstance(loaded, bytes) and np.array_equal(np.frombuffer(loaded, "<f4"), vecs[0])


def test_session_history(store: Store) -> None:
    now = utcnow()
    calls = [LLMUsage(call_id="c1", model="m", purpose="chat", input_tokens=3, output_tokens=2, cost_usd=0.5)]
    tool_calls = [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    messages = [
        ChatMessage(role="user", content="hi 100%?", created_at=now),
        ChatMessage(role="assistant", content=None, tool_calls=tool_calls, created_at=now),
        ChatMessage(role="assistant", content="hello", created_at=now),
    ]
    run = sessions.RunRecord("r1", "s1", ALICE, "agent", "m", None, calls, 1, now)
    with store.transaction() as conn:
        sessions.write_run(conn, run, messages)
    with store.reading() as conn:
        history = sessions.recent_history(conn, ALICE, "s1", 5)
        stored = sessions.list_messages(conn, ALICE, "s1")
        listed = sessions.list_sessions(conn, ALICE)
        assert sessions.list_messages(conn, BOB, "s1") == []
    assert [(m.role, m.content) for m in history] == [("user", "hi 100%?"), ("assistant", "hello")]
    assert stored[1].tool_calls == tool_calls
    assert [(s["session_id"], s["runs"]) for s in listed] == [("s1", 1)]
    with pytest.raises(ConfigError, match="belongs to another user"):
        with store.transaction() as conn:
            sessions.write_run(conn, sessions.RunRecord("r2", "s1", BOB, None, "m", None, [], 0, now), [])
    assert store.sql("SELECT runs, messages, total_tokens, cost_usd FROM session_summary") == [(1, 3, 5, 0.5)]


def _schema(db: Store) -> list[tuple[str, str]]:
    # information_schema is the one catalog both databases answer alike.
    names = [n for n, _ in MIGRATIONS]
    assert db.sql("SELECT name FROM schema_migrations ORDER BY name") == [(n,) for n in names]
    rows = db.sql(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema IN ('main', 'public') ORDER BY table_name, ordinal_position"
    )
    return [(str(t), str(c)) for t, c in rows]


def test_both_backends_have_the_same_tables_views_and_columns(tmp_path: Path, pg: PostgresDb) -> None:
    with DuckDb(tmp_path / "m.duckdb") as duck:
        assert _schema(pg) == _schema(duck)
    assert [n for n, _ in PG_MIGRATIONS] == [n for n, _ in MIGRATIONS]


def test_analytics_views_agree_across_backends(tmp_path: Path, pg: PostgresDb) -> None:
    views = {
        "topic_counts": "SELECT * FROM topic_counts ORDER BY topic",
        "topic_events": "SELECT topic, operation FROM topic_events ORDER BY seq, topic",
        "memory_churn": "SELECT user_id, adds, updates, deletes, memories_ever, memories_now, changes_per_memory"
        " FROM memory_churn ORDER BY user_id",
        "events_by_day": "SELECT operation, events, users, memories FROM events_by_day ORDER BY operation",
        "memory_history": "SELECT memory, version, is_current FROM memory_history ORDER BY memory, version",
    }
    with DuckDb(tmp_path / "m.duckdb") as duck:
        results = []
        for db in (duck, pg):
            tea = add(db, ALICE, "Likes tea", ["food", "home"])
            add(db, ALICE, "Writes Rust", ["work"])
            add(db, BOB, "Likes coffee", ["food"])
            edit(db, ALICE, lambda c, _, tea=tea: c.update(tea, "Likes green tea", ["food", "travel"]))
            results.append({name: db.sql(query) for name, query in views.items()})
        assert results[0] == results[1]
    assert results[1]["memory_churn"][0] == ("alice", 2, 1, 0, 2, 2, 0.5)


# -- Postgres only -------------------------------------------------------------------------------------


def test_placeholders_translate_outside_quotes_only() -> None:
    query = "SELECT '?', \"a?b\", ? -- why?\n, 10 % 3 WHERE x LIKE '%?'"
    assert to_numbered(query + " AND y = ?") == (
        "SELECT '?', \"a?b\", $1 -- why?\n, 10 % 3 WHERE x LIKE '%?' AND y = $2"
    )


def test_bad_dsns_are_config_errors_without_the_password() -> None:
    with pytest.raises(ConfigError, match="dsn must be"):
        PostgresDb(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not parse") as parse:
        PostgresDb("host=x password=hunter2 broken")
    assert "hunter2" not in str(parse.value)


def test_an_unreachable_server_is_a_storage_error_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot reach Postgres") as err:
        PostgresDb(f"host={tmp_path} port=1 user=u password=hunter2 dbname=x", timeout=2)
    assert "hunter2" not in str(err.value) and "password=***" in str(err.value)


def test_a_closed_store_says_so(pg: PostgresDb) -> None:
    pg.close()
    with pytest.raises(StorageError, match="closed"):
        current(pg, ALICE)


def test_migrations_run_once_and_refuse_newer_and_foreign(empty_postgres_dsn: str) -> None:
    with PostgresDb(empty_postgres_dsn) as db:
        with db.reading() as conn:
            assert isinstance(conn, PgConnection)
            assert apply_pg_migrations(conn) == []  # current: nothing runs twice

            def broken(c: PgConnection) -> None:
                c.execute("CREATE TABLE half_done (x INTEGER)")
                raise RuntimeError("boom")

            with pytest.raises(RuntimeError, match="boom"):
                apply_pg_migrations(conn, [*PG_MIGRATIONS, ("m999_broken", broken)])
            assert db.sql("SELECT to_regclass('half_done') IS NULL") == [(True,)]
            apply_pg_migrations(conn, [*PG_MIGRATIONS, ("m999_future", lambda c: None)])
    with pytest.raises(StorageError, match="newer memlayer"):
        PostgresDb(empty_postgres_dsn)
    with psycopg.connect(empty_postgres_dsn, autocommit=True) as raw:
        raw.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public; CREATE TABLE invoices (id INT)")
    with pytest.raises(StorageError, match="not memlayer's"):
        PostgresDb(empty_postgres_dsn)
    with PostgresDb(empty_postgres_dsn, allow_foreign=True) as beside:
        assert beside.sql("SELECT count(*) FROM invoices") == [(0,)]


def test_a_duplicate_add_is_skipped_and_reported(pg: PostgresDb) -> None:
    add(pg, ALICE, "Likes tea")
    again = edit(pg, ALICE, lambda c, _: (c.add("likes   TEA", []), c.add("Writes Rust", []), c.add("Writes rust", [])))
    assert [m.memory for m in again.skipped] == ["likes   TEA", "Writes rust"]
    assert [c.memory for c in again.changes] == ["Writes Rust"]
    assert [m.memory for m in again.current_versions()] == ["Writes Rust"]
    assert sorted(current(pg, ALICE)) == ["Likes tea", "Writes Rust"]
    assert pg.sql("SELECT count(*) FROM memory_events") == [(2,)]
    assert add(pg, BOB, "Likes tea").user_id == BOB  # per user: Bob may like tea too


def test_an_update_onto_another_current_fact_is_refused(pg: PostgresDb) -> None:
    tea = add(pg, ALICE, "Likes tea")
    add(pg, ALICE, "Likes coffee")
    with pytest.raises(StorageError, match="already another current memory"):
        edit(pg, ALICE, lambda c, _: c.update(tea, "Likes Coffee", []))
    assert sorted(current(pg, ALICE)) == ["Likes coffee", "Likes tea"]
    edit(pg, ALICE, lambda c, _: c.update(tea, "Likes tea", ["food"]))  # its own text: a new version
    assert current(pg, ALICE, topics=["food"]) == ["Likes tea"]


def test_threads_share_a_small_pool_without_deadlock(pg: PostgresDb) -> None:
    # max_size=2 and four threads, each writing inside a read as the manager does: each thread's
    # blocks share its one connection, so no thread waits for a second.
    def work(worker: int) -> None:
        for i in range(20):
            with pg.reading() as conn:
                mem.list_memories(conn, f"user{worker % 2}", limit=5)
                add(pg, f"user{worker % 2}", f"fact {worker}-{i}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [len(current(pg, f"user{u}")) for u in (0, 1)] == [40, 40]


def test_rewrite_vacuums_and_full_rewrites_the_files(fresh_postgres_dsn: str) -> None:
    with PostgresDb(fresh_postgres_dsn, vacuum_full=True) as db:
        add(db, ALICE, "Alice's secret")
        add(db, BOB, "Bob's fact")
        with db.reading() as conn:
            before = conn.execute("SELECT pg_relation_filenode('memories')").fetchall()
            assert dialect(conn) == "postgres"
        with db.transaction() as conn:
            mem.erase_user(conn, ALICE)
        with pytest.raises(StorageError, match="inside a transaction"), db.transaction():
            db.rewrite()
        db.rewrite()
        with db.reading() as conn:
            assert conn.execute("SELECT pg_relation_filenode('memories')").fetchall() != before
        assert current(db, BOB) == ["Bob's fact"]
