"""Tools an agent's model can call: plain Python functions (`memory_tools` has the memory ones).

A function becomes a `Tool` whose JSON schema comes from its signature (Pydantic builds it) and whose
arguments are validated before the call. A parameter named ``run_context`` is never shown to the
model: memlayer passes the run's `RunContext` there. That is how the memory tools know whose memories
they touch: the ``user_id`` comes from the run, never from the model, so a tool call cannot reach
another user's memories whatever the prompt says.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .. import flow
from ..errors import ConfigError, MemlayerError
from ..records import LLMUsage, MemoryChange

if TYPE_CHECKING:
    from ..memory.manager import MemoryManager

__all__ = ["RunContext", "Tool", "Toolkit", "UnknownTool", "as_tools", "from_function", "tool"]

_CONTEXT_PARAM = "run_context"


@dataclass
class RunContext:
    """Who a run is for. Tools read ``user_id`` from here; the model never supplies it."""

    user_id: str
    session_id: str
    run_id: str
    agent_id: str | None = None
    memory_manager: MemoryManager | None = None
    memory_changes: list[MemoryChange] = field(default_factory=list)
    memory_errors: list[str] = field(default_factory=list)
    llm_calls: list[LLMUsage] = field(default_factory=list)  # made by tools (memory tasks), logged by them
    notes: dict[str, list[str]] = field(default_factory=dict)  # the think / analyze scratchpads of this run

    def manager(self) -> MemoryManager:
        if self.memory_manager is None:
            raise ConfigError("this agent has no memory_manager, so memory tools cannot run")
        return self.memory_manager


@dataclass(frozen=True)
class Tool:
    """A function the model may call, with its name, description and validated arguments."""

    name: str
    description: str
    function: Callable[..., Any]
    args_model: type[BaseModel]
    wants_context: bool = False

    def schema(self) -> dict[str, Any]:
        parameters = self.args_model.model_json_schema()
        parameters.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": parameters},
        }

    def _arguments(self, arguments: str | dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        raw = json.loads(arguments or "{}") if isinstance(arguments, str) else arguments
        values = dict(self.args_model.model_validate(raw))
        if self.wants_context:
            values[_CONTEXT_PARAM] = ctx
        return values

    def run(self, arguments: str | dict[str, Any], ctx: RunContext) -> flow.Flow[tuple[str, bool]]:
        """Run the tool; returns (result text, failed). A failure is told to the model, not raised.

        A flow (`memlayer._internal.flow`): a plain function runs in the caller's thread under `call` and in a
        worker thread under `acall`; an ``async def`` tool needs `acall` (an agent's ``arun``).
        """
        try:
            values = self._arguments(arguments, ctx)
            if inspect.iscoroutinefunction(self.function):
                result = yield flow.Call(self._needs_async, self.function, **values)
            else:
                result = yield flow.Blocking(self.function, **values)
            if inspect.isawaitable(result):
                getattr(result, "close", lambda: None)()  # never awaited: close it, so Python does not warn
                raise ConfigError(f"tool {self.name} returned an awaitable; make it an async def")
        except Exception as exc:
            return _failed(exc), True
        return _result_text(result), False

    call = flow.sync_driver(run, "call")
    acall = flow.async_driver(run, "acall")

    def _needs_async(self, **_: Any) -> Any:
        raise ConfigError(f"tool {self.name} is async; use agent.arun()")


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None) -> Any:
    """Make a `Tool` from a function; usable bare (``@tool``) or with a name and description."""

    def build(fn: Callable[..., Any]) -> Tool:
        return from_function(fn, name=name, description=description)

    return build(function) if function is not None else build


class Toolkit:
    """A group of tools handed to an agent as one item of ``tools=[...]``."""

    def tools(self) -> list[Tool]:
        raise NotImplementedError


def as_tools(items: Sequence[Callable[..., Any] | Tool | Toolkit]) -> list[Tool]:
    """Flatten functions, tools and toolkits into tools, refusing two with one name."""
    out: list[Tool] = []
    for item in items:
        if isinstance(item, Toolkit):
            out.extend(item.tools())
        elif isinstance(item, Tool):
            out.append(item)
        elif callable(item):
            out.append(from_function(item))
        else:
            raise ConfigError(f"tools must be functions, Tool or Toolkit objects, got {item!r}")
    names = [t.name for t in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"two tools share the name(s) {duplicates}; give each a unique name")
    return out


def from_function(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> Tool:
    tool_name: str = name or str(getattr(fn, "__name__", ""))
    if not tool_name.isidentifier():
        raise ConfigError(f"a tool needs a name made of letters, digits and _, got {tool_name!r}")
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    wants_context = False
    for param in inspect.signature(fn).parameters.values():
        if param.name == _CONTEXT_PARAM:
            wants_context = True
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {tool_name}: *args and **kwargs cannot be described to a model")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints.get(param.name, str), default)
    args_model = create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    doc = inspect.getdoc(fn) or ""
    summary = description or doc.split("\n\n")[0] or tool_name
    return Tool(tool_name, summary, fn, args_model, wants_context)


def _result_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str)


def _failed(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return f"error: invalid arguments: {exc.errors(include_url=False)}"
    if isinstance(exc, MemlayerError | json.JSONDecodeError):
        return f"error: {exc}"
    return f"error: {type(exc).__name__}: {exc}"


class UnknownTool:
    """A call to a tool the agent does not have: the model is told which ones exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.message = f"error: there is no tool {name!r}; the tools are {known}"

    def run(self, arguments: str, ctx: RunContext) -> flow.Flow[tuple[str, bool]]:
        return self.message, True
        yield  # a flow with no steps
