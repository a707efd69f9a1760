"""One extraction, four provider wire formats: switching provider is changing the model string.

Recorded against local servers on 127.0.0.1: OpenAI chat completions straight from llama-server
(../shared/tools/local-llm, Qwen2.5-Coder-1.5B-Instruct); Anthropic Messages, OpenAI Responses and Gemini
generateContent through LiteLLM's proxy (scripts/provider-proxy), which forwards each to the same
llama-server. The recorded traffic is memlayer's own requests in each provider's format. Re-record:
    ../shared/tools/local-llm start && scripts/provider-proxy/run &
    uv run pytest --memlayer-record=rewrite tests/test_provider_swap.py
With a real key, point the same tests at the provider (drop api_base) to record real provider traffic.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from memlayer import DuckDb, MemoryManager
from memlayer._internal.memory.operations import build_response_model

from .conftest import LOCAL_API_BASE

pytestmark = pytest.mark.memlayer_cassette(
    note="chat completions: memlayer -> llama-server (../shared/tools/local-llm, Qwen2.5-Coder-1.5B-Instruct) "
    "on 127.0.0.1:8765; "
    "Anthropic Messages, OpenAI Responses, Gemini generateContent: memlayer -> LiteLLM 1.110.2 proxy "
    "(scripts/provider-proxy) on 127.0.0.1:4000 -> the same llama-server"
)

PROXY = os.environ.get("MEMLAYER_PROXY_BASE", "http://127.0.0.1:4000")
PROXY_KEY = os.environ.get("MEMLAYER_PROXY_KEY", "local-proxy-key")
SAID = "Remember that I am vegetarian and I work as a nurse."
USER = "ana@example.com"
# What qwen1.5b extracted, the same through every wire format.
SAME_FACTS = [("add", "Vegetarian"), ("add", "Works as a nurse")]


def extract(db: DuckDb, model: str, **options: Any) -> list[tuple[str, str | None]]:
    manager = MemoryManager(model=model, db=db, provider_retries=0, **options)
    result = manager.create_user_memories(SAID, user_id=USER)
    assert result.usage is not None and result.usage.attempts == 1
    return [(c.operation, c.memory) for c in result.changes]


def sent(cassette: Any) -> tuple[str, dict[str, Any]]:
    request = cassette.requests[0]
    return request.path, json.loads(request.body)


def test_openai_chat_completions(db: DuckDb, memlayer_cassette: Any) -> None:
    changes = extract(db, "openai/qwen1.5b", api_base=LOCAL_API_BASE, api_key="local")
    path, body = sent(memlayer_cassette)
    assert path == "/v1/chat/completions" and body["response_format"]["type"] == "json_schema"
    assert changes == SAME_FACTS


def test_openai_responses(db: DuckDb, memlayer_cassette: Any) -> None:
    changes = extract(db, "openai:responses/qwen1.5b", api_base=f"{PROXY}/v1", api_key=PROXY_KEY, max_tokens=1024)
    path, body = sent(memlayer_cassette)
    assert path == "/v1/responses" and body["text"]["format"]["type"] == "json_schema"
    assert changes == SAME_FACTS


def test_gemini_generate_content(db: DuckDb, memlayer_cassette: Any) -> None:
    changes = extract(
        db, "gemini:gemini-2.5-qwen1.5b", api_base=PROXY, api_key=PROXY_KEY, mode="json_schema", max_tokens=1024
    )
    path, body = sent(memlayer_cassette)
    assert path.endswith("/gemini-2.5-qwen1.5b:generateContent")
    assert body["generationConfig"]["response_mime_type"] == "application/json"
    assert changes == SAME_FACTS


def test_anthropic_messages(db: DuckDb, memlayer_cassette: Any) -> None:
    # Through a gateway the forced tool LiteLLM uses for Anthropic is not enforced, so ask for
    # Anthropic's structured output instead; against api.anthropic.com the default mode needs none of this.
    schema = build_response_model(()).model_json_schema()
    changes = extract(
        db,
        "anthropic:qwen1.5b",
        api_base=PROXY,
        api_key=PROXY_KEY,
        mode="json",
        max_tokens=1024,
        output_format={"type": "json_schema", "schema": schema},
    )
    path, body = sent(memlayer_cassette)
    assert path == "/v1/messages" and body["output_format"]["type"] == "json_schema"
    assert changes == SAME_FACTS
