"""The one road of every model call: a LiteLLM callback the user registers sees each of them, labelled.

The chat and typed calls use the scripted model: the point is what LiteLLM's callbacks receive for each
kind of call memlayer makes (sync, async, streamed), which LiteLLM reports the same way for a mocked
reply. The embedding calls replay a recorded cassette, because LiteLLM's mocked embeddings skip its
callbacks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

from memlayer import Agent, DuckDb, MemoryManager
from memlayer._internal.llm.spec import parse_model
from memlayer._internal.search.embedders import LiteLLMEmbedder
from memlayer.testing import scripted_model

from .conftest import LOCAL_API_BASE, LOCAL_MODEL


class Seen(CustomLogger):
    """What a user's callback would record: memlayer's labels of each successful call."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[dict[str, Any]] = []

    def _note(self, kwargs: dict[str, Any]) -> None:
        metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        self.labels.append(dict(metadata.get("memlayer") or {}))

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._note(kwargs)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._note(kwargs)


@pytest.fixture
def seen() -> Iterator[Seen]:
    callback = Seen()
    litellm.callbacks.append(callback)
    # LiteLLM delivers success events from a worker after the call returns: an earlier test's late events
    # reach a callback registered now. Let them arrive, then forget them, so only this test's calls count.
    time.sleep(0.5)
    callback.labels.clear()
    yield callback
    # LiteLLM copies registered callbacks into its per-event lists on a call; take it out of all of them.
    for name in (
        "callbacks",
        "success_callback",
        "_async_success_callback",
        "failure_callback",
        "_async_failure_callback",
        "input_callback",
    ):
        registered = getattr(litellm, name)
        while callback in registered:
            registered.remove(callback)


def settle(seen: Seen, count: int) -> None:
    # LiteLLM runs sync success callbacks in a worker thread after returning the response.
    for _ in range(200):
        if len(seen.labels) >= count:
            return
        asyncio.run(asyncio.sleep(0.01))


REPLY = {"operations": [{"op": "add", "memory": "Drinks green tea", "topics": ["food"]}]}


def test_a_user_callback_sees_every_extraction_labelled(db: DuckDb, seen: Seen) -> None:
    manager = MemoryManager(model="openai:gpt-4o-mini", db=db, mode="json_schema", provider_retries=0)
    with scripted_model(REPLY, REPLY):
        manager.create_user_memories("I drink green tea", user_id="road-alice")
        asyncio.run(manager.acreate_user_memories("I drink green tea", user_id="road-bob"))
    settle(seen, 2)
    mine = [label for label in seen.labels if str(label.get("user_id", "")).startswith("road-")]
    assert sorted(label["user_id"] for label in mine) == ["road-alice", "road-bob"]
    assert {(label["purpose"], label["operation"]) for label in mine} == {("extraction", "extraction")}


def test_a_user_callback_sees_every_agent_step_streamed_or_not(db: DuckDb, seen: Seen) -> None:
    agent = Agent(model="openai:gpt-4o-mini", db=db)
    with scripted_model("Hello.", "Hello again."):
        agent.run("hi", user_id="alice")
        assert "".join(str(c) for c in agent.run_stream("hi", user_id="alice")) == "Hello again."
    settle(seen, 2)
    assert seen.labels == [{"purpose": "chat", "user_id": "alice", "operation": "agent_run"}] * 2


@pytest.mark.memlayer_cassette(
    "cassettes/test_embedding_cassettes/test_embeddings_are_stored_with_the_model_and_its_dimension.json"
)
def test_a_user_callback_sees_every_embedding(db: DuckDb, seen: Seen) -> None:
    embedder = LiteLLMEmbedder(LOCAL_MODEL, api_base=LOCAL_API_BASE, api_key="local", num_retries=0)
    manager = MemoryManager(db=db, embedder=embedder)
    manager.add_user_memory("Drinks green tea every morning", user_id="alice@example.com")
    manager.add_user_memory("Works as a nurse in Lisbon", user_id="alice@example.com")
    manager.search_user_memories("green tea", user_id="alice@example.com", limit=1)
    settle(seen, 3)
    assert [label["purpose"] for label in seen.labels] == ["embedding"] * 3


@pytest.mark.parametrize(
    ("variable", "base", "mode"),
    [
        ("OPENAI_BASE_URL", "http://127.0.0.1:8765/v1", "json_schema"),
        ("OPENAI_API_BASE", "http://gpu-box:8000/v1", "json_schema"),
        ("OPENAI_BASE_URL", "https://api.openai.com/v1", "tools"),
    ],
)
def test_a_local_server_named_by_the_environment_gets_json_schema(
    monkeypatch: pytest.MonkeyPatch, variable: str, base: str, mode: str
) -> None:
    # The same mode an api_base= argument gives: a local server does not enforce tool_choice.
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.setenv(variable, base)
    assert parse_model("openai/qwen1.5b").instructor_mode == mode
    assert parse_model("openai/qwen1.5b", api_base=base).instructor_mode == mode
