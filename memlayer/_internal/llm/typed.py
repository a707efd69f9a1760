"""The one typed LLM call memlayer makes, validated against a Pydantic model: Instructor over LiteLLM
(`memlayer._internal.llm.road`).

Written once as a flow (`memlayer._internal.flow`): `complete_typed` drives it in the caller's thread,
`acomplete_typed` in the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from .. import flow
from ..records import LLMUsage
from .road import road
from .spec import ModelSpec
from .usage import UsageMeter, call_failure, usage_of

__all__ = ["TypedReply", "acomplete_typed", "complete_typed", "typed_call"]

ResponseT = TypeVar("ResponseT", bound=BaseModel)


@dataclass(frozen=True)
class TypedReply:
    """A validated reply, its usage, and the seconds spent waiting on the provider."""

    value: BaseModel
    usage: LLMUsage
    model_seconds: float


def typed_call(
    spec: ModelSpec,
    messages: list[dict[str, str]],
    response_model: type[ResponseT],
    *,
    purpose: str,
    retries: int,
    provider_retries: int = 2,
) -> flow.Flow[TypedReply]:
    """One typed call; validation errors are re-asked (``retries``), transient provider errors re-sent."""
    way = road(spec)
    way.ready()
    meter = UsageMeter()
    started = time.perf_counter()
    try:
        # temperature 0: extraction should be repeatable; Instructor's max_retries re-asks after a
        # validation error.
        request: dict[str, Any] = way.keywords(
            purpose=purpose, messages=messages, response_model=response_model, max_retries=retries
        )
        request = {"temperature": 0, **request}
        value = yield from way.typed(request, meter, provider_retries)
    except Exception as exc:
        raise call_failure(spec, purpose, meter, time.perf_counter() - started, exc) from exc
    usage = usage_of(spec, purpose, meter, time.perf_counter() - started)
    return TypedReply(value=value, usage=usage, model_seconds=meter.model_seconds)


# The two drivers of `typed_call`, with its signature: in this thread, and in the event loop.
complete_typed = flow.sync_driver(typed_call, "complete_typed")
acomplete_typed = flow.async_driver(typed_call, "acomplete_typed")
