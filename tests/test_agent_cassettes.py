"""Agent runs against a real model, replayed from cassettes recorded with ../shared/tools/local-llm.

qwen1.5b (Qwen2.5-Coder-1.5B-Instruct) on llama.cpp answers, streams and fills JSON schemas for real.
llama-server ignores ``tools``, so the tool rounds here use memlayer's JSON tool mode (a
grammar-constrained JSON object of tool calls); hosted providers get native tool calls, covered with a
scripted model in test_agent_scripted.py. Each test asserts what its cassette holds.
Re-record: ``../shared/tools/local-llm start``, then
``uv run pytest --memlayer-record=rewrite tests/test_agent_cassettes.py``.
"""

from __future__ import annotations

import io

import pytest

from memlayer import Agent, DuckDb, MemoryManager, MemoryTools

from .conftest import LOCAL_API_BASE, LOCAL_MODEL

pytestmark = pytest.mark.memlayer_cassette

USER = "ana@example.com"


def local_agent(db: DuckDb, manager: MemoryManager | None = None, max_tokens: int = 60, **kwargs: object) -> Agent:
    # max_tokens keeps the recorded answers short (a local model writes ~15 tokens a second).
    return Agent(
        model=LOCAL_MODEL,
        db=db,
        memory_manager=manager,
        api_base=LOCAL_API_BASE,
        api_key="local",
        temperature=0,
        max_tokens=max_tokens,
        **kwargs,  # type: ignore[arg-type]
    )


def test_print_response_streams_and_extracts_after_the_run(db: DuckDb, local_manager: MemoryManager) -> None:
    agent = local_agent(db, local_manager, update_memory_on_run=True, memory_mode="foreground")
    out = io.StringIO()
    response = agent.print_response("I just adopted a dog called Biscuit!", user_id=USER, stream=True, file=out)
    printed = out.getvalue()
    assert printed.startswith(response.content + "\n")
    assert response.content == EXPECTED["stream.content"]
    assert [(u.purpose, u.input_tokens, u.output_tokens) for u in response.llm_calls] == EXPECTED["stream.calls"]
    assert [(c.operation, c.memory) for c in response.memory_changes] == EXPECTED["stream.changes"]
    assert any("Biscuit" in str(c.memory) for c in response.memory_changes)
    stored = sorted(m.memory for m in agent.get_user_memories(user_id=USER))
    assert stored == sorted(str(c.memory) for c in response.memory_changes)
    assert db.sql("SELECT role FROM messages ORDER BY seq") == [("user",), ("assistant",)]


def test_a_tool_round_with_memory_tools(db: DuckDb, local_manager: MemoryManager) -> None:
    local_manager.add_user_memory("Lives in Lisbon", user_id=USER, topics=["home"])
    agent = local_agent(db, local_manager, max_tokens=300, tools=[MemoryTools()], max_tool_rounds=1)
    assert agent.tool_mode == "json"
    response = agent.run("Use get_memories to list what you know about me.", user_id=USER)
    assert [(t.name, t.arguments, t.failed) for t in response.tool_calls] == EXPECTED["tools.calls"]
    assert [t.result for t in response.tool_calls] == EXPECTED["tools.results"]
    assert response.stopped_early
    assert isinstance(EXPECTED["tools.content"], str)
    assert response.content.startswith(EXPECTED["tools.content"])
    assert len(response.llm_calls) == 2


def test_agentic_memory_run(db: DuckDb, local_manager: MemoryManager) -> None:
    lisbon = local_manager.add_user_memory("Lives in Lisbon", user_id=USER, topics=["home"])
    agent = local_agent(db, local_manager, max_tokens=300, enable_agentic_memory=True, max_tool_rounds=1)
    # The test is of the machinery, not of the small model's will to call a tool: the message names the tool.
    response = agent.run("Use update_user_memory to remember that I moved to Porto.", user_id=USER)
    assert [(t.name, t.arguments) for t in response.tool_calls] == EXPECTED["agentic.calls"]
    assert [(c.operation, c.memory) for c in response.memory_changes] == EXPECTED["agentic.changes"]
    # The run's own chat calls, then the extraction calls its memory tool made.
    assert [u.purpose for u in response.llm_calls] == ["chat", "chat", *["task"] * len(response.tool_calls)]
    events = local_manager.get_user_events(user_id=USER)
    assert [(e.operation, e.source) for e in events] == [
        ("add", "api"),
        *[(c.operation, "task") for c in response.memory_changes],
    ]
    assert [m.memory for m in local_manager.get_user_memories(user_id=USER)] == EXPECTED["agentic.memories"]
    assert [c.memory_id for c in response.memory_changes] == [lisbon.memory_id]


async def test_async_runs_carry_session_history(db: DuckDb) -> None:
    agent = local_agent(db, add_history_to_context=True, num_history_runs=1)
    first = await agent.arun("My name is Ana.", user_id=USER, session_id="intro")
    second = await agent.arun("What is my name?", user_id=USER, session_id="intro")
    assert (first.content, second.content) == EXPECTED["async.contents"]
    # The second call was sent the first run's exchange: its prompt is longer by that much.
    assert [u.input_tokens for u in (*first.llm_calls, *second.llm_calls)] == EXPECTED["async.input_tokens"]
    assert [m.content for m in agent.get_session_messages("intro", user_id=USER)] == [
        "My name is Ana.",
        first.content,
        "What is my name?",
        second.content,
    ]


# What the recorded model said and did, read off the cassettes.
EXPECTED: dict[str, object] = {
    "stream.content": "That's great to hear! It's a wonderful thing to have a new pet in your life. Do you have any questions about Biscuit or how to take care of him?",  # noqa: E501
    "stream.calls": [("chat", 29, 38), ("extraction", 851, 52)],
    "stream.changes": [("add", "Adopted a dog named Biscuit")],
    "tools.calls": [("get_memories", '{"limit":10}', False)],
    "tools.results": ["e7fe603a-2c13-5954-827e-0b8f0f5c733a: Lives in Lisbon [home]"],
    "tools.content": "I remember living in Lisbon [home].",
    "agentic.calls": [("update_user_memory", '{"task":"remember that I moved to Porto"}')],
    "agentic.changes": [("update", "Lives in Porto")],
    # The move replaced the city: one memory, its second version.
    "agentic.memories": ["Lives in Porto"],
    "async.contents": ("Hello, Ana! How can I assist you today?", "Your name is Ana."),
    "async.input_tokens": [24, 50],
}
