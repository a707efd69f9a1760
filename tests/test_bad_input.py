"""Bad and hostile input through the public API (issue 11): a typed error, nothing written, nothing leaked.

Every store is a real DuckDB file; where a model is needed it is the scripted one (the tests need a
given move from it, or a failure on demand), going through LiteLLM as usual.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from memlayer import Agent, ConfigError, DuckDb, MemoryManager, StorageError
from memlayer.testing import scripted_model

MODEL = "openai:gpt-4o-mini"  # never dialled: the scripted model answers


def test_a_manager_made_without_a_db_writes_to_the_agents_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.duckdb"
    with DuckDb(path) as db:
        loose = MemoryManager(model=MODEL)
        Agent(model=MODEL, db=db, memory_manager=loose)
        loose.add_user_memory("Likes tea", user_id="u1")
        assert [m.memory for m in loose.get_user_memories(user_id="u1")] == ["Likes tea"]
        assert [m.memory for m in loose.search_user_memories("tea", user_id="u1")] == ["Likes tea"]
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.execute("SELECT user_id, memory FROM memories").fetchall() == [("u1", "Likes tea")]


def test_a_used_manager_cannot_be_moved_to_another_db(db: DuckDb) -> None:
    used = MemoryManager(model=MODEL)
    used.add_user_memory("Likes tea", user_id="u1")
    with pytest.raises(ConfigError, match="different DuckDb"):
        Agent(model=MODEL, db=db, memory_manager=used)
    assert [m.memory for m in used.get_user_memories(user_id="u1")] == ["Likes tea"]


def test_a_session_is_claimed_when_its_first_run_starts(db: DuckDb) -> None:
    agent = Agent(model=MODEL, db=db)
    refused: list[str] = []

    def bob_runs_meanwhile(_: object) -> str:
        try:
            agent.run("what is alice's PIN?", user_id="bob", session_id="shared")
        except ConfigError as exc:
            refused.append(str(exc))
        return "Noted."

    with scripted_model(bob_runs_meanwhile) as model:
        agent.run("my PIN is 1234", user_id="alice", session_id="shared")
    assert model.calls == 1  # bob's run never reached the model
    assert refused == ["session 'shared' belongs to another user; use a new session_id"]
    assert db.sql("SELECT DISTINCT user_id FROM sessions UNION SELECT DISTINCT user_id FROM messages") == [("alice",)]
    assert agent.get_session_messages("shared", user_id="bob") == []
    assert [m.content for m in agent.get_session_messages("shared", user_id="alice")] == ["my PIN is 1234", "Noted."]


ESCAPES = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM '/etc/passwd'",
    "DESCRIBE '/etc/passwd'",
    "SELECT * FROM read_parquet('https://example.com/x.parquet')",
    "WITH m AS (SELECT * FROM read_blob('/etc/hostname')) SELECT * FROM m",
    "SELECT (SELECT count(*) FROM read_csv_auto('/etc/passwd')) FROM memories",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM other.main.memories",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_analytics_sql_reads_the_store_and_nothing_else(tmp_path: Path, sql: str) -> None:
    from memlayer import query

    path = tmp_path / "store.duckdb"
    with DuckDb(path) as db:
        MemoryManager(db=db).add_user_memory("Likes tea", user_id="u1")
        for run in (lambda: query(sql, db=db), lambda: db.sql(sql)):
            with pytest.raises(ConfigError):
                run()
        with db.reading() as conn:
            loaded = conn.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
        assert ("httpfs",) not in loaded
    with pytest.raises(ConfigError):
        query(sql, db=path)  # opened by path: the sandboxed connection refuses it too
    assert query("SELECT memory FROM current_memories", db=path).rows == [("Likes tea",)]


def test_a_file_opened_for_analytics_has_no_external_access(tmp_path: Path) -> None:
    from memlayer.analytics import _open_read_only

    path = tmp_path / "store.duckdb"
    DuckDb(path).close()
    conn = _open_read_only(path)
    try:
        with pytest.raises(duckdb.PermissionException):
            conn.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(duckdb.Error, match="lock"):
            conn.execute("SET enable_external_access = true")
    finally:
        conn.close()


def test_db_sql_is_read_only(db: DuckDb) -> None:
    manager = MemoryManager(db=db)
    manager.add_user_memory("Likes tea", user_id="u1")
    for sql in ("DELETE FROM memories", "UPDATE memories SET memory = 'x'", "DROP TABLE memories", "CHECKPOINT"):
        with pytest.raises(ConfigError, match="read-only"):
            db.sql(sql)
    assert [m.memory for m in manager.search_user_memories("tea", user_id="u1")] == ["Likes tea"]
    assert db.sql("SELECT count(*) FROM memory_events") == [(1,)]


def test_erasure_leaves_no_byte_of_the_user_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "erase.duckdb"
    ana = "ana@example.com"
    with DuckDb(path) as db:
        manager = MemoryManager(model=MODEL, db=db, mode="json_schema", provider_retries=0)
        first = manager.add_user_memory("Has HIV, diagnosed 2019", user_id=ana, topics=["HIV"], input="I have HIV")
        manager.replace_user_memory(first.memory_id, "Has HIV, on treatment", user_id=ana)
        manager.add_user_memory("Lives in Porto", user_id="bo")
        agent = Agent(model=MODEL, db=db, memory_manager=manager)
        with scripted_model("Noted about the HIV clinic."):
            agent.run("My HIV clinic moved", user_id=ana, session_id="ana-session")
        before = path.stat().st_size
        manager.erase_user(ana)
        assert manager.get_user_memories(user_id=ana) == []
        assert [m.memory for m in manager.get_user_memories(user_id="bo")] == ["Lives in Porto"]
        assert [m.memory for m in manager.search_user_memories("Porto", user_id="bo")] == ["Lives in Porto"]
        manager.add_user_memory("Plays chess", user_id="bo")  # the store is usable after the rewrite
    assert before > 0
    for file in (path, Path(f"{path}.wal")):
        data = file.read_bytes() if file.exists() else b""
        assert [word for word in (b"HIV", ana.encode(), b"ana-session", b"Porto") if word in data] == (
            [b"Porto"] if file == path else []
        )
    with DuckDb(path) as db:
        assert db.sql("SELECT memory FROM memories ORDER BY memory") == [("Lives in Porto",), ("Plays chess",)]


def _tables(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return [row[0] for row in conn.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]


def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    clash, other = tmp_path / "clash.duckdb", tmp_path / "other.duckdb"
    with duckdb.connect(str(clash)) as conn:
        conn.execute("CREATE TABLE memories (id INTEGER)")
    with duckdb.connect(str(other)) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    for path, tables in ((clash, ["memories"]), (other, ["orders"])):
        with pytest.raises(StorageError, match="not memlayer's"):
            DuckDb(path)
        assert _tables(path) == tables
    with DuckDb(other, allow_foreign=True) as db:  # asked for: memlayer's tables go beside the others
        MemoryManager(db=db).add_user_memory("Likes tea", user_id="u1")
    assert {"orders", "memories", "schema_migrations"} <= set(_tables(other))


@pytest.mark.parametrize("bad", [None, 5, "", " ", b"x.duckdb", "a\x00b", "\udc80.duckdb", 1.5])
def test_a_db_file_that_is_not_a_path_is_refused(bad: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="db_file"):
        DuckDb(bad)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["/etc/hostname/x.duckdb", "/proc/nope/x.duckdb"])
def test_a_db_file_in_a_folder_that_cannot_exist_is_a_storage_error(path: str) -> None:
    with pytest.raises(StorageError, match="cannot create the folder"):
        DuckDb(path)
