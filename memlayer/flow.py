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
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

__all__ = ["END", "Blocking", "Call", "Flow", "Next", "Sleep", "aiterate", "arun", "iterate", "run", "threaded"]

R = TypeVar("R")
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


@dataclass(frozen=True)
class Blocking(Step):
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "kwargs", kwargs)

    def do(self) -> Any:
        return self.fn(*self.args, **self.kwargs)

    async def ado(self) -> Any:
        return await asyncio.to_thread(self.fn, *self.args, **self.kwargs)


@dataclass(frozen=True)
class Call(Step):
    sync: Callable[..., Any]
    async_: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, sync: Callable[..., Any], async_: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any):
        object.__setattr__(self, "sync", sync)
        object.__setattr__(self, "async_", async_)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "kwargs", kwargs)

    def do(self) -> Any:
        return self.sync(*self.args, **self.kwargs)

    async def ado(self) -> Any:
        return await self.async_(*self.args, **self.kwargs)


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


def run(flow: Flow[R]) -> R:
    """Drive ``flow`` in this thread and return its result (any output is dropped)."""
    driver = iterate(flow)
    while True:
        try:
            next(driver)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


async def aiterate(flow: Flow[Any]) -> AsyncIterator[Any]:
    """Drive ``flow`` in the event loop and yield its output; its return value is dropped."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            item = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration:
            return
        result, error = None, None
        if not isinstance(item, Step):
            yield item
            continue
        try:
            result = await item.ado()
        except BaseException as exc:
            error = exc


async def arun(flow: Flow[R]) -> R:
    """Drive ``flow`` in the event loop and return its result (any output is dropped)."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            item = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        if isinstance(item, Step):
            try:
                result = await item.ado()
            except BaseException as exc:
                error = exc


def threaded(method: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """The async twin of a blocking method: the same signature (for type checkers, IDEs and
    `inspect.signature`), run in a worker thread so the event loop is not blocked."""

    @functools.wraps(method)
    async def twin(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, *args, **kwargs)

    twin.__doc__ = f"Async twin of `{method.__name__}`, run in a worker thread."
    return twin
