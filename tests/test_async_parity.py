"""Every public sync method has an async twin with the same parameters, and both do the same thing.

The signature half walks the whole public API (each class exported by ``memlayer``). The behaviour
half drives one extraction, one agent run with a tool round and one streamed run through both
drivers of `memlayer._internal.flow`. Why a scripted model and not cassettes: the sync and async runs must get
identical replies in one test, and a recording would need both calls recorded twice.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

import memlayer
from memlayer import Agent, DuckDb, MemoryManager, MemoryTools
from memlayer.testing import scripted_model, tool_calls

SYNC_ONLY = {"join"}  # wiring, not I/O a caller waits on
MODEL = "openai:gpt-4o-mini"  # never dialled: the scripted model answers


def _public_classes() -> list[type]:
    return [obj for name in memlayer.__all__ if inspect.isclass(obj := getattr(memlayer, name))]


def _public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in vars(cls).items()
        if inspect.isfunction(member) and not name.startswith("_") and name not in SYNC_ONLY
    }


def _pairs(cls: type) -> list[tuple[str, str]]:
    methods = _public(cls)
    return [(name[1:], name) for name in methods if name.startswith("a") and name[1:] in methods]


def test_the_api_has_async_twins() -> None:
    twinned = {cls.__name__ for cls in _public_classes() if _pairs(cls)}
    assert {"MemoryManager", "Agent", "Tool"} <= twinned


@pytest.mark.parametrize("cls", [c for c in _public_classes() if _pairs(c)], ids=lambda c: c.__name__)
def test_every_sync_method_has_an_async_twin_with_the_same_parameters(cls: type) -> None:
    methods = _public(cls)
    if cls in (MemoryManager, Agent):  # their whole API is twinned; Tool's ``schema`` is not I/O
        sync = sorted(n for n in methods if not (n.startswith("a") and n[1:] in methods))
        assert [f"a{n}" for n in sync if f"a{n}" not in methods] == []
    for name, twin_name in _pairs(cls):
        twin = methods[twin_name]
        assert inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin), twin_name
        mine, theirs = inspect.signature(methods[name]), inspect.signature(twin)
        assert list(theirs.parameters.values()) == list(mine.parameters.values()), name
        assert not any(p.kind is p.VAR_KEYWORD for p in mine.parameters.values()), f"{name} takes **kwargs"


def _extraction_replies() -> list[Any]:
    return [{"operations": [{"op": "add", "memory": "Lives in Lisbon", "topics": ["home"]}]}]


def _memories(db: DuckDb, user: str) -> list[tuple[str, list[str]]]:
    return [(m.memory, m.topics) for m in MemoryManager(db=db).get_user_memories(user)]


async def test_extraction_does_the_same_in_both_drivers() -> None:
    results = []
    for driver in ("sync", "async"):
        db = DuckDb()
        manager = MemoryManager(model=MODEL, db=db, mode="json_schema", provider_retries=0, embedder="lexical")
        with scripted_model(*_extraction_replies()) as model:
            if driver == "sync":
                result = manager.create_user_memories("I live in Lisbon", user_id="ana")
            else:
                result = await manager.acreate_user_memories("I live in Lisbon", user_id="ana")
        results.append(([(c.operation, c.memory) for c in result.changes], _memories(db, "ana"), model.requests))
    (sync_changes, sync_rows, sync_requests), (async_changes, async_rows, async_requests) = results
    assert sync_changes == async_changes == [("add", "Lives in Lisbon")]
    assert sync_rows == async_rows == [("Lives in Lisbon", ["home"])]
    assert [r["messages"] for r in sync_requests] == [r["messages"] for r in async_requests]


async def test_an_agent_run_with_a_tool_round_does_the_same_in_both_drivers() -> None:
    outcomes = []
    for driver in ("sync", "async"):
        db = DuckDb()
        manager = MemoryManager(db=db, embedder="lexical")
        agent = Agent(model=MODEL, db=db, memory_manager=manager, tools=[MemoryTools()])
        replies = [tool_calls(("add_memory", {"memory": "Has a cat named Miso"})), "Noted, Miso it is."]
        with scripted_model(*replies):
            if driver == "sync":
                response = agent.run("Remember my cat Miso", user_id="ana", session_id="s1")
            else:
                response = await agent.arun("Remember my cat Miso", user_id="ana", session_id="s1")
        messages = agent.get_session_messages("s1", user_id="ana")
        # The tool's reply names the new memory's id, which differs between the two runs.
        stored = [(m.role, re.sub(r"[0-9a-f-]{36}", "<id>", m.content or ""), m.tool_name) for m in messages]
        outcomes.append((response.content, [t.name for t in response.tool_calls], stored, _memories(db, "ana")))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "Noted, Miso it is."
    assert outcomes[0][3] == [("Has a cat named Miso", [])]


async def test_a_streamed_run_yields_the_same_text_in_both_drivers() -> None:
    texts = []
    for driver in ("sync", "async"):
        agent = Agent(model=MODEL, db=DuckDb())
        with scripted_model("Hello there, Ana."):
            if driver == "sync":
                stream = agent.run_stream("hi", user_id="ana")
                chunks = list(stream)
                assert stream.response is not None and stream.response.content == "Hello there, Ana."
            else:
                chunks = [c async for c in agent.arun_stream("hi", user_id="ana") if isinstance(c, str)]
        texts.append("".join(chunks))
    assert texts == ["Hello there, Ana.", "Hello there, Ana."]
