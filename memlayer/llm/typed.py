"""The one typed LLM call memlayer makes: Instructor over LiteLLM, validated against a Pydantic model.

Written once as a flow (`memlayer.flow`): `complete_typed` drives it in the caller's thread over
``litellm.completion``, `acomplete_typed` in the event loop over ``litellm.acompletion``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel

from .. import flow
from ..records import LLMUsage
from .litellm import check_keys_when_recording, import_litellm
from .spec import ModelSpec
from .usage import UsageMeter, call_failure, usage_of

__all__ = ["TypedReply", "acomplete_typed", "complete_typed", "send_with_retries", "typed_call"]

ResponseT = TypeVar("ResponseT", bound=BaseModel)
# What LiteLLM raises for a request worth sending again: rate limits, timeouts, dropped connections, 5xx.
_TRANSIENT = ("RateLimitError", "Timeout", "APIConnectionError", "InternalServerError", "ServiceUnavailableError")


@dataclass(frozen=True)
class TypedReply:
    """A validated reply, its usage, and the seconds spent waiting on the provider."""

    value: BaseModel
    usage: LLMUsage
    model_seconds: float


def send_with_retries(litellm: ModuleType, meter: UsageMeter, retries: int, kwargs: dict[str, Any]) -> flow.Flow[Any]:
    """One completion request, sent again after a transient provider error; every attempt is counted."""
    for retry in range(retries + 1):
        meter.count += 1
        started = time.perf_counter()
        try:
            response = yield flow.Call(litellm.completion, litellm.acompletion, **kwargs)
        except Exception as exc:
            if retry == retries or not _transient(exc, litellm):
                raise
            yield flow.Sleep(min(0.25 * 2.0**retry, 4.0))
            continue
        meter.record(response, time.perf_counter() - started, litellm)
        return response
    raise AssertionError("unreachable: the last attempt returns or raises")


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
    import instructor

    litellm = import_litellm()
    check_keys_when_recording(spec)
    meter = UsageMeter()
    request = _request(spec, messages, response_model, retries)

    def send(**kwargs: Any) -> Any:
        return flow.run(send_with_retries(litellm, meter, provider_retries, kwargs))

    async def asend(**kwargs: Any) -> Any:
        return await flow.arun(send_with_retries(litellm, meter, provider_retries, kwargs))

    mode = _instructor_mode(spec)
    started = time.perf_counter()
    try:
        value = yield flow.Call(
            _create(instructor.from_litellm(send, mode=mode)),
            _create(instructor.from_litellm(asend, mode=mode)),
            **request,
        )
    except Exception as exc:
        raise call_failure(spec, purpose, meter, time.perf_counter() - started, exc) from exc
    usage = usage_of(spec, purpose, meter, time.perf_counter() - started)
    return TypedReply(value=value, usage=usage, model_seconds=meter.model_seconds)


# The two drivers of `typed_call`, with its signature: in this thread, and in the event loop.
complete_typed = flow.sync_driver(typed_call, "complete_typed")
acomplete_typed = flow.async_driver(typed_call, "acomplete_typed")


def _create(client: Any) -> Callable[..., Any]:
    return client.chat.completions.create  # type: ignore[no-any-return]


def _request(
    spec: ModelSpec, messages: list[dict[str, str]], response_model: type[BaseModel], retries: int
) -> dict[str, Any]:
    # temperature 0: extraction should be repeatable. LiteLLM's own retries are off: send_with_retries
    # retries rate limits and transient errors, so each request is counted; Instructor's max_retries
    # re-asks after a validation error.
    kwargs: dict[str, Any] = {"temperature": 0, **spec.extra, "num_retries": 0}
    kwargs.update(model=spec.litellm_model, messages=messages, response_model=response_model, max_retries=retries)
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    if spec.api_key:
        kwargs["api_key"] = spec.api_key
    return kwargs


def _transient(exc: Exception, litellm: ModuleType) -> bool:
    kinds = tuple(kind for kind in (getattr(litellm, name, None) for name in _TRANSIENT) if isinstance(kind, type))
    return isinstance(exc, kinds)


def _instructor_mode(spec: ModelSpec) -> Any:
    import instructor

    return {
        "tools": instructor.Mode.TOOLS,
        "json_schema": instructor.Mode.JSON_SCHEMA,
        "json": instructor.Mode.JSON,
        "md_json": instructor.Mode.MD_JSON,
    }[spec.instructor_mode]
