"""A scripted model: LLM replies given in advance, for unit tests of pure memory logic.

It stands in for the provider at ``litellm.completion`` / ``litellm.acompletion``. Each call takes
the next reply and hands it to LiteLLM as ``mock_response``, so LiteLLM still builds a real response
object and Instructor still parses and validates it (and re-asks on a validation error). Use it where
a test is about memlayer's own semantics; use cassettes where it is about real traffic.

```python
with scripted_model({"operations": [{"op": "add", "memory": "Likes tea"}]}) as model:
    manager.create_user_memories("I like tea", user_id="u1")
assert model.calls == 1
```
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..models import import_litellm

__all__ = ["ScriptedModel", "scripted_model"]

Reply = dict[str, Any] | str | BaseException | Callable[[dict[str, Any]], Any]


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

    def _next(self, kwargs: dict[str, Any]) -> Any:
        self.requests.append(kwargs)
        if not self.replies:
            raise AssertionError(f"the scripted model was called {self.calls} times, more than scripted")
        reply = self.replies.pop(0)
        if callable(reply) and not isinstance(reply, BaseException):
            reply = reply(kwargs)  # may act on the world mid-call, e.g. a concurrent writer
        if isinstance(reply, BaseException):
            raise reply
        return reply if isinstance(reply, str) else json.dumps(reply)


@contextmanager
def scripted_model(*replies: Reply) -> Iterator[ScriptedModel]:
    """Answer the next LLM calls with ``replies``, in order; fail on a call beyond them."""
    litellm = import_litellm()
    model = ScriptedModel(list(replies))
    real_completion, real_acompletion = litellm.completion, litellm.acompletion

    def completion(*args: Any, **kwargs: Any) -> Any:
        return real_completion(*args, **{**kwargs, "mock_response": model._next(kwargs)})

    async def acompletion(*args: Any, **kwargs: Any) -> Any:
        return await real_acompletion(*args, **{**kwargs, "mock_response": model._next(kwargs)})

    litellm.completion, litellm.acompletion = completion, acompletion  # type: ignore[attr-defined]
    try:
        yield model
    finally:
        litellm.completion, litellm.acompletion = real_completion, real_acompletion  # type: ignore[attr-defined]
