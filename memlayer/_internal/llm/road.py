"""The one road of every model call: LiteLLM sends it, Instructor drives a typed reply.

`road(spec)` resolves a `ModelSpec` into how it is called, once per spec: the provider checked against
LiteLLM's list, the Instructor mode, the keywords LiteLLM gets (built here only), the retries of a
transient provider error (here only), and the labels a user's LiteLLM callbacks see in ``metadata``.

What answers is a `Caller`: LiteLLM's ``completion`` / ``acompletion`` / ``embedding``, or an object a
test or a user injects (`inject`; `memlayer.testing.scripted_model` is one), never a patch of
``litellm.completion``. A user's own LiteLLM settings and callbacks apply to every call memlayer makes.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .. import flow
from .litellm import check_keys_when_recording, check_provider, import_instructor, import_litellm
from .spec import ModelSpec
from .usage import UsageMeter

__all__ = ["Caller", "DeadlinePassed", "LiteLLMCaller", "Road", "bounded", "inject", "labelled", "road", "within"]

T = TypeVar("T")
# What LiteLLM raises for a request worth sending again: rate limits, timeouts, dropped connections, 5xx.
_TRANSIENT = ("RateLimitError", "Timeout", "APIConnectionError", "InternalServerError", "ServiceUnavailableError")


class Caller(Protocol):
    """What answers a model call: LiteLLM's functions, with LiteLLM's keywords and replies."""

    def completion(self, **kwargs: Any) -> Any: ...

    def acompletion(self, **kwargs: Any) -> Awaitable[Any]: ...

    def embedding(self, **kwargs: Any) -> Any: ...


class LiteLLMCaller:
    """LiteLLM itself: the default caller."""

    def completion(self, **kwargs: Any) -> Any:
        return import_litellm().completion(**kwargs)

    async def acompletion(self, **kwargs: Any) -> Any:
        return await import_litellm().acompletion(**kwargs)

    def embedding(self, **kwargs: Any) -> Any:
        return import_litellm().embedding(**kwargs)


_LITELLM = LiteLLMCaller()


class _Injected:
    """The caller injected in place of LiteLLM (a scripted model): owned by `inject`, for its block."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.caller: Caller | None = None


_INJECTED = _Injected()


@contextmanager
def inject(caller: Caller) -> Iterator[Caller]:
    """Answer every model call memlayer makes with ``caller`` inside the block (one at a time)."""
    with _INJECTED.lock:
        if _INJECTED.caller is not None:
            raise RuntimeError("a caller is already injected; nest no scripted models")
        _INJECTED.caller = caller
    try:
        yield caller
    finally:
        _INJECTED.caller = None


def _caller() -> Caller:
    return _INJECTED.caller or _LITELLM


# Which memlayer operation and user a call serves, for the ``metadata`` a LiteLLM callback sees.
_LABELS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("memlayer_labels", default={})  # noqa: B039


def labelled(call: flow.Flow[T], **labels: str | None) -> flow.Flow[T]:
    """Run the flow ``call`` with ``labels`` (``operation``, ``user_id``, ...) on every model call it makes."""
    previous = _LABELS.get()
    _LABELS.set({**previous, **{k: v for k, v in labels.items() if v is not None}})
    try:
        return (yield from call)
    finally:
        _LABELS.set(previous)


class DeadlinePassed(TimeoutError):
    """The model did not answer before the call's ``timeout=`` or the run's ``run_timeout=`` passed."""


# The deadline (time.monotonic()) every model call inside a `bounded` flow must answer by, and what set it.
_DEADLINE: contextvars.ContextVar[tuple[float, str] | None] = contextvars.ContextVar("memlayer_deadline", default=None)


@contextmanager
def within(seconds: float | None, what: str) -> Iterator[None]:
    """Every model call made inside the block ends by ``seconds`` from now (``what`` names the setting,
    for the error); an outer, earlier deadline stays in force. ``None``: no new bound."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        yield  # None, or an httpx.Timeout object: LiteLLM applies it per request
        return
    previous = _DEADLINE.get()
    mine = (time.monotonic() + float(seconds), f"{what}={seconds:g} s")
    _DEADLINE.set(mine if previous is None or mine[0] < previous[0] else previous)
    try:
        yield
    finally:
        _DEADLINE.set(previous)  # not reset(token): a flow may end in another copy of the context


def bounded(call: flow.Flow[T], seconds: float | None, what: str) -> flow.Flow[T]:
    """The flow ``call`` run `within` a deadline of ``seconds``."""
    with within(seconds, what):
        return (yield from call)


def _remaining() -> tuple[float, str] | None:
    """Seconds left before the deadline in force, and what set it; None when no deadline is set."""
    deadline = _DEADLINE.get()
    return None if deadline is None else (deadline[0] - time.monotonic(), deadline[1])


@dataclass(frozen=True)
class Road:
    """How one model is called (see the module doc)."""

    spec: ModelSpec

    def ready(self) -> None:
        """Before a request: under a recording cassette, a missing key is named (`check_keys_when_recording`)."""
        check_keys_when_recording(self.spec)

    def keywords(self, *, purpose: str, **call: Any) -> dict[str, Any]:
        """LiteLLM's keywords for one request: the spec's, then the call's; LiteLLM's own retries off
        (`send` retries, so each request is counted); ``metadata`` names the memlayer call."""
        kwargs: dict[str, Any] = {**self.spec.extra, "num_retries": 0, "model": self.spec.litellm_model, **call}
        if self.spec.api_base:
            kwargs["api_base"] = self.spec.api_base
        if self.spec.api_key:
            kwargs["api_key"] = self.spec.api_key
        labels = {"purpose": purpose, **_LABELS.get()}
        kwargs["metadata"] = {**(self.spec.extra.get("metadata") or {}), "memlayer": labels}
        return kwargs

    def send(
        self, meter: UsageMeter, retries: int, kwargs: dict[str, Any], *, embedding: bool = False
    ) -> flow.Flow[Any]:
        """One request, sent again after a transient provider error; every attempt is counted. A
        ``timeout`` bounds the whole call, retries included (LiteLLM's bounds one request)."""
        return (yield from bounded(self._send(meter, retries, kwargs, embedding), kwargs.get("timeout"), "timeout"))

    def _send(self, meter: UsageMeter, retries: int, kwargs: dict[str, Any], embedding: bool) -> flow.Flow[Any]:
        caller, litellm = _caller(), import_litellm()
        for retry in range(retries + 1):
            left = _remaining()
            if left is not None and left[0] <= 0:
                raise DeadlinePassed(f"no answer within {left[1]}: raise it, or check that the provider is up")
            attempt = kwargs if left is None else {**kwargs, "timeout": left[0]}  # LiteLLM ends the request then
            meter.count += 1
            started = time.perf_counter()
            try:
                if embedding:
                    response = yield flow.Call(caller.embedding, _no_async, **attempt)
                else:
                    response = yield flow.Call(caller.completion, caller.acompletion, **attempt)
            except Exception as exc:
                left = _remaining()
                if left is not None and left[0] <= 0.01 and isinstance(exc, _transient_types(litellm)):
                    raise DeadlinePassed(f"no answer within {left[1]}: raise it, or check the provider") from exc
                if retry == retries or not isinstance(exc, _transient_types(litellm)):
                    raise
                yield flow.Sleep(min(0.25 * 2.0**retry, 4.0, max(left[0] if left else 4.0, 0)))
                continue
            if not kwargs.get("stream"):
                price = self.embedding_price if embedding else self.price
                meter.record(response, time.perf_counter() - started, price)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def price(self, response: Any) -> float:
        """LiteLLM's price for one of its responses (raises for a model it has no price for)."""
        return float(import_litellm().completion_cost(completion_response=response))

    def embedding_price(self, response: Any) -> float:
        return float(import_litellm().completion_cost(completion_response=response, call_type="embedding"))

    def typed(self, request: dict[str, Any], meter: UsageMeter, provider_retries: int) -> flow.Flow[Any]:
        """A typed reply through Instructor (``instructor.from_litellm``), each request over `send`."""
        instructor = import_instructor()

        def send(**kwargs: Any) -> Any:
            return flow.run(self.send(meter, provider_retries, kwargs))

        async def asend(**kwargs: Any) -> Any:
            return await flow.arun(self.send(meter, provider_retries, kwargs))

        mode = {
            "tools": instructor.Mode.TOOLS,
            "json_schema": instructor.Mode.JSON_SCHEMA,
            "json": instructor.Mode.JSON,
            "md_json": instructor.Mode.MD_JSON,
        }[self.spec.instructor_mode]
        create = flow.Call(
            instructor.from_litellm(send, mode=mode).chat.completions.create,
            instructor.from_litellm(asend, mode=mode).chat.completions.create,
            **request,
        )
        return (yield from bounded(_one(create), request.get("timeout"), "timeout"))  # re-asks share the bound


def road(spec: ModelSpec) -> Road:
    """The road of ``spec``, resolved once per spec; its provider is checked against LiteLLM's list."""
    return _resolved(spec)


def _resolved(spec: ModelSpec) -> Road:
    cached = spec.__dict__.get("_road")
    if cached is None:
        check_provider(spec)
        cached = Road(spec)
        object.__setattr__(spec, "_road", cached)
    return cached


def _one(step: flow.Step) -> flow.Flow[Any]:
    return (yield step)


async def _no_async(**kwargs: Any) -> Any:
    raise NotImplementedError("embeddings are sent from a thread")


@functools.cache
def _transient_types(litellm: Any) -> tuple[type[BaseException], ...]:
    found = (getattr(litellm, name, None) for name in _TRANSIENT)
    return tuple(kind for kind in found if isinstance(kind, type))
