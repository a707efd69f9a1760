"""Replay needs no provider key: placeholders for the key variables that are unset, while a cassette replays.

LiteLLM and the provider SDKs refuse to build a request without a key ("Missing credentials"), even
when a cassette would answer it. A cassette never stores a key and never matches on one (auth headers
and key-like fields are scrubbed, requests match on method, path and body: `memlayer._internal.cassettes.format`),
so any value lets the request reach the cassette, and with record mode ``none`` nothing leaves the
process: a request without a recording fails instead of being sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PLACEHOLDER_KEY", "PROVIDER_KEY_VARIABLES", "placeholder_keys"]

PLACEHOLDER_KEY = "memlayer-replay-placeholder"

# The key variables LiteLLM's providers read (from `litellm.validate_environment` over its provider list;
# tests/test_cassette_keys.py checks the main providers against it). Other credentials (AWS profiles,
# Vertex projects, Azure's api_base) are not keys LiteLLM insists on before the request, or name a host.
PROVIDER_KEY_VARIABLES = (
    "AI21_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY", "BASETEN_API_KEY", "CEREBRAS_API_KEY",
    "CLOUDFLARE_API_KEY", "CODESTRAL_API_KEY", "COHERE_API_KEY", "DASHSCOPE_API_KEY", "DATAROBOT_API_TOKEN",
    "DEEPINFRA_API_KEY", "DEEPSEEK_API_KEY", "FIREWORKS_AI_API_KEY", "GEMINI_API_KEY", "GROQ_API_KEY",
    "HUGGINGFACE_API_KEY", "MISTRAL_API_KEY", "MOONSHOT_API_KEY", "NEBIUS_API_KEY", "NOVITA_API_KEY",
    "NVIDIA_NIM_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "PERPLEXITYAI_API_KEY", "REPLICATE_API_KEY",
    "TOGETHERAI_API_KEY", "VOYAGE_API_KEY", "XAI_API_KEY",
)  # fmt: skip


@contextmanager
def placeholder_keys() -> Iterator[list[str]]:
    """Set `PLACEHOLDER_KEY` in each unset `PROVIDER_KEY_VARIABLES`; yield their names; unset them after.

    A variable the caller set is left alone, and so is one the block changed; the environment is the
    process's, so another thread sees the placeholders while the block runs (it cannot send with them:
    they open no account).
    """
    added = [name for name in PROVIDER_KEY_VARIABLES if not os.environ.get(name)]
    previous = {name: os.environ.get(name) for name in added}  # unset, or set to "" (which counts as unset)
    for name in added:
        os.environ[name] = PLACEHOLDER_KEY
    try:
        yield added
    finally:
        for name in added:
            if os.environ.get(name) == PLACEHOLDER_KEY:
                old = previous[name]
                if old is None:
                    del os.environ[name]
                else:
                    os.environ[name] = old
