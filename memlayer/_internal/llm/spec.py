"""Model strings: ``"openai:gpt-4o"`` or LiteLLM's ``"openai/gpt-4o"``, parsed into a `ModelSpec`.

Switching provider means changing that string. Parsing checks the form; the provider is checked against
LiteLLM's own list (`memlayer._internal.llm.litellm.check_provider`) once LiteLLM's background import has finished,
before the model's first request (`memlayer._internal.llm.road`), so building a manager never waits for that import.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from ..errors import ConfigError

__all__ = ["Mode", "ModelSpec", "parse_model"]

Mode = Literal["tools", "json_schema", "json", "md_json"]

# Names people type that LiteLLM spells differently.
_PROVIDER_ALIASES = {"google": "gemini", "google-gla": "gemini", "google-vertex": "vertex_ai", "vertex": "vertex_ai"}
# Providers whose models are local or OpenAI-compatible servers: tool calling is often not enforced
# there (llama.cpp ignores tool_choice), while a JSON schema is grammar-constrained.
_JSON_SCHEMA_PROVIDERS = frozenset(
    {"ollama", "ollama_chat", "hosted_vllm", "vllm", "lm_studio", "llamafile", "openai_like", "custom_openai"}
)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model string, plus how to reach it. ``str(spec)`` is the ``provider:model`` form."""

    provider: str
    name: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    mode: Mode | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def litellm_model(self) -> str:
        return f"{self.provider}/{self.name}"

    @functools.cached_property
    def instructor_mode(self) -> Mode:
        """The explicit mode, else JSON schema for local servers and tool calling for hosted APIs.

        An ``openai`` model is a local or compatible server when its base URL, from ``api_base=`` or the
        environment (``OPENAI_BASE_URL`` / ``OPENAI_API_BASE``, as LiteLLM reads them), is not OpenAI's
        host. Resolved once per spec.
        """
        if self.mode is not None:
            return self.mode
        if self.provider in _JSON_SCHEMA_PROVIDERS or (self.provider == "openai" and _compatible_server(self)):
            return "json_schema"
        return "tools"

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}"


def _compatible_server(spec: ModelSpec) -> bool:
    base = spec.api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
    return bool(base) and urlsplit(str(base)).hostname != "api.openai.com"


def parse_model(
    model: str | ModelSpec,
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    mode: Mode | None = None,
    **extra: Any,
) -> ModelSpec:
    """Parse ``"provider:model"`` or ``"provider/model"``; the first ``:`` or ``/`` separates them.

    Raises `ConfigError`, with a suggestion, for a string without a provider or an unknown one.
    """
    if isinstance(model, ModelSpec):
        return replace(
            model,
            api_base=api_base or model.api_base,
            api_key=api_key or model.api_key,
            mode=mode or model.mode,
            extra={**model.extra, **extra},
        )
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model must be a string like 'openai:gpt-4o', got {model!r}")
    text = model.strip()
    cut = min((i for i in (text.find(":"), text.find("/")) if i >= 0), default=-1)
    if cut <= 0 or cut == len(text) - 1:
        raise ConfigError(
            f"model {model!r} must name a provider and a model, like 'openai:gpt-4o' or 'openai/gpt-4o'"
            + _bare_model_hint(text)
        )
    provider, name = text[:cut].lower(), text[cut + 1 :]
    provider = _PROVIDER_ALIASES.get(provider, provider)
    if mode is not None and mode not in ("tools", "json_schema", "json", "md_json"):
        raise ConfigError(f"mode must be one of 'tools', 'json_schema', 'json', 'md_json', got {mode!r}")
    return ModelSpec(provider=provider, name=name, api_base=api_base, api_key=api_key, mode=mode, extra=extra)


def _bare_model_hint(text: str) -> str:
    lowered = text.lower()
    for prefix, provider in (("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
                             ("claude", "anthropic"), ("gemini", "gemini"), ("llama", "ollama"),
                             ("mistral", "mistral"), ("command", "cohere")):  # fmt: skip
        if lowered.startswith(prefix):
            return f"; did you mean '{provider}:{text}'?"
    return ""
