"""What a direct call cost, from the price list LiteLLM ships, read as a file without importing LiteLLM.

LiteLLM's ``model_prices_and_context_window_backup.json`` is 3.5 MB and parsing all of it takes ~35 ms,
so only the entry asked for is decoded and parsed: the file's top-level keys are the model names, each
at the start of a line (``    "gpt-4o-mini": {``). The bytes are read once per process (~2 ms); each
model's entry (or its absence) is looked up once. The price is LiteLLM's for a chat completion: prompt
tokens at the input rate, those read from the prompt cache at the cache-read rate, completion tokens at
the output rate, with the service tier's rates (``_priority``, ``_flex``) and the long-prompt tiers
(``_above_128k_tokens``) where the entry has them; an embedding's input tokens at the input rate. A
model the file does not price (local servers) costs ``None``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .openai_http import Completion

__all__ = ["completion_cost", "embedding_cost", "price_entry", "pricing"]

_FILE = "model_prices_and_context_window_backup.json"
_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


@functools.cache
def _price_file() -> bytes:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return b""
    try:
        return Path(spec.submodule_search_locations[0], _FILE).read_bytes()
    except OSError:
        return b""


@functools.lru_cache(maxsize=256)
def price_entry(model: str) -> dict[str, Any] | None:
    """The price list's entry for ``model`` (an exact key), or ``None``."""
    data = _price_file()
    key = f"\n    {json.dumps(model)}:".encode()
    start = data.find(key)
    if start < 0:
        return None
    start += len(key)
    for window in (8_192, 65_536, len(data)):  # an entry is ~1 kB: decode only the bytes it spans
        text = data[start : start + window].decode("utf-8", errors="replace")
        try:
            entry, _ = json.JSONDecoder().raw_decode(text, text.index("{"))
        except ValueError:
            continue
        return entry if isinstance(entry, dict) else None
    return None


def completion_cost(response: Completion, *, provider: str = "openai") -> float | None:
    """The cost in USD of one chat completion, or ``None`` when its model is not priced."""
    entry = price_entry(response.model) or price_entry(f"{provider}/{response.model}")
    if entry is None or response.usage is None or "input_cost_per_token" not in entry:
        return None
    usage = response.usage
    suffix = f"_{response.service_tier}" if response.service_tier in ("priority", "flex") else ""

    def rate(name: str) -> float:
        return float(entry.get(name + suffix, entry.get(name)) or 0.0)

    input_rate, output_rate = rate("input_cost_per_token"), rate("output_cost_per_token")
    tiers = sorted(int(m.group(1)) for k in entry if (m := _TIER.match(k)))
    for tier in reversed(tiers):
        if usage.prompt_tokens > tier * 1000:
            input_rate = float(entry[f"input_cost_per_token_above_{tier}k_tokens"])
            output_rate = float(entry.get(f"output_cost_per_token_above_{tier}k_tokens", output_rate))
            break
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cache_rate = rate("cache_read_input_token_cost") if "cache_read_input_token_cost" in entry else input_rate
    return (usage.prompt_tokens - cached) * input_rate + cached * cache_rate + usage.completion_tokens * output_rate


def embedding_cost(model: str, tokens: int, *, provider: str = "openai") -> float | None:
    """The cost in USD of embedding ``tokens`` input tokens, or ``None`` when ``model`` is not priced."""
    entry = price_entry(model) or price_entry(f"{provider}/{model}")
    if entry is None or "input_cost_per_token" not in entry:
        return None
    return tokens * float(entry["input_cost_per_token"])


def pricing(provider: str) -> Callable[[Any], float | None]:
    """`completion_cost` for ``provider``'s replies, as `memlayer.llm.usage.UsageMeter` takes a price."""
    return functools.partial(completion_cost, provider=provider)
