"""Agno's model classes as model strings: ``OpenAIChat(id="gpt-4o")`` is ``parse_model("openai:gpt-4o")``.

Agno passes a model object; memlayer takes a LiteLLM model string. These functions keep Agno's import
paths and argument names (``from memlayer.models.openai import OpenAIChat``) and return the `ModelSpec`
the string would give. Only LiteLLM completion parameters are kept (`memlayer._internal.llm.options`).
"""

from __future__ import annotations

from typing import Any

from .._internal.llm.options import model_options
from .._internal.llm.spec import ModelSpec, parse_model

__all__ = ["model_spec"]


def model_spec(
    owner: str, provider: str, id: str, api_key: str | None, base_url: str | None, **options: Any
) -> ModelSpec:
    """The `ModelSpec` of an Agno model class's arguments; a keyword memlayer would not send is a `ConfigError`."""
    given = {key: value for key, value in options.items() if value is not None}
    extra = model_options(owner, given, None, ["id", "api_key", "base_url"])
    return parse_model(f"{provider}:{id}", api_key=api_key, api_base=base_url, **extra)
