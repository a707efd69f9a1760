"""LiteLLM embeddings by model string, replayed from a cassette recorded with ../shared/tools/local-llm.

The server's model is qwen1.5b (Qwen2.5-Coder-1.5B-Instruct), whose mean-pooled hidden states (1,536
numbers) stand in for an embedding model: the vectors are no embedding model's, but the traffic, the
dimension read from the reply and the
one batched call per extraction are real. Re-record: start the server, then
``uv run pytest --memlayer-record=rewrite tests/test_embedding_cassettes.py``.
"""

from __future__ import annotations

import pytest

from memlayer import DuckDb, MemoryManager
from memlayer._internal.search.embedders import LiteLLMEmbedder

from .conftest import LOCAL_API_BASE, LOCAL_MODEL

pytestmark = pytest.mark.memlayer_cassette

USER = "alice@example.com"


@pytest.fixture
def embedder() -> LiteLLMEmbedder:
    return LiteLLMEmbedder(LOCAL_MODEL, api_base=LOCAL_API_BASE, api_key="local", num_retries=0)


def test_embeddings_are_stored_with_the_model_and_its_dimension(db: DuckDb, embedder: LiteLLMEmbedder) -> None:
    manager = MemoryManager(db=db, embedder=embedder)
    tea = manager.add_user_memory("Drinks green tea every morning", user_id=USER)
    manager.add_user_memory("Works as a nurse in Lisbon", user_id=USER)
    found = manager.search_user_memories("green tea", user_id=USER, limit=1)
    assert [m.memory_id for m in found] == [tea.memory_id]
    assert embedder.calls == 3  # one per add, one for the query
    assert db.sql("SELECT model, dim FROM embedders") == [("openai:qwen1.5b", 1536)]
    assert db.sql("SELECT model, octet_length(embedding) FROM memory_embeddings") == [("openai:qwen1.5b", 1536 * 4)] * 2
    # Every remote embedding call is in the usage log, for the user it was made for.
    assert (
        db.sql("SELECT purpose, model, user_id, status FROM llm_calls")
        == [("embedding", "openai:qwen1.5b", USER, "ok")] * 3
    )


def test_one_batched_embedding_call_per_extraction(db: DuckDb, embedder: LiteLLMEmbedder) -> None:
    manager = MemoryManager(
        model=LOCAL_MODEL, db=db, api_base=LOCAL_API_BASE, api_key="local", provider_retries=0, embedder=embedder
    )
    result = manager.create_user_memories(
        [{"role": "user", "content": "I moved to Porto last month and I started learning the guitar."}], user_id=USER
    )
    written = [c for c in result.changes if c.operation in ("add", "update")]
    assert embedder.calls == 1  # a remote embedder: candidates were ranked without embedding the input
    rows = db.sql("SELECT count(*) FROM memory_embeddings WHERE model = 'openai:qwen1.5b'")
    assert rows == [(len(written),)]
    # The conversation they came from is embedded in the same call, and stored beside each of them.
    sources = db.sql("SELECT count(DISTINCT input_embedding) FROM memory_embeddings WHERE input_embedding IS NOT NULL")
    assert sources == [(1,)] and written
    assert db.sql("SELECT purpose, user_id FROM llm_calls ORDER BY purpose") == [
        ("embedding", USER),
        ("extraction", USER),
    ]
    # What qwen1.5b replied in the recording: both facts, embedded with their conversation in that one call.
    assert [(c.operation, c.memory) for c in result.changes] == [
        ("add", "Moved to Porto last month"),
        ("add", "Started learning the guitar"),
    ]
