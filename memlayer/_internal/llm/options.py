"""Which keyword arguments of `MemoryManager` and `Agent` are sent to the model provider.

The rule: a keyword is sent with every request only when it is a LiteLLM completion parameter listed in
`LITELLM_PARAMS`, or when it is inside ``model_kwargs={...}`` (the explicit way to send anything else,
such as a provider-specific field). Every other unknown keyword is the caller's mistake and raises
`ConfigError`, naming it and suggesting the closest known one: a typo or an option of another framework
must never reach a provider, which would answer 400 (or, worse, ignore it silently).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .. import checks
from ..errors import ConfigError

__all__ = ["LITELLM_PARAMS", "model_options"]

# `litellm.completion`'s own keyword parameters that a caller may set per model (the ones memlayer sets
# itself, such as ``messages``, ``tools`` and ``response_format``, are not here).
LITELLM_PARAMS = frozenset(
    {
        "api_version",
        "audio",
        "base_url",
        "custom_llm_provider",
        "deployment_id",
        "drop_params",
        "extra_body",
        "extra_headers",
        "frequency_penalty",
        "headers",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "mock_response",
        "modalities",
        "n",
        "num_retries",
        "organization",
        "output_format",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "reasoning_effort",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "temperature",
        "thinking",
        "timeout",
        "top_k",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)


def model_options(
    owner: str, options: Mapping[str, Any], model_kwargs: Mapping[str, Any] | None, known: Iterable[str]
) -> dict[str, Any]:
    """The keywords to send to the provider: the LiteLLM parameters among ``options``, then ``model_kwargs``.

    ``known``: ``owner``'s own parameter names, offered as suggestions beside LiteLLM's.
    """
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise ConfigError(f"model_kwargs must be a dict of LiteLLM keyword arguments, got {model_kwargs!r}")
    unknown = [name for name in options if name not in LITELLM_PARAMS]
    if unknown:
        name = unknown[0]
        choices = sorted({*known, *LITELLM_PARAMS})
        close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{owner}() got an unexpected keyword argument {name!r}{hint} "
            f"(only LiteLLM completion parameters are sent to the model; pass anything else the provider "
            f"accepts as model_kwargs={{{name!r}: ...}})"
        )
    merged = {**options, **(model_kwargs or {})}
    if not hasattr(merged.get("timeout"), "read"):  # an httpx.Timeout is LiteLLM's to check
        checks.optional_seconds("timeout", merged.get("timeout"))
    return merged
