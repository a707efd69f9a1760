"""A scripted model: LLM replies given in advance, for unit tests of pure memory logic.

It is a caller injected into memlayer's model road (`memlayer._internal.llm.road.inject`), not a patch of
``litellm.completion``: a user's own LiteLLM calls are untouched. Each chat call takes the next reply
and hands it to LiteLLM as ``mock_response``, so LiteLLM still builds a real response object, its
callbacks still run, and Instructor still parses and validates it (and re-asks on a validation error).
Embedding calls go to LiteLLM unchanged. Use it where
a test is about memlayer's own semantics; use cassettes where it is about real traffic.

```python
with scripted_model({"operations": [{"op": "add", "memory": "Likes tea"}]}) as model:
    manager.create_user_memories("I like tea", user_id="u1")
assert model.calls == 1
```
A reply of ``tool_calls(("add_memory", {"memory": "Likes tea"}))`` answers with native tool calls
(not streamed: LiteLLM's mock streams text only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .._internal.llm.litellm import import_litellm
from .._internal.llm.road import inject

__all__ = ["ScriptedModel", "ToolCalls", "scripted_model", "tool_calls"]


@dataclass(frozen=True)
class ToolCalls:
    """A scripted reply that calls tools: (name, arguments) pairs."""

    calls: tuple[tuple[str, dict[str, Any]], ...]


def tool_calls(*calls: tuple[str, dict[str, Any]]) -> ToolCalls:
    return ToolCalls(tuple(calls))


Reply = dict[str, Any] | str | ToolCalls | BaseException | Callable[[dict[str, Any]], Any]


@dataclass
class ScriptedModel:
    """The replies still to give, and every request that was made (its keyword arguments)."""

    replies: list[Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.requests)

    def system_prompt(self, call: int = -1) -> str:
        return str(self.requests[call]["messages"][0]["content"])

    def prompt(self, call: int = -1) -> str:
        """Every message of one request, joined: the whole text the model read."""
        return "\n".join(str(m.get("content")) for m in self.requests[call]["messages"])

    def _next(self, kwargs: dict[str, Any]) -> Any:
        # What was sent at the time of the call, even if the caller's list grows afterwards.
        self.requests.append({**kwargs, "messages": [dict(m) for m in kwargs.get("messages", [])]})
        if not self.replies:
            raise AssertionError(f"the scripted model was called {self.calls} times, more than scripted")
        reply = self.replies.pop(0)
        if callable(reply) and not isinstance(reply, BaseException):
            reply = reply(kwargs)  # may act on the world mid-call, e.g. a concurrent writer
        if isinstance(reply, BaseException):
            raise reply
        return reply if isinstance(reply, str | ToolCalls) else json.dumps(reply)

    def _mock(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        reply = self._next(kwargs)
        if not isinstance(reply, ToolCalls):
            return {**kwargs, "mock_response": reply}
        calls = [
            {"id": f"call_{self.calls}_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, (n, a) in enumerate(reply.calls)
        ]
        return {**kwargs, "mock_response": "", "mock_tool_calls": calls}

    # -- the caller memlayer's road calls (`memlayer._internal.llm.road.Caller`) --------------------------------

    def completion(self, **kwargs: Any) -> Any:
        return import_litellm().completion(**self._mock(kwargs))

    async def acompletion(self, **kwargs: Any) -> Any:
        return await import_litellm().acompletion(**self._mock(kwargs))

    def embedding(self, **kwargs: Any) -> Any:
        return import_litellm().embedding(**kwargs)


@contextmanager
def scripted_model(*replies: Reply) -> Iterator[ScriptedModel]:
    """Answer memlayer's next chat calls with ``replies``, in order; fail on a call beyond them."""
    model = ScriptedModel(list(replies))
    with inject(model):
        yield model
