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

from memlayer import Agent, ConfigError, DuckDb, MemoryManager
from memlayer.testing import scripted_model

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


def test_debug_mode_logs_each_extraction(db: DuckDb, caplog: pytest.LogCaptureFixture) -> None:
    manager = _json_manager(db, debug_mode=True)
    with caplog.at_level(logging.DEBUG, logger="memlayer"), scripted_model(_ops({"op": "add", "memory": "Likes tea"})):
        manager.create_user_memories("I like tea", user_id="ana")
    assert any("Likes tea" in record.getMessage() for record in caplog.records)
