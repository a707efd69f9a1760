"""OpenTelemetry spans around memlayer's operations, when ``opentelemetry-api`` is installed.

An extraction (``memlayer.extract``), the write of its reply (``memlayer.apply``), a search
(``search``) and an agent's run (``agent.run``) are each one span, named and labelled
after OpenTelemetry's GenAI semantic conventions (``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.provider.name``) plus ``memlayer.*`` attributes. LiteLLM's own OpenTelemetry callback, if the
user turns it on, nests its request spans inside them.

Without ``opentelemetry-api`` nothing is imported and `span` is a no-op; with it, the API is imported at
the first span, not at ``import memlayer``. The API alone records nothing: spans reach an exporter only
once the application installs the OpenTelemetry SDK and sets a tracer provider.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .spec import ModelSpec

__all__ = ["span"]


@functools.cache
def _tracer() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    from ... import __version__

    return trace.get_tracer("memlayer", __version__)


@contextmanager
def span(
    name: str,
    *,
    operation: str | None = None,
    model: ModelSpec | None = None,
    user_id: str | None = None,
    **attributes: str | int | None,
) -> Iterator[None]:
    """A span ``memlayer.<name>`` around the block (``operation``: its ``gen_ai.operation.name``)."""
    tracer = _tracer()
    if tracer is None:
        yield
        return
    values: dict[str, str | int | None] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": model.name if model else None,
        "gen_ai.provider.name": model.provider if model else None,
        "memlayer.user_id": user_id,
        **{f"memlayer.{key}": value for key, value in attributes.items()},
    }
    given = {key: value for key, value in values.items() if value is not None}
    with tracer.start_as_current_span(f"memlayer.{name}", attributes=given):
        yield
