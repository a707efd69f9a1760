"""Tools an agent's model can call: plain Python functions, and `MemoryTools`.

A function becomes a `Tool` whose JSON schema comes from its signature (Pydantic builds it) and whose
arguments are validated before the call. A parameter named ``run_context`` is never shown to the
model: memlayer passes the run's `RunContext` there. That is how the memory tools know whose memories
they touch: the ``user_id`` comes from the run, never from the model, so a tool call cannot reach
another user's memories whatever the prompt says.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .errors import ConfigError, MemlayerError
from .types import LLMUsage, MemoryChange

if TYPE_CHECKING:
    from .manager import MemoryManager

__all__ = ["MemoryTools", "RunContext", "Tool", "Toolkit", "as_tools", "tool"]

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

    def call(self, arguments: str | dict[str, Any], ctx: RunContext) -> tuple[str, bool]:
        """Run the tool; returns (result text, failed). A failure is told to the model, not raised."""
        try:
            result = self.function(**self._arguments(arguments, ctx))
            if inspect.isawaitable(result):
                raise ConfigError(f"tool {self.name} is async; use agent.arun()")
        except Exception as exc:
            return _failed(exc), True
        return _text(result), False

    async def acall(self, arguments: str | dict[str, Any], ctx: RunContext) -> tuple[str, bool]:
        try:
            values = self._arguments(arguments, ctx)
            if inspect.iscoroutinefunction(self.function):
                result = await self.function(**values)
            else:
                result = await asyncio.to_thread(self.function, **values)
        except Exception as exc:
            return _failed(exc), True
        return _text(result), False


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None) -> Any:
    """Make a `Tool` from a function; usable bare (``@tool``) or with a name and description."""

    def build(fn: Callable[..., Any]) -> Tool:
        return _from_function(fn, name=name, description=description)

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
            out.append(_from_function(item))
        else:
            raise ConfigError(f"tools must be functions, Tool or Toolkit objects, got {item!r}")
    names = [t.name for t in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"two tools share the name(s) {duplicates}; give each a unique name")
    return out


def _from_function(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> Tool:
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


def _text(result: Any) -> str:
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


# -- memory tools ---------------------------------------------------------------------------------

MemoryText = Annotated[str, Field(min_length=1, max_length=240)]
Topics = Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=4)]


def _line(memory: Any) -> str:
    topics = f" [{', '.join(memory.topics)}]" if memory.topics else ""
    return f"{memory.memory_id}: {memory.memory}{topics}"


def get_memories(run_context: RunContext, limit: Annotated[int, Field(ge=1, le=50)] = 20) -> str:
    """List the user's current memories, newest first."""
    memories = run_context.manager().get_user_memories(run_context.user_id, limit=limit)
    return "\n".join(_line(m) for m in memories) or "no memories stored for this user"


def search_memories(run_context: RunContext, query: Annotated[str, Field(max_length=200)]) -> str:
    """Find the user's memories most related to a query."""
    memories = run_context.manager().search_user_memories(query, run_context.user_id, limit=10)
    return "\n".join(_line(m) for m in memories) or "no matching memories"


def add_memory(run_context: RunContext, memory: MemoryText, topics: Topics | None = None) -> str:
    """Store a new fact about the user."""
    new = run_context.manager().add_user_memory(
        memory, run_context.user_id, topics=topics, agent_id=run_context.agent_id, session_id=run_context.session_id
    )
    run_context.memory_changes.append(
        MemoryChange(operation="add", memory_id=new.memory_id, memory=new.memory, topics=new.topics)
    )
    return f"added {_line(new)}"


def update_memory(run_context: RunContext, memory_id: str, memory: MemoryText, topics: Topics | None = None) -> str:
    """Replace the text of one of the user's memories, by its id."""
    manager = run_context.manager()
    old = manager.get_user_memory(memory_id, run_context.user_id)
    new = manager.replace_user_memory(memory_id, memory, run_context.user_id, topics=topics)
    run_context.memory_changes.append(
        MemoryChange(
            operation="update",
            memory_id=new.memory_id,
            memory=new.memory,
            old_memory=old.memory if old else None,
            topics=new.topics,
        )
    )
    return f"updated {_line(new)}"


def delete_memory(run_context: RunContext, memory_id: str) -> str:
    """Forget one of the user's memories, by its id."""
    manager = run_context.manager()
    old = manager.get_user_memory(memory_id, run_context.user_id)
    manager.delete_user_memory(memory_id, run_context.user_id)
    run_context.memory_changes.append(
        MemoryChange(operation="delete", memory_id=memory_id, memory=None, old_memory=old.memory if old else None)
    )
    return f"deleted {memory_id}"


def update_user_memory(run_context: RunContext, task: Annotated[str, Field(min_length=1, max_length=300)]) -> str:
    """Change what you remember about the user, e.g. "remember they moved to Porto" or "forget their
    address". Use it when the user shares a lasting fact or asks you to forget one."""
    ctx = run_context
    try:
        result = ctx.manager().update_memory_task(task, ctx.user_id, agent_id=ctx.agent_id, session_id=ctx.session_id)
    except MemlayerError as exc:
        ctx.memory_errors.append(str(exc))
        raise
    ctx.memory_changes.extend(result.changes)
    if result.usage:
        ctx.llm_calls.append(result.usage)
    done = [f"{c.operation} {c.memory or c.old_memory!r}" for c in result.changes]
    return "; ".join(done) if done else "nothing needed to change"


# One Tool per function, built once: JSON-mode reply models are cached by tool.
_MEMORY_TOOLS = {
    "get": _from_function(get_memories),
    "search": _from_function(search_memories),
    "add": _from_function(add_memory),
    "update": _from_function(update_memory),
    "delete": _from_function(delete_memory),
}
AGENTIC_MEMORY_TOOL = _from_function(update_user_memory)


class MemoryTools(Toolkit):
    """Tools to list, search, add, update and delete the run's user's memories.

    ``Agent(tools=[MemoryTools()], db=db, memory_manager=manager)``. Every tool acts for the run's
    ``user_id`` only; an id that belongs to another user is answered as unknown.
    """

    def __init__(
        self,
        *,
        enable_get_memories: bool = True,
        enable_search_memories: bool = True,
        enable_add_memory: bool = True,
        enable_update_memory: bool = True,
        enable_delete_memory: bool = True,
    ) -> None:
        self.enabled = {
            "get": enable_get_memories,
            "search": enable_search_memories,
            "add": enable_add_memory,
            "update": enable_update_memory,
            "delete": enable_delete_memory,
        }

    def tools(self) -> list[Tool]:
        return [tool for key, tool in _MEMORY_TOOLS.items() if self.enabled[key]]

    def __repr__(self) -> str:
        return f"MemoryTools({[k for k, on in self.enabled.items() if on]})"
