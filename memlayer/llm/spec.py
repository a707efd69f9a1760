"""Model strings: ``"openai:gpt-4o"`` or LiteLLM's ``"openai/gpt-4o"``, parsed into a `ModelSpec`.

Switching provider means changing that string. The provider is checked against LiteLLM's list, read
from its source without importing it (LiteLLM takes seconds to import).
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import pathlib
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..errors import ConfigError

__all__ = ["Mode", "ModelSpec", "known_providers", "parse_model"]

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

    @property
    def instructor_mode(self) -> Mode:
        """The explicit mode, else JSON schema for local servers and tool calling for hosted APIs."""
        if self.mode is not None:
            return self.mode
        if self.provider in _JSON_SCHEMA_PROVIDERS or (self.provider == "openai" and self.api_base):
            return "json_schema"
        return "tools"

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}"


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
    providers = known_providers()
    if providers and provider not in providers:
        close = difflib.get_close_matches(provider, sorted(providers), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(f'{c}:{name}') for c in close)}?" if close else ""
        raise ConfigError(f"unknown provider {provider!r} in model {model!r}{hint}")
    if mode is not None and mode not in ("tools", "json_schema", "json", "md_json"):
        raise ConfigError(f"mode must be one of 'tools', 'json_schema', 'json', 'md_json', got {mode!r}")
    return ModelSpec(provider=provider, name=name, api_base=api_base, api_key=api_key, mode=mode, extra=extra)


@functools.lru_cache(maxsize=1)
def known_providers() -> frozenset[str]:
    """LiteLLM's provider names, read from its source without importing it (2 ms instead of seconds).

    Only the ``LlmProviders`` class is parsed, not the 10k-line module around it (100 ms). Empty when
    LiteLLM's layout has changed: then the provider is not checked here, and LiteLLM's own error
    (wrapped in `ModelError`) reports it on the first call.
    """
    try:
        spec = importlib.util.find_spec("litellm")
        assert spec is not None and spec.submodule_search_locations
        source = pathlib.Path(spec.submodule_search_locations[0], "types", "utils.py").read_text()
        start = source.index("\nclass LlmProviders(") + 1
        end = re.search(r"\n(?=\S)", source[start:])  # the next top-level line
        block = source[start : start + end.start()] if end else source[start:]
        enum = next(
            node for node in ast.parse(block).body if isinstance(node, ast.ClassDef) and node.name == "LlmProviders"
        )
    except (AssertionError, OSError, StopIteration, SyntaxError, ValueError):
        return frozenset()
    return frozenset(
        stmt.value.value
        for stmt in enum.body
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
    )


def _bare_model_hint(text: str) -> str:
    lowered = text.lower()
    for prefix, provider in (("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
                             ("claude", "anthropic"), ("gemini", "gemini"), ("llama", "ollama"),
                             ("mistral", "mistral"), ("command", "cohere")):  # fmt: skip
        if lowered.startswith(prefix):
            return f"; did you mean '{provider}:{text}'?"
    return ""
