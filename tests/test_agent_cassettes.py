"""Agent runs against a real model, replayed from cassettes recorded with ../shared/tools/local-llm.

SmolLM2-135M on llama.cpp answers, streams and fills JSON schemas for real, but what it says is not
wise. llama-server ignores ``tools``, so the tool rounds here use memlayer's JSON tool mode (a
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
    # max_tokens bounds a tiny model that would otherwise ramble on to the context limit.
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
    agent = local_agent(db, local_manager, update_memory_on_run=True)
    out = io.StringIO()
    response = agent.print_response("I prefer Python over JavaScript.", user_id=USER, stream=True, file=out)
    printed = out.getvalue()
    assert printed.startswith(response.content + "\n")
    assert response.content == EXPECTED["stream.content"]
    assert [(u.purpose, u.input_tokens, u.output_tokens) for u in response.llm_calls] == EXPECTED["stream.calls"]
    assert [(c.operation, c.memory) for c in response.memory_changes] == EXPECTED["stream.changes"]
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
    agent = local_agent(db, local_manager, max_tokens=300, enable_agentic_memory=True, max_tool_rounds=1)
    response = agent.run("Remember that I moved to Porto.", user_id=USER)
    assert [(t.name, t.arguments) for t in response.tool_calls] == EXPECTED["agentic.calls"]
    assert [(c.operation, c.memory) for c in response.memory_changes] == EXPECTED["agentic.changes"]
    # The run's own chat calls, then the extraction calls its memory tool made.
    assert [u.purpose for u in response.llm_calls] == ["chat", "chat", *["task"] * len(response.tool_calls)]
    events = local_manager.get_user_events(user_id=USER)
    assert [(e.operation, e.source) for e in events] == [(c.operation, "task") for c in response.memory_changes]


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
    "stream.content": "Python is indeed a language that has been chosen for its versatility and ease of use. While JavaScript is a popular choice for web development, it's not the only one. Many other languages have their own strengths and weaknesses.\n\nIn fact, some of the most popular languages are often the ones",  # noqa: E501
    "stream.calls": [("chat", 27, 60), ("extraction", 432, 91)],
    "stream.changes": [("add", "Python"), ("add", "JavaScript"), ("add", "Java")],
    "tools.calls": [
        ("get_memories", '{"limit":10}', False),
        ("search_memories", '{"query":"user_id"}', False),
        ("add_memory", '{"memory":"user_id","topics":null}', False),
        ("update_memory", '{"memory_id":"user_id","memory":"user_id","topics":null}', True),
    ],
    "tools.results": [
        "e7fe603a-2c13-5954-827e-0b8f0f5c733a: Lives in Lisbon [home]",
        "e7fe603a-2c13-5954-827e-0b8f0f5c733a: Lives in Lisbon [home]",
        "added ddac76e2-7814-5af7-98ed-e0edc17aa122: user_id",
        "error: user 'ana@example.com' has no current memory 'user_id'",
    ],
    "tools.content": 'You have a list of your memories, most recent one is user_id 1234567890. You can search for your most recent memories by using the query "".',  # noqa: E501
    "agentic.calls": [("update_user_memory", '{"task":"remember"}'), ("update_user_memory", '{"task":"forget"}')],
    "agentic.changes": [("add", "1234567890"), ("delete", None)],
    "async.contents": (
        "I'm Ana, a skilled and compassionate healer with a passion for healing and a love for the natural world. I've dedicated my life to helping people, both physically and mentally, and I'm always happy to share my knowledge and resources with those who need them. What brings you here today?",  # noqa: E501
        "My name is Elena. I'm a healer and a healer's helper. I've been doing this for a long time, and I'm always happy to help people. What brings you here today?",  # noqa: E501
    ),
    "async.input_tokens": [25, 101],
}
