"""``from memlayer.models.ollama import Ollama``: Agno's model class, as the model string ``"ollama:<id>"``."""

from __future__ import annotations

from typing import Any

from .._internal.llm.spec import ModelSpec
from . import model_spec

__all__ = ["Ollama"]


def Ollama(
    id: str = "llama3.2", *, api_key: str | None = None, base_url: str | None = None, **options: Any
) -> ModelSpec:
    """Agno\'s ``Ollama(id="llama3.2")``: the `ModelSpec` of ``"ollama:llama3.2"``."""
    return model_spec("Ollama", "ollama", id, api_key, base_url, **options)
