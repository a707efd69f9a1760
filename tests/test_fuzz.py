"""Arbitrary values at every public method and CLI command (issue 11: keep it fixed).

For every call: the result is a success or a `MemlayerError` with a message, never another
exception; a failure changes no row of any table; no call changes a row of another user. The
store is a real DuckDB file. The agent's model is the scripted one (it answers every run with one
line), so runs that pass the checks succeed without a network; the manager has no model, so an
extraction that passes the checks stops at a `ConfigError` before any model call. Bounded: a few
hundred examples, derandomised, so it runs in a few seconds and the same way every time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from memlayer import Agent, DuckDb, MemlayerError, MemoryManager
from memlayer._internal.cli import app
from memlayer.testing import scripted_model

VICTIM, FUZZER = "victim", "fuzzer"


@dataclass
class Tally:
    """What one fuzz test saw, owned by that test: the figures the issue asks for, checked at its end."""

    calls: int = 0
    failures: int = 0


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.binary(max_size=8),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=4)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.one_of(st.none(), st.text(max_size=3)), max_size=2),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.dates(),
    st.sampled_from(["", " ", "\udc80", "x\x00y", "a" * 2000, "2024-01-01", "1999-12-31T23:59:59Z", "chess"]),
)
user_ids = st.one_of(st.just(FUZZER), junk).filter(lambda u: u != VICTIM)


def _tables(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    names = [r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
    return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


def _victims(tables: dict[str, list[tuple[Any, ...]]]) -> list[Any]:
    return [(n, row) for n, rows in tables.items() for row in rows if VICTIM in row]


def _check(tally: Tally, before: dict[str, Any], after: dict[str, Any], error: BaseException | None) -> None:
    tally.calls += 1
    if error is not None:
        tally.failures += 1
        if not isinstance(error, MemlayerError) or not str(error).strip():
            raise AssertionError(f"not a MemlayerError with a message: {error!r}") from error
        if after != before:
            raise AssertionError(f"a failed call ({error}) changed the store")
    if _victims(after) != _victims(before):
        raise AssertionError("a call changed another user's rows")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MemoryManager, Agent, str]]:
    with DuckDb(tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb") as db:
        manager = MemoryManager(db=db)
        manager.add_user_memory("Victim's secret", user_id=VICTIM, topics=["private"])
        mine = manager.add_user_memory("Fuzzer's fact", user_id=FUZZER)
        agent = Agent(model="openai:gpt-4o-mini", db=db, memory_manager=manager)
        with scripted_model(*(["Fine."] * 1000)):
            agent.run("hello", user_id=VICTIM, session_id="victim-session")
            yield manager, agent, mine.memory_id


def _ids(memory_id: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(memory_id), junk)


Call = Callable[[MemoryManager, Agent, str, st.DataObject], Any]

CALLS: dict[str, Call] = {
    "add_user_memory": lambda m, a, i, d: m.add_user_memory(
        d.draw(junk), d.draw(user_ids), topics=d.draw(junk), agent_id=d.draw(junk), session_id=d.draw(junk),
        input=d.draw(junk),
    ),
    "replace_user_memory": lambda m, a, i, d: m.replace_user_memory(
        d.draw(_ids(i)), d.draw(junk), d.draw(user_ids), topics=d.draw(junk)
    ),
    "delete_user_memory": lambda m, a, i, d: m.delete_user_memory(d.draw(_ids(i)), d.draw(user_ids)),
    "clear_user_memories": lambda m, a, i, d: m.clear_user_memories(d.draw(user_ids)),
    "erase_user": lambda m, a, i, d: m.erase_user(d.draw(user_ids)),
    "get_user_memories": lambda m, a, i, d: m.get_user_memories(
        d.draw(user_ids), topics=d.draw(junk), agent_id=d.draw(junk), limit=d.draw(junk), as_of=d.draw(junk)
    ),
    "get_user_memory": lambda m, a, i, d: m.get_user_memory(d.draw(_ids(i)), d.draw(user_ids), as_of=d.draw(junk)),
    "search_user_memories": lambda m, a, i, d: m.search_user_memories(
        d.draw(junk), user_id=d.draw(user_ids), limit=d.draw(junk), agent_id=d.draw(junk), topics=d.draw(junk),
        since=d.draw(junk), until=d.draw(junk), as_of=d.draw(junk),
    ),
    "search_user_memories (Agno's)": lambda m, a, i, d: m.search_user_memories(
        d.draw(junk), d.draw(junk), d.draw(junk), d.draw(user_ids)
    ),
    "optimize_memories": lambda m, a, i, d: m.optimize_memories(
        d.draw(user_ids), strategy=d.draw(junk), apply=d.draw(junk)
    ),
    "get_memory_history": lambda m, a, i, d: m.get_memory_history(d.draw(_ids(i)), d.draw(user_ids)),
    "get_user_events": lambda m, a, i, d: m.get_user_events(d.draw(user_ids)),
    "create_user_memories": lambda m, a, i, d: m.create_user_memories(
        d.draw(st.one_of(junk, st.lists(st.one_of(junk, st.fixed_dictionaries({"role": junk, "content": junk}))))),
        d.draw(user_ids), agent_id=d.draw(junk), session_id=d.draw(junk),
    ),
    "update_memory_task": lambda m, a, i, d: m.update_memory_task(d.draw(junk), d.draw(user_ids)),
    "reembed_memories": lambda m, a, i, d: m.reembed_memories(batch_size=d.draw(junk)),
    "agent.run": lambda m, a, i, d: a.run(d.draw(junk), user_id=d.draw(user_ids), session_id=d.draw(junk)),
    "agent.get_user_memories": lambda m, a, i, d: a.get_user_memories(d.draw(user_ids), limit=d.draw(junk)),
    "agent.search_user_memories": lambda m, a, i, d: a.search_user_memories(d.draw(junk), d.draw(user_ids)),
    "agent.get_session_messages": lambda m, a, i, d: a.get_session_messages(d.draw(junk), d.draw(user_ids)),
    "agent.get_user_sessions": lambda m, a, i, d: a.get_user_sessions(d.draw(user_ids)),
    "db.upsert_user_memory": lambda m, a, i, d: m.db.upsert_user_memory(d.draw(junk)),
    "db.delete_user_memories": lambda m, a, i, d: m.db.delete_user_memories(d.draw(junk), d.draw(user_ids)),
    "db.get_user_memories": lambda m, a, i, d: m.db.get_user_memories(
        d.draw(user_ids), topics=d.draw(junk), agent_id=d.draw(junk), limit=d.draw(junk)
    ),
    "db.sql": lambda m, a, i, d: m.db.sql(d.draw(junk), d.draw(junk)),
    "query": lambda m, a, i, d: __import__("memlayer").query(d.draw(junk), db=m.db, params=d.draw(junk)),
    "DuckDb": lambda m, a, i, d: DuckDb(d.draw(st.one_of(st.none(), st.integers(), st.binary(max_size=4)))),
}  # fmt: skip


def test_public_methods_fail_cleanly_and_write_nothing(world: tuple[MemoryManager, Agent, str]) -> None:
    manager, agent, memory_id = world
    tally = Tally()

    @settings(
        max_examples=150, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )  # fmt: skip
    @given(name=st.sampled_from(sorted(CALLS)), data=st.data())
    def call_once(name: str, data: st.DataObject) -> None:
        with manager.db.reading() as conn:
            before = _tables(conn)
        error: BaseException | None = None
        try:
            CALLS[name](manager, agent, memory_id, data)
        except Exception as exc:
            error = exc
        with manager.db.reading() as conn:
            after = _tables(conn)
        _check(tally, before, after, error)

    call_once()
    print(f"\nfuzz, public methods: {tally}")
    # The junk must reach the checks: most calls fail (and were checked to write nothing), some pass.
    assert tally.calls >= 100 and tally.failures >= tally.calls // 2 and tally.failures < tally.calls


CLI_WORDS = st.one_of(st.text(max_size=10), st.sampled_from(["", " ", "-1", "0", "nan", "--yes", "x" * 300]))


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("fuzzcli") / "cli.duckdb"
    with DuckDb(path) as db:
        MemoryManager(db=db).add_user_memory("Victim's secret", user_id=VICTIM)
    return str(path)


def _file_tables(path: str) -> dict[str, Any]:
    with duckdb.connect(path, read_only=True) as conn:
        return _tables(conn)


COMMANDS = ["add", "list", "search", "history", "forget", "sql", "stats", "export", "import", "extract"]


def test_cli_commands_fail_cleanly_and_write_nothing(cli_db: str) -> None:
    tally = Tally()

    @settings(
        max_examples=30, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )  # fmt: skip
    @given(command=st.sampled_from(COMMANDS), args=st.lists(CLI_WORDS, max_size=3), user=CLI_WORDS)
    def run_once(command: str, args: list[str], user: str) -> None:
        if user == VICTIM:
            user = FUZZER
        before = _file_tables(cli_db)
        argv = [command, *args, "--db", cli_db]
        if command not in ("sql", "stats", "import"):
            argv += ["--user", user]
        if command == "export":
            argv[1:1] = [str(Path(cli_db).parent / f"export-{tally.calls}")]
        result = CliRunner().invoke(app, argv, input="")
        after = _file_tables(cli_db)
        tally.calls += 1
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"memlayer {argv!r} raised {result.exception!r}") from result.exception
        if result.exit_code != 0:
            tally.failures += 1
            assert after == before, f"memlayer {argv!r} failed and changed the store"
        assert _victims(after) == _victims(before)

    run_once()
    print(f"\nfuzz, CLI: {tally}")
    assert tally.calls >= 20 and tally.failures >= tally.calls // 2
