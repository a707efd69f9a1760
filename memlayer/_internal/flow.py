"""Sans-I/O flows: each sync/async pair is written once, as a generator, and run by one of two drivers.

A flow is a generator that yields the steps it needs done and gets their results back:

- `Blocking(fn, ...)`: database or CPU work; called directly by `run`, in a worker thread by `arun`;
- `Call(sync_fn, async_fn, ...)`: I/O with both forms (a model call); `arun` awaits the async one;
- `Sleep(seconds)`: a pause between retries;
- `Next(stream)`: the next chunk of a sync or async stream, or `END`.

Anything else it yields is output (streamed text), passed on by `iterate` / `aiterate`. A step that
raises has its exception thrown into the flow at the ``yield``, so the flow's own ``try`` blocks work
as they would in plain code. This is httpx's pattern (``Auth.auth_flow`` driven by a sync and an async
client): the logic lives in one place, and the two drivers below are the only code that differs.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

__all__ = ["END", "Blocking", "Call", "Flow", "Next", "Sleep", "aiterate", "arun", "iterate", "run", "threaded"]

R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
Flow = Generator[Any, Any, R]


class _End:
    def __repr__(self) -> str:
        return "END"


END: Any = _End()  # what `Next` returns when the stream is exhausted


class Step:
    def do(self) -> Any:
        raise NotImplementedError

    async def ado(self) -> Any:
        raise NotImplementedError


class Call(Step):
    """I/O with a blocking and an awaitable form (a model call): `run` calls one, `arun` awaits the other."""

    def __init__(self, sync: Callable[..., Any], async_: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any):
        self.sync, self.async_, self.args, self.kwargs = sync, async_, args, kwargs

    def do(self) -> Any:
        return self.sync(*self.args, **self.kwargs)

    async def ado(self) -> Any:
        return await self.async_(*self.args, **self.kwargs)


class Blocking(Call):
    """Blocking work (the database, CPU): done in place by `run`, in a worker thread by `arun`."""

    def __init__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        super().__init__(fn, functools.partial(asyncio.to_thread, fn), *args, **kwargs)


@dataclass(frozen=True)
class Sleep(Step):
    seconds: float

    def do(self) -> None:
        time.sleep(self.seconds)

    async def ado(self) -> None:
        await asyncio.sleep(self.seconds)


@dataclass(frozen=True)
class Next(Step):
    stream: Any  # an iterator under `run`, an async iterator under `arun`

    def do(self) -> Any:
        return next(self.stream, END)

    async def ado(self) -> Any:
        return await anext(self.stream, END)


def iterate(flow: Flow[R]) -> Generator[Any, None, R]:
    """Drive ``flow`` in this thread; yield its output, return its result."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            item = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        if not isinstance(item, Step):
            yield item
            continue
        try:
            result = item.do()
        except BaseException as exc:  # handed to the flow, which re-raises what it does not handle
            error = exc


async def aiterate(flow: Flow[Any], returned: list[Any] | None = None) -> AsyncIterator[Any]:
    """Drive ``flow`` in the event loop and yield its output; its result is appended to ``returned``."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            item = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration as stop:
            if returned is not None:
                returned.append(stop.value)
            return
        result, error = None, None
        if not isinstance(item, Step):
            yield item
            continue
        try:
            result = await item.ado()
        except BaseException as exc:
            error = exc


def run(flow: Flow[R]) -> R:
    """Drive ``flow`` in this thread and return its result (any output is dropped)."""
    driver = iterate(flow)
    while True:
        try:
            next(driver)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


async def arun(flow: Flow[R]) -> R:
    """Drive ``flow`` in the event loop and return its result (any output is dropped)."""
    returned: list[R] = []
    async for _ in aiterate(flow, returned):
        pass
    return returned[0]


def consume(sub: Flow[R], take: Callable[[Any], None]) -> Flow[R]:
    """Run ``sub`` inside another flow: its steps pass up to the driver, its output goes to ``take``."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            item = sub.throw(error) if error is not None else sub.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        if not isinstance(item, Step):
            take(item)
            continue
        try:
            result = yield item
        except BaseException as exc:
            error = exc


def sync_driver(make: Callable[P, Flow[R]], name: str | None = None) -> Callable[P, R]:
    """A blocking function with ``make``'s signature and docstring: builds its flow and runs it in this
    thread. Named after ``make`` without its leading underscore (``_search`` drives ``search``)."""

    @functools.wraps(make)
    def driven(*args: P.args, **kwargs: P.kwargs) -> R:
        return run(make(*args, **kwargs))

    return _named(driven, name or make.__name__.lstrip("_"))


def async_driver(make: Callable[P, Flow[R]], name: str | None = None) -> Callable[P, Coroutine[Any, Any, R]]:
    """A coroutine function with ``make``'s signature: builds its flow and runs it in the event loop.
    Named ``a`` + ``make``'s name without its leading underscore (``_search`` drives ``asearch``)."""

    @functools.wraps(make)
    async def driven(*args: P.args, **kwargs: P.kwargs) -> R:
        return await arun(make(*args, **kwargs))

    return _named(driven, name or "a" + make.__name__.lstrip("_"))


def threaded(method: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """The async twin of a blocking method: the same signature (for type checkers, IDEs and
    `inspect.signature`), run in a worker thread so the event loop is not blocked."""

    @functools.wraps(method)
    async def twin(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, *args, **kwargs)

    twin.__doc__ = f"Async twin of `{method.__name__}`, run in a worker thread."
    return twin


def _named(function: F, name: str) -> F:
    """``function`` under its public name, with the signature of the flow it drives but the flow's
    result as its return annotation (what `inspect.signature`, ``help()`` and IDEs show)."""
    owner = function.__qualname__.rpartition(".")[0]
    function.__name__, function.__qualname__ = name, f"{owner}.{name}" if owner else name
    signature = inspect.signature(function)
    returned = signature.return_annotation
    if isinstance(returned, str) and (inner := re.fullmatch(r"(?:flow\.)?Flow\[(.*)\]", returned)):
        returned = inner.group(1)
    function.__signature__ = signature.replace(return_annotation=returned)  # type: ignore[attr-defined]
    return function
