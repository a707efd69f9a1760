"""What a model call cost and how it failed: the meter at the completion function, and `LLMCallError`.

Every failed model call (typed, chat step, embedding) is turned into memlayer's error here, in `call_failure`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import clock
from ..cassettes import explain_unrecorded
from ..errors import MemlayerError, ModelError
from ..records import LLMUsage
from .spec import ModelSpec

__all__ = ["LLMCallError", "Pricing", "UsageMeter", "call_failure", "usage_of"]

Pricing = Callable[[Any], "float | None"]  # a response's cost in USD; None (or an error) when unpriced

_UNPRICED: set[str] = set()  # models LiteLLM has no price for; asking again costs ~1 ms per call


@dataclass
class UsageMeter:
    """What the provider was actually asked: counted at the completion function Instructor calls."""

    count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    model_seconds: float = 0.0
    last_reply: str | None = None

    def record(self, response: Any, seconds: float, price: Pricing) -> None:
        """Count one answered request; ``price`` gives its cost (``None`` or an error: not priced)."""
        # ``count`` is moved by `send_with_retries` for every request sent, answered or not.
        self.model_seconds += seconds
        usage = getattr(response, "usage", None)
        self.input_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        self.output_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        self.last_reply = _reply_text(response)
        model = str(getattr(response, "model", ""))
        if model in _UNPRICED:
            return
        try:
            cost = price(response)
        except Exception:  # LiteLLM raises for a model it has no price for
            cost = None
        if cost is None:  # no price known for this model (local servers, new models): ask once
            _UNPRICED.add(model)
            return
        self.cost_usd = (self.cost_usd or 0.0) + float(cost)


def _reply_text(response: Any) -> str | None:
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return None
    if getattr(message, "tool_calls", None):
        return str(message.tool_calls[0].function.arguments)
    content = getattr(message, "content", None)
    return None if content is None else str(content)


class LLMCallError(ModelError):
    """A `ModelError` that also carries the usage of the failed call, for the usage log."""

    def __init__(self, message: str, *, model: str, usage: LLMUsage, last_reply: str | None) -> None:
        super().__init__(message, model=model, attempts=usage.attempts, last_reply=last_reply)
        self.usage = usage


def usage_of(spec: ModelSpec, purpose: str, meter: UsageMeter, seconds: float) -> LLMUsage:
    return LLMUsage(
        call_id=clock.new_id(),
        model=str(spec),
        purpose=purpose,
        input_tokens=meter.input_tokens,
        output_tokens=meter.output_tokens,
        cost_usd=meter.cost_usd,
        latency_ms=seconds * 1000,
        attempts=max(meter.count, 1),
    )


def call_failure(
    spec: ModelSpec,
    purpose: str,
    meter: UsageMeter,
    seconds: float,
    exc: Exception,
    *,
    request: str = "this request",
) -> MemlayerError:
    """The error a failed call raises: a `CassetteError` for an unrecorded request, else `LLMCallError`."""
    changed = "The texts or model" if purpose == "embedding" else "The prompt, schema or model"
    unrecorded = explain_unrecorded(exc, subject=str(spec), request=request, changed=changed)
    if unrecorded is not None:
        return unrecorded
    # Instructor wraps a provider error in its retry exception; report the provider's own words.
    # By name: a failure before Instructor was imported must not import it.
    wrapped = any(kind.__name__ == "InstructorRetryException" for kind in type(exc).__mro__)
    cause = exc.__cause__ if wrapped and exc.__cause__ else exc
    what = "the provider failed" if meter.last_reply is None else "the reply never validated"
    summary = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else type(cause).__name__
    return LLMCallError(
        f"{spec}: {what} after {max(meter.count, 1)} attempt(s), nothing was written: {summary}",
        model=str(spec),
        usage=usage_of(spec, purpose, meter, seconds),
        last_reply=meter.last_reply,
    )
