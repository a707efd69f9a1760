"""``from memlayer.models.google import Gemini``: Agno's model class, as the model string ``"gemini:<id>"``."""

from __future__ import annotations

from typing import Any

from .._internal.llm.spec import ModelSpec
from . import model_spec

__all__ = ["Gemini"]


def Gemini(
    id: str = "gemini-2.5-flash", *, api_key: str | None = None, base_url: str | None = None, **options: Any
) -> ModelSpec:
    """Agno\'s ``Gemini(id="gemini-2.5-flash")``: the `ModelSpec` of ``"gemini:gemini-2.5-flash"``."""
    return model_spec("Gemini", "gemini", id, api_key, base_url, **options)
