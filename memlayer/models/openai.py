"""``from memlayer.models.openai import OpenAIChat``: Agno's model class, as the model string ``"openai:<id>"``."""

from __future__ import annotations

from typing import Any

from .._internal.llm.spec import ModelSpec
from . import model_spec

__all__ = ["OpenAIChat"]


def OpenAIChat(
    id: str = "gpt-4o", *, api_key: str | None = None, base_url: str | None = None, **options: Any
) -> ModelSpec:
    """Agno\'s ``OpenAIChat(id="gpt-4o")``: the `ModelSpec` of ``"openai:gpt-4o"``."""
    return model_spec("OpenAIChat", "openai", id, api_key, base_url, **options)
