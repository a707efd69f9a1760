"""``from memlayer.models.litellm import LiteLLM``: Agno's LiteLLM model class, as a memlayer model string."""

from __future__ import annotations

from typing import Any

from .._internal.llm.spec import ModelSpec, parse_model
from . import model_spec

__all__ = ["LiteLLM"]


def LiteLLM(
    id: str = "gpt-4o", *, api_key: str | None = None, api_base: str | None = None, **options: Any
) -> ModelSpec:
    """Agno's ``LiteLLM(id="openai/gpt-4o")``: ``id`` is already a LiteLLM model name."""
    spec = parse_model(id)
    return model_spec("LiteLLM", spec.provider, spec.name, api_key, api_base, **options)
