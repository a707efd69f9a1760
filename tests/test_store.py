"""The store on a real DuckDB file: versions, reads in the past, history, isolation, erasure, locks."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from memlayer import ConfigError, DatabaseLockedError, DuckDb, MemoryManager, StorageError, UserMemory
from memlayer._internal.db.migrations import MIGRATIONS, apply_migrations

ALICE, BOB = "alice", "bob"


@pytest.fixture
def manager(db: DuckDb) -> MemoryManager:
    return MemoryManager(db=db)  # direct edits and reads need no model


def test_edits_are_versions_and_events(manager: MemoryManager) -> None:
    memory = manager.add_user_memory("Likes tea", user_id=ALICE, topics=["food"], agent_id="chef")
    assert (memory.version, memory.topics, memory.agent_id, memory.recorded_until) == (1, ["food"], "chef", None)
    t1 = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.002)
    replaced = manager.replace_user_memory(memory.memory_id, "Likes green tea", user_id=ALICE)
    assert (replaced.memory_id, replaced.version, replaced.topics) == (memory.memory_id, 2, ["food"])
    assert replaced.created_at == memory.created_at and replaced.updated_at > memory.updated_at
    t2 = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.002)
    manager.delete_user_memory(memory.memory_id, user_id=ALICE)

    assert manager.get_user_memories(user_id=ALICE) == []
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE, as_of=t1)] == ["Likes tea"]
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE, as_of=t2)] == ["Likes green tea"]
    events = manager.get_memory_history(memory.memory_id, user_id=ALICE)
    assert [(e.operation, e.old_memory, e.new_memory, e.source) for e in events] == [
        ("add", None, "Likes tea", "api"),
        ("update", "Likes tea", "Likes green tea", "api"),
        ("delete", "Likes green tea", None, "api"),
    ]


def test_reads_filter_and_order(manager: MemoryManager) -> None:
    tea = manager.add_user_memory("Likes tea", user_id=ALICE, topics=["food"], agent_id="chef")
    code = manager.add_user_memory("Writes Rust", user_id=ALICE, topics=["programming"], agent_id="coder")
    manager.add_user_memory("Likes coffee", user_id=BOB, topics=["food"])
    # In the order stored, as Agno returns them; order="newest": most recently changed first.
    assert [m.memory_id for m in manager.get_user_memories(user_id=ALICE)] == [tea.memory_id, code.memory_id]
    newest = manager.get_user_memories(user_id=ALICE, order="newest")
    assert [m.memory_id for m in newest] == [code.memory_id, tea.memory_id]
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE, topics=["food"])] == ["Likes tea"]
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE, agent_id="coder")] == ["Writes Rust"]
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE, limit=1)] == ["Likes tea"]
    assert [m.memory for m in manager.search_user_memories("do you like tea?", user_id=ALICE, limit=1)] == ["Likes tea"]
    # A query with no word to match (short words, stopwords, numbers) lists the newest.
    for query in ("hi", "is it? 42", ""):
        assert [m.memory for m in manager.search_user_memories(query, user_id=ALICE)] == ["Writes Rust", "Likes tea"]


def test_users_are_isolated(manager: MemoryManager) -> None:
    bobs = manager.add_user_memory("Bob's secret", user_id=BOB)
    manager.add_user_memory("Alice's fact", user_id=ALICE)
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE)] == ["Alice's fact"]
    assert manager.get_user_memory(bobs.memory_id, user_id=ALICE) is None
    assert manager.search_user_memories("secret", user_id=ALICE) == [
        m for m in manager.get_user_memories(user_id=ALICE)
    ]
    assert manager.get_memory_history(bobs.memory_id, user_id=ALICE) == []
    with pytest.raises(ConfigError, match="has no current memory"):
        manager.replace_user_memory(bobs.memory_id, "hacked", user_id=ALICE)
    with pytest.raises(ConfigError, match="is not free"):
        manager.replace_user_memory(bobs.memory_id, UserMemory(memory="hacked"), user_id=ALICE)
    assert manager.delete_user_memory(bobs.memory_id, user_id=ALICE) is False  # Agno's: nothing to delete
    assert manager.clear_user_memories(user_id=ALICE) == 1
    assert [m.memory for m in manager.get_user_memories(user_id=BOB)] == ["Bob's secret"]


def test_clear_keeps_history_erase_removes_everything(manager: MemoryManager, db: DuckDb) -> None:
    for i in range(150):  # more than any page size: every one goes
        manager.add_user_memory(f"fact {i}", user_id=ALICE)
    manager.add_user_memory("Bob's fact", user_id=BOB)
    assert manager.clear_user_memories(user_id=ALICE) == 150
    assert manager.get_user_memories(user_id=ALICE) == []
    assert db.sql("SELECT count(*) FROM memory_events WHERE user_id = ?", [ALICE]) == [(300,)]
    assert manager.erase_user(user_id=ALICE) == {
        "memories": 150,
        "memory_embeddings": 0,  # this suite's managers search by keywords (MEMLAYER_EMBEDDER in conftest)
        "memory_events": 300,
        "llm_calls": 0,
        "messages": 0,
        "runs": 0,
        "sessions": 0,
        "memory_jobs": 0,
    }
    for table in ("memories", "memory_events", "llm_calls", "messages", "runs", "sessions", "memory_jobs"):
        assert db.sql(f"SELECT count(*) FROM {table} WHERE user_id = ?", [ALICE]) == [(0,)]
    assert [m.memory for m in manager.get_user_memories(user_id=BOB)] == ["Bob's fact"]


def test_memories_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "agents.duckdb"
    with DuckDb(db_file=path) as first:
        MemoryManager(db=first).add_user_memory("Likes tea", user_id=ALICE)
    with DuckDb(db_file=path) as second:
        assert [m.memory for m in MemoryManager(db=second).get_user_memories(user_id=ALICE)] == ["Likes tea"]
        assert second.sql("SELECT name FROM schema_migrations") == [(name,) for name, _ in MIGRATIONS]


def test_in_memory_database_works() -> None:
    with DuckDb(":memory:") as db:
        MemoryManager(db=db).add_user_memory("Likes tea", user_id=ALICE)
        assert db.sql("SELECT memory FROM current_memories") == [("Likes tea",)]


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "m.duckdb"))

    def broken(c: duckdb.DuckDBPyConnection) -> None:
        c.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        apply_migrations(conn, [*MIGRATIONS, ("m999_broken", broken)])
    assert conn.execute("SELECT name FROM schema_migrations").fetchall() == [(n,) for n, _ in MIGRATIONS]
    tables = {row[0] for row in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "half_done" not in tables and "memories" in tables
    assert apply_migrations(conn) == []  # already current: nothing runs twice


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.duckdb"
    conn = duckdb.connect(str(path))
    apply_migrations(conn, [*MIGRATIONS, ("m999_future", lambda c: None)])
    conn.close()
    with pytest.raises(StorageError, match="newer memlayer"):
        DuckDb(db_file=path)


def test_a_file_locked_by_another_process_says_so(db: DuckDb) -> None:
    script = (
        "import sys\nfrom memlayer import DuckDb, DatabaseLockedError\n"
        "try:\n    DuckDb(db_file=sys.argv[1])\nexcept DatabaseLockedError as e:\n    print(e)\n    sys.exit(3)\n"
    )
    run = subprocess.run([sys.executable, "-c", script, db.db_file], capture_output=True, text=True, timeout=60)
    assert run.returncode == 3, run.stderr
    assert "is locked by another process" in run.stdout and "give each process its own db_file" in run.stdout
    assert DatabaseLockedError.__mro__[1] is StorageError


def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "ro.duckdb"
    DuckDb(db_file=path).close()
    with DuckDb(db_file=path, read_only=True) as ro:
        with pytest.raises(StorageError, match="read_only"):
            MemoryManager(db=ro).add_user_memory("Likes tea", user_id=ALICE)
        assert MemoryManager(db=ro).get_user_memories(user_id=ALICE) == []


def test_threads_share_one_store_safely(manager: MemoryManager) -> None:
    def write(worker: int) -> None:
        for i in range(25):
            manager.add_user_memory(f"fact {worker}-{i}", user_id=f"user{worker % 2}")
            manager.get_user_memories(user_id=f"user{worker % 2}", limit=5)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(manager.get_user_memories(user_id="user0")) == 50
    assert len(manager.get_user_memories(user_id="user1")) == 50


def test_closed_store_says_so(tmp_path: Path) -> None:
    db = DuckDb(db_file=tmp_path / "c.duckdb")
    db.close()
    with pytest.raises(StorageError, match="closed"):
        MemoryManager(db=db).get_user_memories(user_id=ALICE)


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_memory_text_is_refused(manager: MemoryManager, text: object) -> None:
    with pytest.raises(ConfigError, match="memory must be"):
        manager.add_user_memory(text, user_id=ALICE)  # type: ignore[arg-type]


def test_threads_adding_one_text_at_once_store_it_once(manager: MemoryManager) -> None:
    # No lookup before the INSERT: the INSERT's own guard keeps the second writer from repeating it.
    barrier = threading.Barrier(4)
    got: list[str] = []

    def add(worker: int) -> None:
        barrier.wait()
        got.append(manager.add_user_memory(["Likes tea", "likes  TEA"][worker % 2], user_id=ALICE).memory_id)

    threads = [threading.Thread(target=add, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1
    assert [m.memory_id for m in manager.get_user_memories(user_id=ALICE)] == got[:1]
    assert [e.operation for e in manager.get_user_events(ALICE)] == ["add"]


def test_a_lone_add_of_a_held_text_is_skipped_by_the_store(db: DuckDb) -> None:
    from memlayer._internal import clock
    from memlayer._internal.db.changes import ChangeSet, Provenance

    held = MemoryManager(db=db).add_user_memory("Likes tea", user_id=ALICE)
    changes = ChangeSet(Provenance(ALICE, "api", clock.now()))
    with db.transaction() as conn:
        changes.add("likes TEA ", [])
        changes.write(conn)
    assert [m.memory for m in changes.skipped] == ["likes TEA "] and changes.changes == []
    assert db.sql("SELECT memory_id FROM memories") == [(held.memory_id,)]
    assert db.sql("SELECT count(*) FROM memory_events") == [(1,)]


def test_a_direct_add_that_fails_in_its_transaction_writes_nothing(db: DuckDb) -> None:
    manager = MemoryManager(db=db)
    manager.add_user_memory("Likes tea", user_id=ALICE)
    # A vector of another dimension than the stored ones fails the write after the memory and event rows.
    with db.transaction() as conn:
        conn.execute("INSERT INTO embedders VALUES ('other-model', 3, now()::TIMESTAMP)")
    vectors = MemoryManager(db=db, embedder=_Fixed())
    with pytest.raises(ConfigError, match="other-model"):
        vectors.add_user_memory("Writes Rust", user_id=ALICE)
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE)] == ["Likes tea"]
    assert [e.new_memory for e in manager.get_user_events(ALICE)] == ["Likes tea"]


class _Fixed:
    """An embedder of one fixed 2-d vector, local: enough to reach the vector write."""

    name, local = "fixed-2d", True

    def embed_documents(self, texts: list[str]) -> object:
        import numpy as np

        return np.ones((len(texts), 2), dtype=np.float32)

    def embed_query(self, text: str) -> object:
        return self.embed_documents([text])[0]
