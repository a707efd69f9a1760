"""One set of bounds on a memory's text and topics (memlayer._internal.checks), on every way a memory is written:
the Python API, an agent's memory tools, the MCP tools and the extraction's response schema.

A real DuckDB store; no model is called (each bound is checked before anything is sent or written).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from memlayer import ConfigError, DuckDb, MemoryManager
from memlayer._internal.agent.memory_tools import MemoryTools
from memlayer._internal.checks import MAX_MEMORY_CHARS, MAX_TOPIC_CHARS, MAX_TOPICS
from memlayer._internal.memory.operations import AddOp, UpdateOp

BOUNDS = (MAX_MEMORY_CHARS, MAX_TOPICS, MAX_TOPIC_CHARS)


def bounds(schema: dict[str, Any]) -> tuple[int, int, int]:
    """(memory maxLength, topics maxItems, each topic's maxLength) of a tool's or model's JSON schema."""
    props = schema["properties"]
    topics = next(s for s in props["topics"].get("anyOf", [props["topics"]]) if s.get("type") == "array")
    return props["memory"]["maxLength"], topics["maxItems"], topics["items"]["maxLength"]


def test_the_bounds_are_the_documented_ones() -> None:
    assert BOUNDS == (240, 4, 32)


def test_the_python_api_takes_a_memory_at_the_bounds_and_refuses_one_past_them(db: DuckDb) -> None:
    manager = MemoryManager(db=db)
    longest = "x" * MAX_MEMORY_CHARS
    topics = [f"t{i}".ljust(MAX_TOPIC_CHARS, "x") for i in range(MAX_TOPICS)]
    kept = manager.add_user_memory(f"  {longest}  ", user_id="u1", topics=topics)  # stripped, then measured
    assert (kept.memory, kept.topics) == (longest, topics)

    with pytest.raises(ConfigError, match=f"at most {MAX_MEMORY_CHARS} characters .*got {MAX_MEMORY_CHARS + 1}"):
        manager.add_user_memory(longest + "y", user_id="u1")
    with pytest.raises(ConfigError, match=f"at most {MAX_TOPICS} topics, got {MAX_TOPICS + 1}"):
        manager.add_user_memory("Plays chess", user_id="u1", topics=[*topics, "chess"])
    with pytest.raises(ConfigError, match=f"a topic has at most {MAX_TOPIC_CHARS} characters"):
        manager.add_user_memory("Plays chess", user_id="u1", topics=["c" * (MAX_TOPIC_CHARS + 1)])
    with pytest.raises(ConfigError, match=f"at most {MAX_MEMORY_CHARS} characters"):
        manager.replace_user_memory(kept.memory_id, longest + "y", user_id="u1")
    with pytest.raises(ConfigError, match=f"at most {MAX_TOPICS} topics"):
        manager.replace_user_memory(kept.memory_id, "Plays chess", user_id="u1", topics=[*topics, "chess"])
    assert [(m.memory, m.version) for m in manager.get_user_memories(user_id="u1")] == [(longest, 1)]


def test_a_topic_filter_is_not_bounded(db: DuckDb) -> None:
    # A filter is no memory: any number of topics, of any length (memories stored before the bounds may hold them).
    manager = MemoryManager(db=db)
    manager.add_user_memory("Plays chess", user_id="u1", topics=["chess"])
    many = ["chess", *(f"topic {i}" for i in range(MAX_TOPICS)), "t" * (MAX_TOPIC_CHARS + 1)]
    assert [m.memory for m in manager.get_user_memories(user_id="u1", topics=many)] == ["Plays chess"]
    assert [m.memory for m in manager.search_user_memories("chess", user_id="u1", topics=many)] == ["Plays chess"]


def test_the_agents_memory_tools_have_the_same_bounds() -> None:
    tools = {tool.name: tool for tool in MemoryTools().tools()}
    for name in ("add_memory", "update_memory"):
        assert bounds(tools[name].schema()["function"]["parameters"]) == BOUNDS, name


def test_the_extraction_schema_has_the_same_bounds() -> None:
    # The schema a model is sent asks for no topics (the attribute is the typed topic); a reply that
    # has them is still held to the same bounds.
    for op, kind in ((AddOp, "add"), (UpdateOp, "update")):
        assert op.model_json_schema()["properties"]["memory"]["maxLength"] == MAX_MEMORY_CHARS
        assert "topics" not in op.model_json_schema()["properties"]
        reply = {"op": kind, "target": "m1" if kind == "update" else None, "memory": "x"}
        assert op.model_validate({**reply, "topics": ["t" * MAX_TOPIC_CHARS] * MAX_TOPICS}).topics
        for topics in (["t"] * (MAX_TOPICS + 1), ["t" * (MAX_TOPIC_CHARS + 1)]):
            with pytest.raises(ValidationError):
                op.model_validate({**reply, "topics": topics})


async def test_the_mcp_tools_have_the_same_bounds(db: DuckDb) -> None:
    pytest.importorskip("mcp")  # a dev dependency; memlayer-ai[mcp] for users
    from memlayer._internal.cli.mcp_server import build_server, one_user

    server = build_server(MemoryManager(db=db), one_user("u1"))
    schemas = {tool.name: tool.input_schema for tool in await server.list_tools()}
    assert bounds(schemas["update"]) == BOUNDS
