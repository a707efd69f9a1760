"""Code written for Agno's memory API, with only its imports swapped, against a real DuckDB.

Written from Agno's documentation and public signatures (not copied from its tests): each test is the
call an Agno user writes and the outcome Agno documents, or memlayer's documented difference (README,
"Coming from Agno").

Why a scripted model and a stub server, not cassettes: these tests pin what memlayer does with Agno's
arguments and a *given* reply (which operations the schema admits, which request fields are sent, what
an optimisation reply does to the store); a recorded model cannot be made to give those replies on
demand. The scripted model still goes through LiteLLM and Instructor; the stub is a real HTTP server
that refuses unknown request fields as api.openai.com does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memlayer import Agent, ConfigError, DuckDb, MemoryManager, MemoryTools, UserMemory
from memlayer.memory import MemoryOptimizationStrategyType
from memlayer.testing import scripted_model, tool_calls

from .openai_stub import CHAT_FIELDS, OpenAIStub, chat_reply, openai_stub

MODEL = "openai:gpt-4o-mini"


@pytest.fixture
def strict_stub() -> Iterator[OpenAIStub]:
    with openai_stub() as server:
        server.strict = True
        yield server


def _json_manager(db: DuckDb, **options: Any) -> MemoryManager:
    # JSON_SCHEMA mode: LiteLLM's mock_response is message content, which is what that mode parses.
    return MemoryManager(model=MODEL, db=db, mode="json_schema", provider_retries=0, **options)


def _ops(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"operations": list(operations)}


# -- keyword arguments: implemented, LiteLLM's, or refused; never forwarded by accident -------------------


def test_agno_manager_options_never_reach_the_provider(strict_stub: OpenAIStub, tmp_path: Path) -> None:
    db = DuckDb(tmp_path / "agno.duckdb")
    manager = MemoryManager(
        model="openai:stub-model",
        api_base=strict_stub.api_base,
        api_key="stub-key",
        db=db,
        system_message="You remember facts about the user.",
        memory_capture_instructions="Capture the user's favourite drinks.",
        additional_instructions="Ignore greetings.",
        add_memories=True,
        update_memories=True,
        delete_memories=False,
        clear_memories=False,
        debug_mode=False,
        temperature=0.1,
    )
    strict_stub.script(chat_reply(_ops({"op": "add", "memory": "Drinks green tea", "topics": ["drinks"]})))
    result = manager.create_user_memories("I drink green tea every morning.", user_id="ana")

    assert result.skipped == []
    assert [m.memory for m in manager.get_user_memories(user_id="ana")] == ["Drinks green tea"]
    (request,) = strict_stub.requests
    assert set(request.body) <= CHAT_FIELDS
    assert request.body["temperature"] == 0.1
    system = request.body["messages"][0]["content"]
    assert system.startswith("You remember facts about the user.")
    assert "Capture the user's favourite drinks." in system and "Ignore greetings." in system
    assert "You keep an assistant's long-term memory" not in system  # the rules were replaced


def test_agno_agent_options_shape_the_prompt_and_never_reach_the_provider(
    strict_stub: OpenAIStub, tmp_path: Path
) -> None:
    db = DuckDb(tmp_path / "agno.duckdb")
    agent = Agent(
        model="openai:stub-model",
        api_base=strict_stub.api_base,
        api_key="stub-key",
        db=db,
        description="You are a tea sommelier.",
        instructions=["Answer in one sentence."],
        expected_output="One sentence.",
        markdown=True,
        telemetry=False,
        monitoring=False,
        debug_mode=False,
        enable_agentic_memory=True,
        tool_mode="tools",
    )
    strict_stub.script(
        chat_reply(tool_args={"task": "remember they drink green tea"}, tool_name="update_user_memory"),
        chat_reply(_ops({"op": "add", "memory": "Drinks green tea", "topics": ["drinks"]})),
        chat_reply("Noted: green tea."),
    )
    response = agent.run("I drink green tea every morning.", user_id="ana")

    assert response.content == "Noted: green tea."
    assert [m.memory for m in agent.get_user_memories(user_id="ana")] == ["Drinks green tea"]
    assert all(set(r.body) <= CHAT_FIELDS for r in strict_stub.requests)
    system = strict_stub.requests[0].body["messages"][0]["content"]
    assert system.startswith("You are a tea sommelier.\n\nAnswer in one sentence.")
    assert "One sentence." in system and "Use markdown" in system


@pytest.mark.parametrize(
    ("make", "name", "suggestion"),
    [
        (lambda: MemoryManager(model=MODEL, sytem_message="x"), "sytem_message", "system_message"),
        (lambda: MemoryManager(model=MODEL, temprature=0.2), "temprature", "temperature"),
        (lambda: Agent(model=MODEL, descripton="x"), "descripton", "description"),
        (lambda: Agent(model=MODEL, add_datetime_to_context=True), "add_datetime_to_context", None),
    ],
)
def test_an_unknown_keyword_is_refused_by_name(make: Any, name: str, suggestion: str | None) -> None:
    with pytest.raises(ConfigError, match=repr(name)) as caught:
        make()
    if suggestion:
        assert f"did you mean {suggestion!r}?" in str(caught.value)


def test_model_kwargs_is_the_explicit_way_to_send_a_provider_field(tmp_path: Path) -> None:
    manager = MemoryManager(model=MODEL, model_kwargs={"extra_body": {"cache": True}}, top_p=0.5)
    assert manager.model is not None and manager.model.extra == {"top_p": 0.5, "extra_body": {"cache": True}}
    with pytest.raises(ConfigError, match="model_kwargs must be a dict"):
        MemoryManager(model=MODEL, model_kwargs=["top_p"])  # type: ignore[arg-type]


def test_restricted_operations_are_absent_from_the_reply_schema(db: DuckDb) -> None:
    manager = _json_manager(db, update_memories=False, delete_memories=False)
    first = manager.add_user_memory("Lives in Paris", user_id="ana")
    # The model tries to update the stored memory: not a valid reply, so Instructor asks again.
    update = _ops({"op": "update", "target": "m1", "memory": "Lives in Porto"})
    with scripted_model(update, _ops({"op": "add", "memory": "Lives in Porto"})) as model:
        manager.create_user_memories("I moved to Porto.", user_id="ana")

    assert model.calls == 2
    assert "Allowed operations: add (no others)." in model.system_prompt(0)
    current = {m.memory for m in manager.get_user_memories(user_id="ana")}
    assert current == {first.memory, "Lives in Porto"}
    with pytest.raises(ConfigError, match="nothing could change"):
        MemoryManager(model=MODEL, add_memories=False, update_memories=False, delete_memories=False)


@pytest.fixture
def memlayer_logger() -> Iterator[logging.Logger]:
    """debug_mode sets the "memlayer" logger's level and handler (as Agno's does); restored after."""
    logger = logging.getLogger("memlayer")
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers


def test_debug_mode_logs_each_extraction(
    db: DuckDb, caplog: pytest.LogCaptureFixture, memlayer_logger: logging.Logger
) -> None:
    manager = _json_manager(db, debug_mode=True)
    assert memlayer_logger.level == logging.DEBUG
    with caplog.at_level(logging.DEBUG, logger="memlayer"), scripted_model(_ops({"op": "add", "memory": "Likes tea"})):
        result = manager.create_user_memories("I like tea", user_id="ana")
    assert any("Likes tea" in record.getMessage() for record in caplog.records)
    # Agno returns the model's text; memlayer a typed result, whose str() says what changed.
    assert str(result) == f"add {result.changes[0].memory_id}: Likes tea" and len(result) == 1


# -- UserMemory and the manager's direct edits ---------------------------------------------------------------


def test_user_memory_round_trips_through_to_dict_and_from_dict() -> None:
    memory = UserMemory(memory="Likes tea", topics=["drinks"], memory_id="m-1", created_at=1_700_000_000)
    data = memory.to_dict()
    assert data == {
        "memory_id": "m-1",
        "memory": "Likes tea",
        "topics": ["drinks"],
        "created_at": "2023-11-14T22:13:20+00:00",
        "updated_at": "2023-11-14T22:13:20+00:00",
    }
    assert UserMemory.from_dict(data) == memory.model_copy(update={"updated_at": memory.created_at})


def test_add_user_memory_with_a_user_memory_returns_its_id(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    record = UserMemory(memory="The user's name is Ana", topics=["name"], input="I'm Ana")
    memory_id = mm.add_user_memory(memory=record, user_id="ana")

    assert isinstance(memory_id, str) and record.memory_id == memory_id and record.user_id == "ana"
    (stored,) = mm.get_user_memories(user_id="ana")
    assert (stored.memory_id, stored.memory, stored.topics, stored.input) == (
        memory_id,
        "The user's name is Ana",
        ["name"],
        "I'm Ana",
    )
    assert mm.get_user_memory(memory_id, user_id="ana") == stored
    assert stored.to_dict()["memory"] == "The user's name is Ana"


def test_a_chosen_id_is_kept_and_adding_it_again_is_an_update(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    assert mm.add_user_memory(memory=UserMemory(memory="Lives in Paris", memory_id="home"), user_id="ana") == "home"
    assert mm.add_user_memory(memory=UserMemory(memory="Lives in Porto", memory_id="home"), user_id="ana") == "home"

    assert [(m.memory_id, m.memory, m.version) for m in mm.get_user_memories(user_id="ana")] == [
        ("home", "Lives in Porto", 2)
    ]
    history = mm.get_memory_history("home", user_id="ana")
    assert [(e.operation, e.old_memory, e.new_memory) for e in history] == [
        ("add", None, "Lives in Paris"),
        ("update", "Lives in Paris", "Lives in Porto"),
    ]


def test_replace_user_memory_with_a_user_memory_upserts_by_id(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    memory_id = mm.add_user_memory(memory=UserMemory(memory="Likes tea"), user_id="ana")
    assert mm.replace_user_memory(memory_id, memory=UserMemory(memory="Likes green tea"), user_id="ana") == memory_id
    # As in Agno, an id the user has no memory by is stored under that id.
    assert mm.replace_user_memory("new-id", memory=UserMemory(memory="Has a cat"), user_id="ana") == "new-id"

    assert [(m.memory_id, m.memory) for m in mm.get_user_memories(user_id="ana")] == [
        (memory_id, "Likes green tea"),
        ("new-id", "Has a cat"),
    ]


def test_another_users_id_cannot_be_taken_or_changed(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    bobs = mm.add_user_memory(memory=UserMemory(memory="Bob's PIN is 4321"), user_id="bob")
    for attempt in (
        lambda: mm.add_user_memory(memory=UserMemory(memory="hacked", memory_id=bobs), user_id="eve"),
        lambda: mm.replace_user_memory(bobs, memory=UserMemory(memory="hacked"), user_id="eve"),
    ):
        with pytest.raises(ConfigError, match="is not free"):
            attempt()
    assert mm.delete_user_memory(bobs, user_id="eve") is False
    assert [m.memory for m in mm.get_user_memories(user_id="bob")] == ["Bob's PIN is 4321"]
    assert mm.get_user_memories(user_id="eve") == []
    assert db.sql("SELECT count(*) FROM memory_events WHERE user_id = 'eve'") == [(0,)]


def test_delete_of_an_unknown_id_does_nothing_as_in_agno(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    memory_id = mm.add_user_memory(memory=UserMemory(memory="Likes tea"), user_id="ana")
    assert mm.delete_user_memory("no-such-id", user_id="ana") is False
    assert mm.delete_user_memory(memory_id=memory_id, user_id="ana") is True
    assert mm.delete_user_memory(memory_id=memory_id, user_id="ana") is False
    assert mm.get_user_memories(user_id="ana") == []


def test_user_id_is_required_and_the_error_says_why(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    with pytest.raises(ConfigError, match="no shared 'default' user"):
        mm.add_user_memory(memory=UserMemory(memory="Likes tea"), user_id=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no shared 'default' user"):
        mm.search_user_memories(limit=3, retrieval_method="last_n")
    assert db.sql("SELECT count(*) FROM memories") == [(0,)]


def test_get_user_memories_in_the_order_stored(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    ids = [mm.add_user_memory(memory=UserMemory(memory=text), user_id="ana") for text in ("One", "Two", "Three")]
    mm.replace_user_memory(ids[0], memory=UserMemory(memory="One, changed"), user_id="ana")

    assert [m.memory for m in mm.get_user_memories(user_id="ana")] == ["One, changed", "Two", "Three"]
    assert [m.memory for m in mm.get_user_memories(user_id="ana", order="newest")] == ["One, changed", "Three", "Two"]


def test_clear_forgets_every_users_memories_and_keeps_their_history(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    mm.add_user_memory(memory=UserMemory(memory="Likes tea"), user_id="ana")
    mm.add_user_memory(memory=UserMemory(memory="Likes coffee"), user_id="bob")
    assert mm.clear() == 2
    assert mm.get_user_memories(user_id="ana") == [] and mm.get_user_memories(user_id="bob") == []
    assert [e.operation for e in mm.get_user_events(user_id="ana")] == ["add", "delete"]


# -- search_user_memories: hybrid by default, and Agno's retrieval methods -----------------------------------


def _three(mm: MemoryManager) -> list[str]:
    return [
        mm.add_user_memory(memory=UserMemory(memory=text), user_id="ana")
        for text in ("Drinks green tea", "Works as a nurse", "Has a dog named Rex")
    ]


def test_last_n_and_first_n_as_in_agno(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    _three(mm)
    last = mm.search_user_memories(limit=2, retrieval_method="last_n", user_id="ana")
    first = mm.search_user_memories(limit=2, retrieval_method="first_n", user_id="ana")
    assert [m.memory for m in last] == ["Works as a nurse", "Has a dog named Rex"]
    assert [m.memory for m in first] == ["Drinks green tea", "Works as a nurse"]
    # No query and no method: Agno's default, last_n; every memory without a limit.
    assert len(mm.search_user_memories(user_id="ana")) == 3


def test_a_query_alone_is_memlayers_hybrid_search(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    _three(mm)
    assert [m.memory for m in mm.search_user_memories(query="tea", limit=1, user_id="ana")] == ["Drinks green tea"]
    assert [m.memory for m in mm.search_user_memories("tea", 1, user_id="ana")] == ["Drinks green tea"]
    assert [m.memory for m in mm.search_user_memories("tea", "ana")][:1] == ["Drinks green tea"]  # memlayer's form
    semantic = mm.search_user_memories(query="tea", retrieval_method="semantic", user_id="ana")  # Agno's tests' name
    assert [m.memory for m in semantic][:1] == ["Drinks green tea"]


def test_agentic_search_picks_by_alias_and_an_invented_id_cannot_validate(db: DuckDb) -> None:
    mm = _json_manager(db)
    ids = _three(mm)
    invented = {"memory_ids": [ids[1]]}  # a real id, but not one of the aliases the model was shown
    with scripted_model(invented, {"memory_ids": ["m3", "m1", "m3"]}) as model:
        found = mm.search_user_memories(query="pets and drinks", retrieval_method="agentic", user_id="ana")

    assert model.calls == 2  # the invented id failed validation and was asked again
    assert [m.memory for m in found] == ["Has a dog named Rex", "Drinks green tea"]
    assert "m1: Drinks green tea" in model.prompt(0)
    assert db.sql("SELECT purpose, user_id FROM llm_calls") == [("search", "ana")]


def test_agentic_search_never_shows_another_users_memories(db: DuckDb) -> None:
    mm = _json_manager(db)
    mm.add_user_memory(memory=UserMemory(memory="Bob's PIN is 4321"), user_id="bob")
    _three(mm)
    with scripted_model({"memory_ids": ["m1"]}) as model:
        mm.search_user_memories(query="PIN", retrieval_method="agentic", limit=1, user_id="ana")
    assert "4321" not in model.prompt()


def test_bad_search_arguments_are_config_errors(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    for call in (
        lambda: mm.search_user_memories(query="tea", retrieval_method="vector", user_id="ana"),  # type: ignore[arg-type]
        lambda: mm.search_user_memories(retrieval_method="agentic", user_id="ana"),
        lambda: mm.search_user_memories("tea", "ana", user_id="ana"),
        lambda: mm.search_user_memories(limit=-1, retrieval_method="last_n", user_id="ana"),
    ):
        with pytest.raises(ConfigError):
            call()


# -- optimize_memories: one call, versioned merges ------------------------------------------------------------


def _overlapping(mm: MemoryManager) -> list[str]:
    return [
        mm.add_user_memory(memory=UserMemory(memory=text, topics=["drinks"]), user_id="ana")
        for text in ("Likes tea", "Drinks green tea every morning", "Works as a nurse")
    ]


MERGE = {"merges": [{"sources": ["m1", "m2"], "memory": "Drinks green tea every morning", "topics": ["drinks"]}]}


def test_optimize_memories_merges_with_one_call_and_keeps_history(db: DuckDb) -> None:
    mm = _json_manager(db)
    tea, green, nurse = _overlapping(mm)
    with scripted_model(MERGE) as model:
        after = mm.optimize_memories(user_id="ana", strategy=MemoryOptimizationStrategyType.SUMMARIZE)

    assert model.calls == 1
    assert [(m.memory_id, m.memory) for m in after] == [
        (tea, "Drinks green tea every morning"),
        (nurse, "Works as a nurse"),
    ]
    assert [m.memory for m in mm.get_user_memories(user_id="ana")] == [m.memory for m in after]
    assert [(e.operation, e.reason) for e in mm.get_memory_history(green, user_id="ana")] == [
        ("add", None),
        ("delete", f"merged into {tea}"),
    ]
    assert [e.operation for e in mm.get_memory_history(tea, user_id="ana")] == ["add", "update"]
    assert db.sql("SELECT purpose FROM llm_calls") == [("optimize",)]


def test_optimize_memories_without_apply_writes_no_memory(db: DuckDb) -> None:
    mm = _json_manager(db)
    tea, _, nurse = _overlapping(mm)
    before = mm.get_user_memories(user_id="ana")
    with scripted_model(MERGE):
        proposed = mm.optimize_memories(user_id="ana", apply=False)

    assert [(m.memory_id, m.memory) for m in proposed] == [
        (tea, "Drinks green tea every morning"),
        (nurse, "Works as a nurse"),
    ]
    assert all(isinstance(m, UserMemory) for m in proposed)
    assert mm.get_user_memories(user_id="ana") == before


def test_optimize_memories_refuses_a_memory_in_two_merges(db: DuckDb) -> None:
    mm = _json_manager(db)
    _overlapping(mm)
    twice = {"merges": [{"sources": ["m1", "m2"], "memory": "a"}, {"sources": ["m2", "m3"], "memory": "b"}]}
    with scripted_model(twice, {"merges": []}) as model:
        after = mm.optimize_memories(user_id="ana")
    assert model.calls == 2 and len(after) == 3


def test_optimize_memories_bad_input_changes_nothing(db: DuckDb) -> None:
    mm = _json_manager(db)
    _overlapping(mm)
    with pytest.raises(ConfigError, match="strategy"):
        mm.optimize_memories(user_id="ana", strategy="cluster")
    with pytest.raises(ConfigError, match="no shared 'default' user"):
        mm.optimize_memories(user_id=None)  # type: ignore[arg-type]
    assert db.sql("SELECT count(*) FROM llm_calls") == [(0,)]
    assert len(mm.get_user_memories(user_id="ana")) == 3


async def test_the_async_twins_do_the_same(db: DuckDb) -> None:
    mm = _json_manager(db)
    tea, _, nurse = _overlapping(mm)
    with scripted_model(MERGE):
        after = await mm.aoptimize_memories(user_id="ana")
    assert [m.memory_id for m in after] == [tea, nurse]
    last = await mm.asearch_user_memories(limit=1, retrieval_method="last_n", user_id="ana")
    assert [m.memory_id for m in last] == [tea]
    assert await mm.aclear() == 2


# -- MemoryTools, the agent's manager, import paths -----------------------------------------------------------


def test_memory_tools_with_db_think_and_analyze(db: DuckDb) -> None:
    agent = Agent(model=MODEL, tools=[MemoryTools(db=db, enable_think=True, enable_analyze=True)])
    assert agent.db is db
    assert [t.name for t in agent.tools] == [
        "think", "get_memories", "search_memories", "add_memory", "update_memory", "delete_memory", "analyze",
    ]  # fmt: skip
    script = tool_calls(
        ("think", {"thought": "They like tea: store it."}),
        ("add_memory", {"memory": "Likes tea", "topics": ["drinks"]}),
        ("analyze", {"analysis": "Stored one memory."}),
    )
    with scripted_model(script, "Noted."):
        response = agent.run("I like tea", user_id="ana")
    assert [(t.name, t.failed) for t in response.tool_calls] == [
        ("think", False), ("add_memory", False), ("analyze", False),
    ]  # fmt: skip
    assert response.tool_calls[0].result == "Memory Thoughts:\n- They like tea: store it."
    assert [m.memory for m in agent.get_user_memories(user_id="ana")] == ["Likes tea"]
    with pytest.raises(ConfigError, match="different stores"):
        Agent(model=MODEL, db=DuckDb(), tools=[MemoryTools(db=db)])


def test_an_agent_without_memory_options_reads_memories(db: DuckDb) -> None:
    MemoryManager(db=db).add_user_memory(memory=UserMemory(memory="Likes tea"), user_id="ana")
    agent = Agent(model=MODEL, db=db)
    assert agent.memory_manager is None
    assert [m.memory for m in agent.get_user_memories(user_id="ana")] == ["Likes tea"]


def test_agnos_import_paths() -> None:
    import memlayer
    from memlayer.db import PostgresDb as DbPostgres
    from memlayer.db.duckdb import DuckDb as DuckDbPath
    from memlayer.db.postgres import PostgresDb as PostgresPath
    from memlayer.db.schemas import UserMemory as SchemaUserMemory
    from memlayer.memory import MemoryManager as MemoryPath
    from memlayer.memory import UserMemory as MemoryUserMemory
    from memlayer.tools.memory import MemoryTools as ToolsPath

    assert DuckDbPath is DuckDb and MemoryPath is MemoryManager and ToolsPath is MemoryTools
    assert PostgresPath is DbPostgres is memlayer.PostgresDb
    assert SchemaUserMemory is MemoryUserMemory is UserMemory is memlayer.UserMemory


def test_an_empty_temp_file_is_a_new_database(tmp_path: Path) -> None:
    # Agno's test fixtures pass a NamedTemporaryFile: an empty file, which DuckDB alone refuses.
    empty = tmp_path / "fixture.db"
    empty.touch()
    mm = MemoryManager(db=DuckDb(db_file=str(empty)))
    assert mm.add_user_memory(memory=UserMemory(memory="Likes tea"), user_id="ana")
    assert empty.stat().st_size > 0


def test_create_user_memories_with_agnos_message(db: DuckDb) -> None:
    from memlayer.models.message import Message

    mm = _json_manager(db)
    with scripted_model(_ops({"op": "add", "memory": "Plays basketball"})):
        result = mm.create_user_memories(messages=[Message(role="user", content="I play basketball")], user_id="ana")
    assert len(result) > 0
    assert [m.memory for m in mm.get_user_memories("ana")] == ["Plays basketball"]


def test_agnos_model_classes_are_model_strings() -> None:
    from memlayer.models.anthropic import Claude
    from memlayer.models.openai import OpenAIChat

    spec = OpenAIChat(id="gpt-4o-mini", temperature=0.2, api_key="sk-test")
    assert (str(spec), spec.extra, spec.api_key) == ("openai:gpt-4o-mini", {"temperature": 0.2}, "sk-test")
    assert str(Claude(id="claude-sonnet-4-5")) == "anthropic:claude-sonnet-4-5"
    with pytest.raises(ConfigError, match="'reasoning'; did you mean 'reasoning_effort'"):
        OpenAIChat(id="gpt-4o", reasoning=True)


def test_postgres_db_url_with_sqlalchemys_driver_suffix(fresh_postgres_dsn: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    from memlayer._internal.db.postgres import PostgresDb

    parts = conninfo_to_dict(fresh_postgres_dsn)
    url = f"postgresql+psycopg://{parts['user']}@/{parts['dbname']}?host={parts['host']}&port={parts['port']}"
    with PostgresDb(db_url=url) as db:
        mm = MemoryManager(db=db)
        memory_id = mm.add_user_memory(memory=UserMemory(memory="Likes tea"), user_id="ana")
        assert [m.memory_id for m in mm.get_user_memories(user_id="ana")] == [memory_id]
    with pytest.raises(ConfigError, match="one dsn"):
        PostgresDb()


# -- Agno's db-level memory methods ---------------------------------------------------------------------------


def test_db_level_memory_methods(db: DuckDb) -> None:
    mm = MemoryManager(db=db)
    assert mm.search_user_memories("tea", user_id="ana") == []  # loads the user's search index
    record = UserMemory(memory="Drinks green tea", topics=["drinks"], user_id="ana", memory_id="tea")
    stored = db.upsert_user_memory(memory=record)
    db.upsert_user_memory(UserMemory(memory="Works as a nurse", topics=["work", "drinks"], user_id="ana"))

    assert (stored.memory_id, record.memory_id) == ("tea", "tea")
    assert [m.memory for m in db.get_user_memories(user_id="ana", topics=["work"])] == ["Works as a nurse"]
    assert db.get_all_memory_topics(user_id="ana") == ["drinks", "work"]
    # The manager's loaded index was told: the search finds what the db wrote (by keywords: no vector).
    assert [m.memory_id for m in mm.search_user_memories("green tea", limit=1, user_id="ana")] == ["tea"]

    db.upsert_user_memory(UserMemory(memory="Drinks black tea", user_id="ana", memory_id="tea"))
    assert [e.operation for e in mm.get_memory_history("tea", user_id="ana")] == ["add", "update"]
    with pytest.raises(ConfigError, match="is not free"):
        db.upsert_user_memory(UserMemory(memory="hacked", user_id="eve", memory_id="tea"))
    assert db.delete_user_memory("tea", user_id="eve") is False
    assert db.get_user_memory("tea", user_id="eve") is None

    assert db.delete_user_memory("tea", user_id="ana") is True
    assert mm.search_user_memories("tea", user_id="ana", min_score=0.5) == []
    assert db.clear_memories() == 1
    assert db.get_user_memories(user_id="ana") == []
    with pytest.raises(ConfigError, match="no shared 'default' user"):
        db.upsert_user_memory(UserMemory(memory="Likes tea"))
