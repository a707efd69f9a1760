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
    with pytest.raises(ConfigError, match="different stores"):
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
    from memlayer._internal.analytics.query import _open_read_only

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


# -- bad arguments: a ConfigError that names the argument, and nothing written ------------------------

ALL_TABLES = ("memories", "memory_events", "llm_calls", "sessions", "runs", "messages", "memory_embeddings")


def dump(db: DuckDb) -> dict[str, list[tuple[object, ...]]]:
    return {table: db.sql(f"SELECT * FROM {table} ORDER BY ALL") for table in ALL_TABLES}


def test_one_topic_given_as_a_string_is_one_topic(db: DuckDb) -> None:
    manager = MemoryManager(db=db)
    memory = manager.add_user_memory("Plays chess", user_id="u1", topics="chess")  # type: ignore[arg-type]
    assert memory.topics == ["chess"]
    assert [m.topics for m in manager.get_user_memories(user_id="u1", topics="chess")] == [["chess"]]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda m: m.add_user_memory("x", user_id="u1", topics=[1]), id="topics=[1]"),
        pytest.param(lambda m: m.add_user_memory("x", user_id="u1", topics=[None]), id="topics=[None]"),
        pytest.param(lambda m: m.add_user_memory("x", user_id="u1", topics=5), id="topics=5"),
        pytest.param(lambda m: m.add_user_memory("x", user_id="u1", agent_id=5), id="agent_id=5"),
        pytest.param(lambda m: m.add_user_memory("x", user_id="u1", session_id=[]), id="session_id=[]"),
        pytest.param(lambda m: m.add_user_memory("x", user_id="u1", input=b"x"), id="input=bytes"),
        pytest.param(lambda m: m.add_user_memory("\udc80", user_id="u1"), id="surrogate memory"),
        pytest.param(lambda m: m.add_user_memory("x", user_id="\udc80"), id="surrogate user_id"),
        pytest.param(lambda m: m.get_user_memories(user_id="u1", limit=-1), id="limit=-1"),
        pytest.param(lambda m: m.get_user_memories(user_id="u1", limit=10**20), id="limit=10**20"),
        pytest.param(lambda m: m.get_user_memories(user_id="u1", limit="5"), id="limit='5'"),
        pytest.param(lambda m: m.get_user_memories(user_id="u1", limit=True), id="limit=True"),
        pytest.param(lambda m: m.get_user_memory(5, user_id="u1"), id="memory_id=5"),
        pytest.param(lambda m: m.get_user_memory(["a"], user_id="u1"), id="memory_id=list"),
        pytest.param(lambda m: m.get_user_memories(user_id="\udc80"), id="read with surrogate user_id"),
        pytest.param(lambda m: m.get_user_memories(user_id="u1", as_of=20240101), id="as_of=int"),
        pytest.param(lambda m: m.get_user_memories(user_id="u1", as_of="yesterday"), id="as_of='yesterday'"),
        pytest.param(lambda m: m.search_user_memories("x", user_id="u1", since="x"), id="since='x'"),
        pytest.param(lambda m: m.search_user_memories("x", user_id="u1", until=[]), id="until=[]"),
        pytest.param(lambda m: m.search_user_memories("x", user_id="u1", limit=10**20), id="search limit=10**20"),
        pytest.param(lambda m: m.replace_user_memory(None, "x", user_id="u1"), id="replace memory_id=None"),
        pytest.param(lambda m: m.delete_user_memory({}, user_id="u1"), id="delete memory_id={}"),
        pytest.param(lambda m: m.create_user_memories(123, user_id="u1"), id="messages=123"),
        pytest.param(lambda m: m.create_user_memories(None, user_id="u1"), id="messages=None"),
        pytest.param(lambda m: m.create_user_memories(b"hi", user_id="u1"), id="messages=bytes"),
        pytest.param(lambda m: m.create_user_memories([{"role": "bot", "content": "x"}], "u1"), id="role=bot"),
        pytest.param(lambda m: m.create_user_memories([{"role": "user", "content": None}], "u1"), id="content=None"),
        pytest.param(lambda m: m.create_user_memories([{"role": "user"}], "u1"), id="no content"),
        pytest.param(lambda m: m.create_user_memories([None], "u1"), id="message None"),
        pytest.param(lambda m: m.create_user_memories([{"content": "x", "created_at": "soon"}], "u1"), id="bad time"),
        pytest.param(lambda m: m.create_user_memories(["I am \udc80"], "u1"), id="surrogate message"),
        pytest.param(lambda m: m.create_user_memories(["hi"], "u1", agent_id=5), id="extraction agent_id=5"),
        pytest.param(lambda m: m.update_memory_task(7, "u1"), id="task=7"),
    ],
)
def test_bad_arguments_are_config_errors_that_write_nothing_and_call_no_model(db: DuckDb, call: object) -> None:
    manager = MemoryManager(model=MODEL, db=db, mode="json_schema", provider_retries=0)
    manager.add_user_memory("Likes tea", user_id="u1")
    before = dump(db)
    with scripted_model() as model, pytest.raises(ConfigError):
        call(manager)  # type: ignore[operator]
    assert model.calls == 0
    assert dump(db) == before


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": "2"}, {"provider_retries": -1}, {"candidate_limit": 0}, {"db": 5}, {"additional_instructions": 5}],
)
def test_bad_manager_options_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MemoryManager(model=MODEL, **kwargs)  # type: ignore[arg-type]


def test_query_needs_a_db_it_can_read() -> None:
    from memlayer import query

    with pytest.raises(ConfigError, match="db must be a DuckDb or the path"):
        query("SELECT 1", db=5)  # type: ignore[arg-type]


def test_times_are_accepted_in_the_forms_people_pass(db: DuckDb) -> None:
    import datetime as dt

    manager = MemoryManager(db=db)
    manager.add_user_memory("Likes tea", user_id="u1")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    forms = [later, later.replace(tzinfo=None), later.date() + dt.timedelta(days=1), later.isoformat(),
             later.strftime("%Y-%m-%dT%H:%M:%SZ"), later.astimezone(dt.timezone(dt.timedelta(hours=-5)))]  # fmt: skip
    for when in forms:
        assert [m.memory for m in manager.get_user_memories(user_id="u1", as_of=when)] == ["Likes tea"], when
        assert [m.memory for m in manager.search_user_memories("tea", user_id="u1", as_of=when)] == ["Likes tea"]
        assert manager.search_user_memories("tea", user_id="u1", since=when) == []
    assert manager.get_user_memories(user_id="u1", as_of="2024-01-01") == []
    assert manager.get_user_memories(user_id="u1", as_of=dt.date(2024, 1, 1)) == []


def test_a_failing_custom_embedder_is_a_model_error_and_the_call_is_recorded(db: DuckDb) -> None:
    import numpy as np

    from memlayer import ModelError

    class Broken:
        name, local = "broken-embedder", True

        def embed_documents(self, texts: object) -> object:
            raise RuntimeError("GPU on fire")

        def embed_query(self, text: str) -> object:
            return np.ones(4, dtype=np.float32)

    manager = MemoryManager(model=MODEL, db=db, mode="json_schema", provider_retries=0, embedder=Broken())
    with scripted_model({"operations": [{"op": "add", "memory": "Likes tea", "topics": [], "reason": "said so"}]}):
        with pytest.raises(ModelError, match="GPU on fire"):
            manager.create_user_memories("I like tea", user_id="u1")
    assert db.sql("SELECT purpose, status, user_id FROM llm_calls") == [("extraction", "error", "u1")]
    assert db.sql("SELECT count(*) FROM memories") == [(0,)]


def test_user_id_is_required_in_every_manager_signature() -> None:
    import inspect

    for name, method in inspect.getmembers(MemoryManager, inspect.isfunction):
        params = inspect.signature(method).parameters
        if name.startswith("_") or "user_id" not in params or name.endswith("create_user_memories"):
            continue
        if name.endswith("search_user_memories"):
            # Agno's positional order (query, limit, retrieval_method, user_id) gives it a default;
            # without one it is a ConfigError before anything is read (test_agno_compat).
            assert params["user_id"].annotation == "str | None", name
            continue
        assert params["user_id"].default is inspect.Parameter.empty, name
        assert params["user_id"].annotation == "str", name
    # create_user_memories takes messages or message=: its overloads require user_id.
    import sys

    if sys.version_info < (3, 11):  # typing.get_overloads is 3.11+
        return
    from typing import get_overloads

    assert len(get_overloads(MemoryManager.create_user_memories)) == 3  # messages, message=, background=True
    for overload in get_overloads(MemoryManager.create_user_memories):
        assert inspect.signature(overload).parameters["user_id"].default is inspect.Parameter.empty


def test_a_failed_import_leaves_no_database_behind(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from memlayer._internal.cli import app

    fresh = tmp_path / "fresh.duckdb"
    result = CliRunner().invoke(app, ["import", str(tmp_path / "nonexistent"), "--db", str(fresh)])
    assert result.exit_code == 1
    assert list(tmp_path.iterdir()) == []
    result = CliRunner().invoke(app, ["add", " ", "--user", "u1", "--db", str(fresh)])  # add takes no --model now
    assert result.exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_attempts_count_every_request_sent_and_provider_retries_means_retries(db: DuckDb) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from memlayer import ModelError

    hits: list[int] = []

    class Failing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hits.append(1)
            body = b'{"error": {"message": "boom", "type": "server_error"}}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        for retries in (0, 2):
            hits.clear()
            manager = MemoryManager(model="openai:x", db=db, api_base=base, api_key="k", provider_retries=retries)
            with pytest.raises(ModelError) as caught:
                manager.create_user_memories("I like tea", user_id="u1")
            assert (len(hits), caught.value.attempts) == (retries + 1, retries + 1)
    finally:
        server.shutdown()
        server.server_close()
    assert db.sql("SELECT attempts, status FROM llm_calls ORDER BY attempts") == [(1, "error"), (3, "error")]
