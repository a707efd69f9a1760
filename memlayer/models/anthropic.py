"""``from memlayer.models.anthropic import Claude``: Agno's model class, as the model string ``"anthropic:<id>"``."""

from __future__ import annotations

from typing import Any

from .._internal.llm.spec import ModelSpec
from . import model_spec

__all__ = ["Claude"]


def Claude(
    id: str = "claude-sonnet-4-5", *, api_key: str | None = None, base_url: str | None = None, **options: Any
) -> ModelSpec:
    """Agno\'s ``Claude(id="claude-sonnet-4-5")``: the `ModelSpec` of ``"anthropic:claude-sonnet-4-5"``."""
    return model_spec("Claude", "anthropic", id, api_key, base_url, **options)
