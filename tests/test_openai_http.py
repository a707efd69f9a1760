"""The direct OpenAI transport (`memlayer.llm.openai_http`) against a real HTTP server on 127.0.0.1.

Each behaviour is checked against LiteLLM's, on the same scripted server (``tests/openai_stub.py``):
the same request body (re-asks included), the same errors and retries, the same usage. The recorded
extraction cassettes replay over it too. The suite imports LiteLLM, so ``auto`` would take LiteLLM
here: the tests choose the transport with ``MEMLAYER_LLM_TRANSPORT``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memlayer import Agent, ConfigError, DuckDb, MemoryManager, MemoryTools, ModelError, clock
from memlayer.cassettes import use_cassette
from memlayer.llm.embedding import embed_texts
from memlayer.llm.litellm import missing_keys
from memlayer.llm.openai_http import TRANSPORT_ENV, uses_direct
from memlayer.llm.spec import parse_model
from memlayer.llm.usage import LLMCallError
from memlayer.search.embedders import LiteLLMEmbedder

from . import test_embedding_cassettes as recorded_embeddings
from . import test_extraction_cassettes as recorded
from .conftest import CASSETTES, LOCAL_API_BASE, LOCAL_MODEL
from .openai_stub import OpenAIStub, Stall, chat_reply, embedding_reply, openai_stub

TEA = {"operations": [{"op": "add", "memory": "Drinks green tea every morning", "topics": ["food"]}]}
SAID = "I drink green tea every morning."


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with openai_stub() as server:
        yield server


def _manager(tmp_path: Path, stub: OpenAIStub, name: str, **options: Any) -> MemoryManager:
    options.setdefault("api_key", "stub-key")
    return MemoryManager(
        model="openai:stub-model", api_base=stub.api_base, db=DuckDb(tmp_path / f"{name}.duckdb"), **options
    )


def _extract(monkeypatch: pytest.MonkeyPatch, transport: str, manager: MemoryManager) -> Any:
    monkeypatch.setenv(TRANSPORT_ENV, transport)
    try:
        return manager.create_user_memories(SAID, user_id="u1")
    except LLMCallError as exc:
        return exc


# -- when the direct path is taken ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "options", "direct"),
    [
        ("openai:gpt-4o-mini", {}, True),
        ("openai/qwen1.5b", {"api_base": "http://127.0.0.1:8765/v1"}, True),
        ("openai:gpt-4o-mini", {"max_tokens": 300, "seed": 1, "timeout": 30}, True),
        ("anthropic:claude-sonnet-4-5", {}, False),
        ("openai:o3-mini", {}, False),
        ("openai:responses/gpt-4o-mini", {}, False),
        ("openai:gpt-5-mini", {}, False),
        ("openai:gpt-4o-mini", {"mock_response": "hi"}, False),
        ("openai:gpt-4o-mini", {"extra_headers": {"x": "y"}}, False),
        ("openai:gpt-4o-mini", {"mode": "md_json"}, False),
    ],
)
def test_which_requests_go_direct(
    monkeypatch: pytest.MonkeyPatch, model: str, options: dict[str, Any], direct: bool
) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, "direct")
    assert uses_direct(parse_model(model, **options)) is direct


def test_auto_leaves_the_calls_to_litellm_once_it_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_model("openai:gpt-4o-mini")
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "litellm", types.ModuleType("litellm"))
    assert not uses_direct(spec)
    monkeypatch.delitem(sys.modules, "litellm")
    assert uses_direct(spec)
    monkeypatch.setenv(TRANSPORT_ENV, "litellm")
    assert not uses_direct(spec)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv(TRANSPORT_ENV, "direct")
    assert not uses_direct(spec)  # the SDK would go through the proxy; this path would not


def test_a_bad_transport_setting_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, "fast")
    with pytest.raises(ConfigError, match="MEMLAYER_LLM_TRANSPORT='fast': use one of auto, direct, litellm"):
        uses_direct(parse_model("openai:gpt-4o-mini"))


# -- the same request as LiteLLM's --------------------------------------------------------------------


def _bad_then_good(mode: str) -> list[Any]:
    bad = {"operations": [{"op": "add"}]}  # no memory: fails validation, so Instructor re-asks
    if mode == "tools":
        return [chat_reply(tool_args=bad), chat_reply(tool_args=TEA)]
    return [chat_reply(bad), chat_reply(TEA)]


@pytest.mark.parametrize("mode", ["json_schema", "tools"])
def test_the_direct_path_sends_what_litellm_sends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub, mode: str
) -> None:
    seen: dict[str, list[Any]] = {}
    for transport in ("litellm", "direct"):
        stub.script(*_bad_then_good(mode))
        result = _extract(monkeypatch, transport, _manager(tmp_path, stub, transport, mode=mode, max_tokens=500))
        assert [c.memory for c in result.changes] == ["Drinks green tea every morning"]
        assert result.usage.attempts == 2
        seen[transport] = stub.requests[:]
    litellm, direct = seen["litellm"], seen["direct"]
    assert [r.path for r in direct] == [r.path for r in litellm] == ["/v1/chat/completions"] * 2
    assert [r.body for r in direct] == [r.body for r in litellm]  # the re-ask too
    assert direct[0].body["max_tokens"] == 500 and direct[0].body["temperature"] == 0
    assert {"response_format" if mode == "json_schema" else "tools"} <= set(direct[0].body)
    for name in ("authorization", "content-type"):
        assert direct[0].headers[name] == litellm[0].headers[name]


def test_the_key_and_endpoint_come_from_the_environment_as_litellm_reads_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", stub.api_base)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-1")
    for transport in ("litellm", "direct"):
        stub.script(chat_reply(TEA))
        db = DuckDb(tmp_path / f"{transport}.duckdb")
        manager = MemoryManager(model="openai:gpt-4o-mini", db=db, mode="json_schema")
        result = _extract(monkeypatch, transport, manager)
        assert [c.memory for c in result.changes] == ["Drinks green tea every morning"], transport
        headers = stub.requests[0].headers
        assert (headers["authorization"], headers["openai-organization"]) == ("Bearer env-key", "org-1")


# -- replies, usage and cost ---------------------------------------------------------------------------


def test_a_reply_is_parsed_and_its_usage_recorded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub
) -> None:
    stub.script(chat_reply(TEA, prompt_tokens=120, completion_tokens=30))
    manager = _manager(tmp_path, stub, "direct")
    result = _extract(monkeypatch, "direct", manager)
    assert [(c.operation, c.memory, c.topics) for c in result.changes] == [
        ("add", "Drinks green tea every morning", ["food"])
    ]
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.attempts) == (120, 30, 1)
    assert result.usage.cost_usd is None  # the stub's model has no price
    rows = manager.db.sql("SELECT purpose, model, input_tokens, output_tokens, attempts, status FROM llm_calls")
    assert rows == [("extraction", "openai:stub-model", 120, 30, 1, "ok")]


def test_a_priced_model_costs_what_litellm_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub
) -> None:
    costs = {}
    for transport in ("litellm", "direct"):
        stub.script(chat_reply(TEA, model="gpt-4o-mini-2024-07-18", prompt_tokens=1000, completion_tokens=100))
        manager = MemoryManager(
            model="openai:gpt-4o-mini", api_base=stub.api_base, api_key="k", mode="json_schema",
            db=DuckDb(tmp_path / f"{transport}.duckdb"),
        )  # fmt: skip
        costs[transport] = _extract(monkeypatch, transport, manager).usage.cost_usd
    assert costs["direct"] == pytest.approx(costs["litellm"]) and costs["direct"] == pytest.approx(
        1000 * 1.5e-7 + 60e-6
    )


# -- errors and retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "attempts"), [(429, 2), (500, 2), (503, 2), (401, 1), (400, 1), (404, 1)], ids=str)
def test_http_errors_fail_and_retry_as_with_litellm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub, status: int, attempts: int
) -> None:
    error = (status, {"error": {"message": "the server says no", "type": "x"}})
    for transport in ("litellm", "direct"):
        stub.script(error, error)
        failure = _extract(monkeypatch, transport, _manager(tmp_path, stub, transport, provider_retries=1))
        assert isinstance(failure, LLMCallError), transport
        assert (failure.attempts, len(stub.requests), failure.last_reply) == (attempts, attempts, None), transport
        assert "the server says no" in str(failure), transport


def test_a_transient_error_is_sent_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub) -> None:
    stub.script((429, {"error": {"message": "slow down"}}), (502, b"bad gateway"), chat_reply(TEA))
    result = _extract(monkeypatch, "direct", _manager(tmp_path, stub, "direct", provider_retries=2))
    assert [c.memory for c in result.changes] == ["Drinks green tea every morning"]
    assert result.usage.attempts == 3 and len(stub.requests) == 3


def test_a_timeout_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub) -> None:
    for transport in ("litellm", "direct"):
        stub.script(Stall(1.5), Stall(1.5))
        failure = _extract(monkeypatch, transport, _manager(tmp_path, stub, transport, provider_retries=1, timeout=0.3))
        assert isinstance(failure, LLMCallError) and failure.attempts == 2, transport
        assert "timed out" in str(failure).lower() or "timeout" in str(failure).lower(), transport


def test_an_unreachable_server_is_a_connection_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    for transport in ("litellm", "direct"):
        manager = MemoryManager(
            model="openai:stub-model", api_base=f"http://127.0.0.1:{port}/v1", api_key="k", provider_retries=1,
            db=DuckDb(tmp_path / f"{transport}.duckdb"),
        )  # fmt: skip
        failure = _extract(monkeypatch, transport, manager)
        assert isinstance(failure, LLMCallError) and failure.attempts == 2, transport
        assert "connection" in str(failure).lower(), transport


def test_a_reply_that_is_not_json_is_a_model_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub
) -> None:
    stub.script(b"<html>not json</html>")
    failure = _extract(monkeypatch, "direct", _manager(tmp_path, stub, "direct", provider_retries=0))
    assert isinstance(failure, LLMCallError) and failure.attempts == 1
    assert "not JSON" in str(failure)


def test_a_reply_that_never_validates_is_reasked_then_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub
) -> None:
    bad = chat_reply({"operations": [{"op": "add"}]})
    for transport in ("litellm", "direct"):
        stub.script(bad, bad, bad)
        manager = _manager(tmp_path, stub, transport, max_retries=2)
        failure = _extract(monkeypatch, transport, manager)
        assert isinstance(failure, LLMCallError), transport
        assert (failure.attempts, failure.last_reply) == (3, '{"operations": [{"op": "add"}]}'), transport
        assert "the reply never validated after 3 attempt(s)" in str(failure), transport
        assert manager.db.sql("SELECT status, attempts FROM llm_calls") == [("error", 3)], transport


def test_a_missing_key_is_reported_before_sending(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    failure = _extract(monkeypatch, "direct", _manager(tmp_path, stub, "direct", api_key=None))
    assert isinstance(failure, LLMCallError) and "OPENAI_API_KEY" in str(failure)
    assert stub.requests == []


# -- sync and async, recordings, a fresh process --------------------------------------------------------


def test_sync_and_async_direct_calls_agree(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, "direct")
    stub.script(chat_reply(TEA), chat_reply(TEA))
    sync = _manager(tmp_path, stub, "sync").create_user_memories(SAID, user_id="u1")
    async_ = asyncio.run(_manager(tmp_path, stub, "async").acreate_user_memories(SAID, user_id="u1"))
    assert [(c.operation, c.memory) for c in sync.changes] == [(c.operation, c.memory) for c in async_.changes]
    assert (sync.usage.input_tokens, sync.usage.output_tokens) == (
        async_.usage.input_tokens,
        async_.usage.output_tokens,
    )
    assert stub.requests[0].body == stub.requests[1].body


@pytest.mark.parametrize(
    "name",
    ["test_add_from_conversation", "test_a_move_updates_the_city", "test_a_retraction_replaces_only_that_fact",
     "test_small_talk_changes_nothing", "test_async_extraction"],
)  # fmt: skip
def test_the_recorded_extractions_replay_over_the_direct_path(
    monkeypatch: pytest.MonkeyPatch, db: DuckDb, name: str
) -> None:
    """The cassettes recorded through LiteLLM and the OpenAI SDK, replayed: each test asserts its facts."""
    monkeypatch.setenv(TRANSPORT_ENV, "direct")
    manager = MemoryManager(model=LOCAL_MODEL, db=db, api_base=LOCAL_API_BASE, api_key="local", provider_retries=0)
    assert manager.model is not None and uses_direct(manager.model)
    with use_cassette(CASSETTES / "test_extraction_cassettes" / f"{name}.json", mode="none"):
        test = getattr(recorded, name)
        if asyncio.iscoroutinefunction(test):
            asyncio.run(test(manager))
        else:
            test(manager)


PROBE = """
import asyncio, sys
from memlayer import DuckDb, MemoryManager
manager = MemoryManager(model="openai:stub-model", api_base=sys.argv[1], api_key="k", db=DuckDb(sys.argv[2]),
                        embedder="lexical")
sync = manager.create_user_memories("I drink green tea every morning.", user_id="u1")
asynced = asyncio.run(manager.acreate_user_memories("I drink green tea every morning.", user_id="u2"))
heavy = sorted(m for m in ("litellm", "openai", "instructor", "httpx") if m in sys.modules)
print(json.dumps({"changes": [c.memory for c in sync.changes + asynced.changes], "heavy": heavy}))
""".replace("import asyncio, sys", "import asyncio, json, sys")


def test_a_fresh_process_extracts_without_importing_litellm_or_the_sdk(tmp_path: Path, stub: OpenAIStub) -> None:
    stub.script(chat_reply(TEA), chat_reply(TEA))
    env = {k: v for k, v in os.environ.items() if k != TRANSPORT_ENV}
    command = [sys.executable, "-c", PROBE, stub.api_base, str(tmp_path / "fresh.duckdb")]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert json.loads(out.splitlines()[-1]) == {"changes": ["Drinks green tea every morning"] * 2, "heavy": []}
    assert len(stub.requests) == 2


# -- embeddings ------------------------------------------------------------------------------------------


def test_an_embedding_call_sends_and_reads_what_litellm_does(monkeypatch: pytest.MonkeyPatch, stub: OpenAIStub) -> None:
    spec = parse_model("openai:text-embedding-3-small", api_base=stub.api_base, api_key="k", num_retries=0)
    seen = {}
    for transport in ("litellm", "direct"):
        monkeypatch.setenv(TRANSPORT_ENV, transport)
        stub.script(embedding_reply([[0.5, 0.25], [1.0, -1.0]], model="text-embedding-3-small", tokens=8))
        vectors, usage = embed_texts(spec, ["green tea", "Porto"])
        seen[transport] = (vectors, usage.input_tokens, usage.cost_usd, stub.requests[0].path, stub.requests[0].body)
    assert seen["direct"][:2] == seen["litellm"][:2] == ([[0.5, 0.25], [1.0, -1.0]], 8)
    assert seen["direct"][2] == pytest.approx(seen["litellm"][2]) and seen["direct"][2] == pytest.approx(8 * 2e-8)
    assert seen["direct"][3:] == seen["litellm"][3:]


def test_a_failed_embedding_call_is_a_model_error(monkeypatch: pytest.MonkeyPatch, stub: OpenAIStub) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, "direct")
    spec = parse_model("openai:text-embedding-3-small", api_base=stub.api_base, api_key="k", num_retries=1)
    stub.script((503, {"error": {"message": "busy"}}), (503, {"error": {"message": "busy"}}))
    with pytest.raises(ModelError, match=r"the embedding call failed, nothing was written: .*busy"):
        embed_texts(spec, ["green tea"])
    assert len(stub.requests) == 2  # re-sent once


@pytest.mark.parametrize(
    "name",
    ["test_embeddings_are_stored_with_the_model_and_its_dimension", "test_one_batched_embedding_call_per_extraction"],
)
def test_the_recorded_embeddings_replay_over_the_direct_path(
    monkeypatch: pytest.MonkeyPatch, db: DuckDb, name: str
) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, "direct")
    embedder = LiteLLMEmbedder(LOCAL_MODEL, api_base=LOCAL_API_BASE, api_key="local", num_retries=0)
    assert uses_direct(embedder.spec, purpose="embedding")
    with use_cassette(CASSETTES / "test_embedding_cassettes" / f"{name}.json", mode="none"):
        getattr(recorded_embeddings, name)(db, embedder)


@pytest.mark.parametrize("key", [None, "", "sk-test"])
def test_the_openai_key_check_agrees_with_litellm_without_importing_it(
    monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    import litellm

    if key is None:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    spec = parse_model("openai:gpt-4o-mini")
    assert missing_keys(spec) == litellm.validate_environment(model=spec.litellm_model)["missing_keys"]


def test_recording_without_a_key_names_the_variable_before_sending(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub
) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, "direct")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    manager = _manager(tmp_path, stub, "direct", api_key=None)
    with (
        pytest.raises(ConfigError, match=r"needs an API key to record .*: set OPENAI_API_KEY"),
        use_cassette(tmp_path / "new.json", mode="once"),
    ):
        manager.create_user_memories(SAID, user_id="u1")
    assert stub.requests == [] and not (tmp_path / "new.json").exists()


@pytest.mark.parametrize("mode", ["json_schema", "tools"])
def test_a_reply_cut_off_at_max_tokens_is_not_reasked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub, mode: str
) -> None:
    cut = chat_reply('{"operations": [{"op": "ad', finish="length")
    if mode == "tools":
        cut = chat_reply(tool_args={"operations": []}, finish="length")
    for transport in ("litellm", "direct"):
        stub.script(cut, cut)
        failure = _extract(monkeypatch, transport, _manager(tmp_path, stub, transport, mode=mode, max_retries=1))
        assert isinstance(failure, LLMCallError) and failure.attempts == 1, transport
        assert "The output is incomplete due to a max_tokens length limit." in str(failure), transport


# -- an agent's chat step --------------------------------------------------------------------------------


def _tool_round(mode: str) -> list[Any]:
    if mode == "native":
        return [chat_reply(tool_args={}, tool_name="get_memories"), chat_reply("You like green tea.")]
    call = {"tool_calls": [{"name": "get_memories", "arguments": {}}], "content": ""}
    return [chat_reply(call), chat_reply({"tool_calls": [], "content": "You like green tea."})]


@pytest.mark.parametrize("mode", ["native", "json"])
def test_a_chat_step_sends_what_litellm_sends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: OpenAIStub, mode: str
) -> None:
    seen = {}
    for transport in ("litellm", "direct"):
        monkeypatch.setenv(TRANSPORT_ENV, transport)
        stub.script(*_tool_round(mode))
        with clock.pinned(dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc), seed="chat"):  # the same memory ids
            memory = _manager(tmp_path, stub, transport)
            memory.add_user_memory("Likes green tea", user_id="u1")
            agent = Agent(
                "openai:stub-model", api_base=stub.api_base, api_key="k", db=memory.db, memory_manager=memory,
                tools=[MemoryTools()], tool_mode=mode, max_tokens=200, update_memory_on_run=False,
            )  # fmt: skip
            response = agent.run("What do I like?", user_id="u1")
        assert response.content == "You like green tea.", transport
        assert [t.name for t in response.tool_calls] == ["get_memories"], transport
        assert [u.input_tokens for u in response.llm_calls] == [11, 11], transport
        seen[transport] = [r.body for r in stub.requests]
    assert seen["direct"] == seen["litellm"]
    assert len(seen["direct"]) == 2 and seen["direct"][0]["max_tokens"] == 200
