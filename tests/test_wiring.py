"""Every way of wiring an Agent to its store: the memories it writes are in the file, read back by a
fresh process-like reader (a new DuckDb on the same path, a new MemoryManager).

Why a scripted model: each wiring needs the same extraction reply, on demand; the store is a real file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memlayer import Agent, ConfigError, DuckDb, MemoryManager
from memlayer.testing import scripted_model

MODEL = "openai:gpt-4o-mini"  # never dialled
EXTRACTION = {"operations": [{"op": "add", "memory": "Lives in Porto", "topics": ["home"]}]}


def _run_and_read_back(path: Path, agent: Agent) -> list[str]:
    with scripted_model("Nice, Porto!", EXTRACTION):
        response = agent.run("I live in Porto", user_id="ana")
        assert agent.wait_for_memories("ana")  # the queued extraction, while the scripted reply is there
    assert response.memory_error is None
    agent.db.close()
    with DuckDb(path) as reopened:
        return [m.memory for m in MemoryManager(db=reopened).get_user_memories("ana")]


def _manager(**kwargs: object) -> MemoryManager:
    return MemoryManager(mode="json_schema", provider_retries=0, embedder="lexical", **kwargs)  # type: ignore[arg-type]


def test_agent_and_manager_on_one_db(tmp_path: Path) -> None:
    db = DuckDb(tmp_path / "a.duckdb")
    agent = Agent(model=MODEL, db=db, memory_manager=_manager(model=MODEL, db=db), update_memory_on_run=True)
    assert _run_and_read_back(tmp_path / "a.duckdb", agent) == ["Lives in Porto"]


def test_a_manager_without_db_or_model_joins_the_agent(tmp_path: Path) -> None:
    db = DuckDb(tmp_path / "a.duckdb")
    manager = _manager()
    # The scripted reply is message content, which JSON-schema mode parses; the agent's model carries it.
    agent = Agent(model=MODEL, db=db, memory_manager=manager, update_memory_on_run=True, mode="json_schema")
    assert agent.memory_manager is manager and manager.db is db
    assert str(manager.model) == MODEL
    assert _run_and_read_back(tmp_path / "a.duckdb", agent) == ["Lives in Porto"]


def test_a_manager_keeps_its_own_model(tmp_path: Path) -> None:
    db = DuckDb(tmp_path / "a.duckdb")
    manager = _manager(model="openai:gpt-4o", db=db)
    Agent(model=MODEL, db=db, memory_manager=manager, update_memory_on_run=True)
    assert str(manager.model) == "openai:gpt-4o"


def test_an_agent_without_db_uses_its_managers(tmp_path: Path) -> None:
    db = DuckDb(tmp_path / "a.duckdb")
    agent = Agent(model=MODEL, memory_manager=_manager(model=MODEL, db=db), update_memory_on_run=True)
    assert agent.db is db
    assert _run_and_read_back(tmp_path / "a.duckdb", agent) == ["Lives in Porto"]


def test_an_agent_with_only_a_db_makes_its_manager_there(tmp_path: Path) -> None:
    agent = Agent(model=MODEL, db=DuckDb(tmp_path / "a.duckdb"), update_memory_on_run=True, mode="json_schema")
    assert agent.memory_manager is not None and agent.memory_manager.db is agent.db
    assert _run_and_read_back(tmp_path / "a.duckdb", agent) == ["Lives in Porto"]


def test_two_dbs_are_refused_and_change_nothing(tmp_path: Path) -> None:
    mine, theirs = DuckDb(tmp_path / "a.duckdb"), DuckDb(tmp_path / "b.duckdb")
    manager = _manager(db=theirs)
    with pytest.raises(ConfigError, match="different stores"):
        Agent(model=MODEL, db=mine, memory_manager=manager)
    assert manager.db is theirs and manager.model is None
