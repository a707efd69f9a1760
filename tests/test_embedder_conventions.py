"""An embedding model's conventions (query and document prefixes, task types) and one request per write.

The cassette tests replay traffic recorded against nomic-embed-text-v1.5, a real embedding model served
by ../shared/tools/local-llm. Re-record: ``LOCAL_LLM_PORT=8766 ../shared/tools/local-llm start
nomic-embed``, then ``uv run pytest --memlayer-record=rewrite tests/test_embedder_conventions.py``.
The tests of `conventions_for` are pure logic (which prefix a model name gets): no model is involved.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from memlayer import DuckDb, MemoryManager
from memlayer._internal.errors import ConfigError
from memlayer._internal.search.conventions import conventions_for
from memlayer._internal.search.embedders import LiteLLMEmbedder

NOMIC_API_BASE = os.environ.get("MEMLAYER_NOMIC_API_BASE", "http://127.0.0.1:8766/v1")
USER = "alice@example.com"


def _sent(cassette: Any, before: int) -> list[dict[str, Any]]:
    """The bodies of the requests sent since ``before`` interactions were held: replayed ones (play_count)
    when replaying, newly recorded ones when recording."""
    new = len(cassette.data) - before
    count = cassette.play_count + new
    bodies = [json.loads(request.body) for request in cassette.requests]
    return bodies[:count] if new == 0 else bodies[before:]


@pytest.mark.memlayer_cassette
def test_a_direct_add_makes_one_embedding_request_with_the_models_prefixes(db: DuckDb, memlayer_cassette: Any) -> None:
    embedder = LiteLLMEmbedder("openai/nomic-embed", api_base=NOMIC_API_BASE, api_key="local", num_retries=0)
    manager = MemoryManager(db=db, embedder=embedder)
    held = len(memlayer_cassette.data)
    manager.add_user_memory(
        "Drinks green tea every morning", user_id=USER, input="I start every day with a cup of green tea."
    )
    manager.add_user_memory("Works as a nurse in Lisbon", user_id=USER)
    (adding_tea, adding_nurse) = _sent(memlayer_cassette, held)
    # One request per add: the memory and the input it came from travel together, marked as documents.
    assert adding_tea["input"] == [
        "search_document: Drinks green tea every morning",
        "search_document: I start every day with a cup of green tea.",
    ]
    assert adding_nurse["input"] == ["search_document: Works as a nurse in Lisbon"]
    found = manager.search_user_memories("What does Alice drink?", user_id=USER, limit=2)
    asking = _sent(memlayer_cassette, held)[2:]
    assert [body["input"] for body in asking] == [["search_query: What does Alice drink?"]]
    assert [m.memory for m in found] == ["Drinks green tea every morning", "Works as a nurse in Lisbon"]
    assert db.sql("SELECT model, dim FROM embedders") == [("openai:nomic-embed", 768)]
    assert db.sql("SELECT purpose, count(*) FROM llm_calls GROUP BY purpose") == [("embedding", 3)]


@pytest.mark.memlayer_cassette
def test_an_import_embeds_in_batches_and_the_prefix_option_wins(db: DuckDb, memlayer_cassette: Any) -> None:
    embedder = LiteLLMEmbedder(
        "openai/nomic-embed", api_base=NOMIC_API_BASE, api_key="local", num_retries=0, document_prefix=""
    )
    manager = MemoryManager(db=db, embedder=embedder)
    texts = ["Has a dog named Biscuit", "Plays the cello", "Is allergic to peanuts", "Lives in Porto"]
    for text in texts:  # written by hand with no embedder's vectors: reembed embeds them in batches
        MemoryManager(db=db, embedder="lexical").add_user_memory(text, user_id=USER)
    held = len(memlayer_cassette.data)
    assert manager.reembed_memories(batch_size=3) == 4
    batches = [body["input"] for body in _sent(memlayer_cassette, held)]
    assert sorted(len(b) for b in batches) == [1, 3]  # two requests for four memories, no prefix added
    assert sorted(text for batch in batches for text in batch) == sorted(texts)


def test_known_models_get_their_prefixes_and_any_model_an_option() -> None:
    nomic = conventions_for("ollama", "nomic-embed-text")
    assert (nomic.query_prefix, nomic.document_prefix) == ("search_query: ", "search_document: ")
    e5 = conventions_for("huggingface", "intfloat/multilingual-e5-large")
    assert e5.texts("query", ["tea"]) == ["query: tea"] and e5.texts("document", ["tea"]) == ["passage: tea"]
    assert conventions_for("openai", "text-embedding-3-small").any is False
    assert conventions_for("gemini", "text-embedding-004").params("query") == {"task_type": "RETRIEVAL_QUERY"}
    assert conventions_for("cohere", "embed-english-v3.0").params("document") == {"input_type": "search_document"}
    custom = LiteLLMEmbedder("openai/my-embedder", query_prefix="Q: ", document_prefix="D: ")
    assert custom.conventions.texts("query", ["a"]) == ["Q: a"] and custom.conventions.texts("document", ["a"]) == [
        "D: a"
    ]
    off = LiteLLMEmbedder("ollama/nomic-embed-text", query_prefix="", document_prefix="")
    assert off.conventions.any is False


def test_a_prefix_that_is_not_text_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="query_prefix must be a string"):
        LiteLLMEmbedder("ollama/nomic-embed-text", query_prefix=3)  # type: ignore[arg-type]
