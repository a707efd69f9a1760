"""Replay needs no provider key, for any provider; recording without one names the variable first.

The replays are the real recordings of tests/test_provider_swap.py (OpenAI chat completions from
llama-server, Anthropic Messages through LiteLLM's proxy), run here with every provider key variable
removed from the environment and no ``api_key`` passed: what LiteLLM refused before ("Missing
credentials", "Missing Anthropic API Key") now reaches the cassette.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from memlayer import ConfigError, DuckDb
from memlayer._internal.cassettes.keys import PLACEHOLDER_KEY, PROVIDER_KEY_VARIABLES, placeholder_keys
from memlayer._internal.llm.litellm import missing_keys
from memlayer._internal.llm.spec import parse_model
from memlayer._internal.memory.operations import build_response_model
from memlayer.testing import use_cassette

from .conftest import CASSETTES, LOCAL_API_BASE
from .test_provider_swap import PROXY, SAME_FACTS, extract

SWAP = CASSETTES / "test_provider_swap"
ALL_KEYS = (*PROVIDER_KEY_VARIABLES, "GOOGLE_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_KEYS:
        monkeypatch.delenv(name, raising=False)


def _unset() -> list[str]:
    return [name for name in ALL_KEYS if name in os.environ]


@pytest.mark.usefixtures("no_keys")
def test_openai_replays_with_no_key(db: DuckDb) -> None:
    with use_cassette(SWAP / "test_openai_chat_completions.json", mode="none") as cassette:
        assert os.environ["OPENAI_API_KEY"] == PLACEHOLDER_KEY
        changes = extract(db, "openai/qwen1.5b", api_base=LOCAL_API_BASE)
    assert changes == SAME_FACTS and cassette.play_count == 1
    assert _unset() == []  # the placeholders are gone again


@pytest.mark.usefixtures("no_keys")
def test_anthropic_replays_with_no_key(db: DuckDb) -> None:
    schema = build_response_model(()).model_json_schema()
    options: dict[str, Any] = {"mode": "json", "max_tokens": 1024}
    with use_cassette(SWAP / "test_anthropic_messages.json", mode="none") as cassette:
        changes = extract(
            db, "anthropic:qwen1.5b", api_base=PROXY, output_format={"type": "json_schema", "schema": schema}, **options
        )
    assert changes == SAME_FACTS and cassette.requests[0].path == "/v1/messages"
    assert _unset() == []


def test_a_key_the_caller_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-mine")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with placeholder_keys() as added:
        assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-mine" and "ANTHROPIC_API_KEY" not in added
        assert os.environ["OPENAI_API_KEY"] == PLACEHOLDER_KEY
    assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-mine" and "OPENAI_API_KEY" not in os.environ


@pytest.mark.parametrize(
    "model",
    ["openai:gpt-4o", "anthropic:claude-sonnet-4-5", "gemini:gemini-2.5-flash", "mistral:mistral-small-latest",
     "groq:llama-3.3-70b-versatile", "cohere:command-r", "deepseek:deepseek-chat", "xai:grok-4",
     "openrouter:openai/gpt-4o", "together_ai:meta-llama/Llama-3-8b-chat-hf", "fireworks_ai:llama-v3-8b"],
)  # fmt: skip
@pytest.mark.usefixtures("no_keys")
def test_the_placeholders_cover_the_main_providers(model: str) -> None:
    spec = parse_model(model)
    assert missing_keys(spec)  # the provider does want a key ...
    with placeholder_keys():
        assert missing_keys(spec) == []  # ... and a replay has one


@pytest.mark.parametrize(
    ("model", "variable"), [("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"), ("openai:gpt-4o", "OPENAI_API_KEY")]
)
@pytest.mark.usefixtures("no_keys")
def test_recording_without_a_key_names_it_before_any_request(model: str, variable: str, tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    with DuckDb(tmp_path / "m.duckdb") as db, pytest.raises(ConfigError) as caught:
        with use_cassette(path, mode="once"):
            extract(db, model)
    assert str(caught.value) == (
        f"model {model!r} needs an API key to record {path}: set {variable} (or pass api_key=...)"
    )
    assert not path.exists()  # nothing was sent, so nothing was recorded
