"""The one typed LLM call memlayer makes, validated against a Pydantic model: Instructor over LiteLLM,
or, for OpenAI-compatible servers while LiteLLM is not loaded, memlayer's own HTTP call
(`memlayer.llm.openai_http`, which says when) with Instructor's protocol (`memlayer.llm.structured`).

Written once as a flow (`memlayer.flow`): `complete_typed` drives it in the caller's thread,
`acomplete_typed` in the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel

from .. import flow
from ..records import LLMUsage
from . import openai_http, prices, structured
from .litellm import check_keys_when_recording, import_litellm
from .spec import ModelSpec
from .usage import Pricing, UsageMeter, call_failure, litellm_pricing, usage_of

__all__ = ["Transport", "TypedReply", "acomplete_typed", "complete_typed", "send_with_retries", "typed_call"]

ResponseT = TypeVar("ResponseT", bound=BaseModel)
# What LiteLLM raises for a request worth sending again: rate limits, timeouts, dropped connections, 5xx.
_TRANSIENT = ("RateLimitError", "Timeout", "APIConnectionError", "InternalServerError", "ServiceUnavailableError")


@dataclass(frozen=True)
class TypedReply:
    """A validated reply, its usage, and the seconds spent waiting on the provider."""

    value: BaseModel
    usage: LLMUsage
    model_seconds: float


@dataclass(frozen=True)
class Transport:
    """How one completion request is sent (blocking and awaitable), and what its reply cost."""

    send: Callable[..., Any]
    asend: Callable[..., Awaitable[Any]]
    price: Pricing
    litellm: ModuleType | None = None  # whose error types are transient, for LiteLLM's transport


def send_with_retries(transport: Transport, meter: UsageMeter, retries: int, kwargs: dict[str, Any]) -> flow.Flow[Any]:
    """One completion request, sent again after a transient provider error; every attempt is counted."""
    for retry in range(retries + 1):
        meter.count += 1
        started = time.perf_counter()
        try:
            response = yield flow.Call(transport.send, transport.asend, **kwargs)
        except Exception as exc:
            if retry == retries or not _transient(exc, transport.litellm):
                raise
            yield flow.Sleep(min(0.25 * 2.0**retry, 4.0))
            continue
        meter.record(response, time.perf_counter() - started, transport.price)
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
    direct = openai_http.uses_direct(spec)
    check_keys_when_recording(spec)
    meter = UsageMeter()
    if direct:
        body = structured.request_body(spec, messages, response_model)
        call = structured.typed_reply(
            spec, body, response_model, retries, _direct_sender(spec, meter, provider_retries)
        )
    else:
        call = _instructor_call(
            import_litellm(), spec, meter, _request(spec, messages, response_model, retries), provider_retries
        )
    started = time.perf_counter()
    try:
        value = yield from call
    except Exception as exc:
        raise call_failure(spec, purpose, meter, time.perf_counter() - started, exc) from exc
    usage = usage_of(spec, purpose, meter, time.perf_counter() - started)
    return TypedReply(value=value, usage=usage, model_seconds=meter.model_seconds)


def _direct_sender(
    spec: ModelSpec, meter: UsageMeter, provider_retries: int
) -> Callable[[dict[str, Any]], flow.Flow[Any]]:
    def send(**body: Any) -> Any:
        return openai_http.chat(spec, body)

    async def asend(**body: Any) -> Any:
        return await openai_http.achat(spec, body)

    transport = Transport(send, asend, prices.pricing(spec.provider))
    return lambda body: send_with_retries(transport, meter, provider_retries, body)


def _instructor_call(
    litellm: ModuleType, spec: ModelSpec, meter: UsageMeter, request: dict[str, Any], provider_retries: int
) -> flow.Flow[Any]:
    import instructor

    transport = Transport(litellm.completion, litellm.acompletion, litellm_pricing(litellm), litellm)

    def send(**kwargs: Any) -> Any:
        return flow.run(send_with_retries(transport, meter, provider_retries, kwargs))

    async def asend(**kwargs: Any) -> Any:
        return await flow.arun(send_with_retries(transport, meter, provider_retries, kwargs))

    mode = _instructor_mode(spec)
    return (
        yield flow.Call(
            _create(instructor.from_litellm(send, mode=mode)),
            _create(instructor.from_litellm(asend, mode=mode)),
            **request,
        )
    )


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


def _transient(exc: Exception, litellm: ModuleType | None) -> bool:
    if isinstance(exc, openai_http.ProviderError):
        return exc.transient
    if litellm is None:
        return False
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
