"""Prices read from LiteLLM's bundled price list as a file (`memlayer.llm.prices`) agree with LiteLLM's own."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

from memlayer.llm.openai_http import parse_completion
from memlayer.llm.prices import completion_cost, embedding_cost, price_entry


def _reply(model: str, prompt: int, completion: int, cached: int = 0, tier: str | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}  # fmt: skip
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    body: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model, "usage": usage,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{}"}}],
    }  # fmt: skip
    if tier:
        body["service_tier"] = tier
    return body


@pytest.mark.parametrize(
    "reply",
    [
        _reply("gpt-4o-mini", 1000, 100),
        _reply("gpt-4o-mini-2024-07-18", 1200, 50, cached=1024),
        _reply("gpt-4o", 5000, 700, cached=4096),
        _reply("gpt-4.1-nano", 300, 20),
        _reply("gpt-4o-mini", 1000, 100, tier="priority"),
    ],
    ids=lambda r: (
        f"{r['model']}-{r['usage'].get('prompt_tokens_details', {}).get('cached_tokens', 0)}-{r.get('service_tier')}"
    ),
)
def test_a_chat_completion_costs_what_litellm_says(reply: dict[str, Any]) -> None:
    theirs = litellm.completion_cost(completion_response=litellm.ModelResponse(**reply))
    assert completion_cost(parse_completion(reply)) == pytest.approx(theirs, rel=1e-9)


def test_an_unpriced_model_costs_nothing_known() -> None:
    assert completion_cost(parse_completion(_reply("qwen1.5b", 100, 10))) is None
    assert price_entry("qwen1.5b") is None
    assert embedding_cost("qwen1.5b", 10) is None


def test_an_embedding_costs_what_litellm_says() -> None:
    response = litellm.EmbeddingResponse(
        model="text-embedding-3-small", data=[{"object": "embedding", "index": 0, "embedding": [0.1]}],
        usage=litellm.Usage(prompt_tokens=1000, total_tokens=1000),
    )  # fmt: skip
    theirs = litellm.completion_cost(completion_response=response, call_type="embedding")
    assert embedding_cost("text-embedding-3-small", 1000) == pytest.approx(theirs, rel=1e-9)
