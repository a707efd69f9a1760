"""Every way LiteLLM reaches a provider records and replays: sync, async over aiohttp and over httpx,
streaming, and embeddings. Recorded from ../shared/tools/local-llm (Qwen2.5-Coder-1.5B-Instruct on llama.cpp).

Re-record: ``uv run pytest --memlayer-record=rewrite tests/test_transports.py`` with the server up.
"""

from __future__ import annotations

from collections.abc import Iterator

import litellm
import pytest

from .conftest import LOCAL_API_BASE

pytestmark = pytest.mark.memlayer_cassette

CHAT = {
    "model": "openai/qwen1.5b",
    "api_base": LOCAL_API_BASE,
    "api_key": "local",
    "messages": [{"role": "user", "content": "Name three fruits, comma-separated."}],
    "temperature": 0,
    "max_tokens": 12,
    "num_retries": 0,
}


@pytest.fixture
def httpx_async() -> Iterator[None]:
    """LiteLLM's other async transport: plain httpx instead of aiohttp."""
    litellm.disable_aiohttp_transport = True
    yield
    litellm.disable_aiohttp_transport = False


def test_sync_completion() -> None:
    reply = litellm.completion(**CHAT)
    assert reply.choices[0].message.content == "Apple, Banana, Orange"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (36, 6)


def test_streaming_completion() -> None:
    chunks = [c.choices[0].delta.content or "" for c in litellm.completion(**CHAT, stream=True)]
    assert "".join(chunks) == "Apple, Banana, Orange"
    assert len(chunks) > 5  # really streamed: one chunk per token, replayed from the recorded SSE body


async def test_async_completion_over_aiohttp() -> None:
    reply = await litellm.acompletion(**CHAT)
    assert reply.choices[0].message.content == "Apple, Banana, Orange"


async def test_async_completion_over_httpx(httpx_async: None) -> None:
    reply = await litellm.acompletion(**CHAT)
    assert reply.choices[0].message.content == "Apple, Banana, Orange"


async def test_async_streaming() -> None:
    stream = await litellm.acompletion(**CHAT, stream=True)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == "Apple, Banana, Orange"


def test_embeddings() -> None:
    result = litellm.embedding(
        model="openai/qwen1.5b", api_base=LOCAL_API_BASE, api_key="local", input=["tea", "coffee"], num_retries=0
    )
    vectors = [item["embedding"] for item in result.data]
    assert [len(v) for v in vectors] == [1536, 1536]  # Qwen2.5-Coder-1.5B's hidden size, mean pooled
    assert vectors[0] != vectors[1]
