"""The memory tools that ``memlayer serve`` offers over MCP, and the resource of a user's memories.

Every tool acts for the user the server chose for the request (``--user`` on stdio, the bearer
token's user over HTTP), never for a user named in the arguments: no tool has a ``user_id``
parameter, so a prompt-injected call cannot reach another user's memories. A `MemlayerError`
becomes a tool error (``isError``) with its one-line message; memlayer writes nothing on any error.
Imported only by `memlayer._internal.cli.mcp_server`, so the ``mcp`` SDK is loaded only when serving.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from ..checks import MAX_MEMORY_CHARS, MAX_TOPIC_CHARS, MAX_TOPICS
from ..errors import ConfigError, MemlayerError
from ..llm.road import within
from ..memory.manager import MemoryManager
from ..records import Memory, MemoryEvent

__all__ = ["MEMORY_RESOURCE", "TOOL_NAMES", "MemoryService", "UserOf"]

UserOf = Callable[[Context], str]
"""Who a request acts for: the server's configured user, or the user of the request's bearer token."""

MEMORY_RESOURCE = "memlayer://memories{?topic}"

# Bounds at the edge, so a runaway argument fails the input schema before it reaches the store. A memory's
# text and topics have the bounds `MemoryManager` enforces (memlayer._internal.checks); a filter's are looser, since
# memories stored before those bounds may carry longer topics.
MemoryId = Annotated[str, Field(min_length=1, max_length=64, description="a memory_id from list or search")]
MemoryText = Annotated[
    str, Field(min_length=1, max_length=MAX_MEMORY_CHARS, description="the fact, as it should be stored")
]
Topics = Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_TOPIC_CHARS)]], Field(max_length=MAX_TOPICS)]
TopicFilter = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=10)]


class ChatTurn(BaseModel):
    role: Literal["user", "assistant"]
    content: Annotated[str, Field(min_length=1, max_length=20_000)]


class MemoryItem(BaseModel):
    memory_id: str
    memory: str
    topics: list[str]
    version: int
    updated_at: datetime

    @classmethod
    def of(cls, m: Memory) -> MemoryItem:
        return cls(memory_id=m.memory_id, memory=m.memory, topics=m.topics, version=m.version, updated_at=m.updated_at)


class Memories(BaseModel):
    memories: list[MemoryItem]


class Change(BaseModel):
    operation: str
    memory_id: str
    memory: str | None
    old_memory: str | None = None
    reason: str | None = None


class Remembered(BaseModel):
    changes: list[Change]
    skipped: list[str] = Field(default_factory=list, description="operations the model proposed that were refused")


class EventItem(BaseModel):
    created_at: datetime
    operation: str
    memory_id: str
    old_memory: str | None
    new_memory: str | None
    reason: str | None

    @classmethod
    def of(cls, e: MemoryEvent) -> EventItem:
        return cls(
            created_at=e.created_at,
            operation=e.operation,
            memory_id=e.memory_id,
            old_memory=e.old_memory,
            new_memory=e.new_memory,
            reason=e.reason,
        )


class Events(BaseModel):
    events: list[EventItem]


class Deleted(BaseModel):
    deleted: str


def _tool_error(exc: MemlayerError) -> ToolError:
    # One line, like the command line's errors: the message says what was wrong and what to do.
    return ToolError(" ".join(str(exc).split()))


class MemoryService:
    """The tools, bound to one `MemoryManager`; each call asks ``user_of`` who it acts for.

    The manager's async twins run each store call in a worker thread, so one client's extraction
    (a model call of seconds) never blocks another client's reads on the event loop.
    """

    def __init__(
        self, manager: MemoryManager, user_of: UserOf, *, agent_id: str | None = None, call_timeout: float | None = None
    ) -> None:
        self.manager = manager
        self.user_of = user_of
        self.agent_id = agent_id
        self.call_timeout = call_timeout  # bounds the model calls of one tool call (--call-timeout)

    async def remember(
        self,
        ctx: Context,
        text: Annotated[str | None, Field(max_length=20_000, description="what the user said")] = None,
        messages: Annotated[list[ChatTurn] | None, Field(max_length=50, description="or: the recent turns")] = None,
    ) -> Remembered:
        """Extract lasting facts about the user from what they said (text, or recent turns) and store them:
        new facts are added, changed ones updated, retracted ones deleted. One model call."""
        if (text is None) == (messages is None):
            raise ToolError("give either text or messages, not both and not neither")
        given: str | list[dict[str, Any]] = text if text is not None else [m.model_dump() for m in messages or []]
        try:
            with within(self.call_timeout, "--call-timeout"):
                result = await self.manager.acreate_user_memories(
                    given, user_id=self.user_of(ctx), agent_id=self.agent_id
                )
        except MemlayerError as exc:
            raise _tool_error(exc) from exc
        changes = [
            Change(
                operation=c.operation, memory_id=c.memory_id, memory=c.memory, old_memory=c.old_memory, reason=c.reason
            )
            for c in result.changes
        ]
        return Remembered(changes=changes, skipped=result.skipped)

    async def search(
        self,
        ctx: Context,
        query: Annotated[str, Field(min_length=1, max_length=500)],
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        valid_at: Annotated[
            str | None, Field(description="ISO date: search the facts that held then in the user's life")
        ] = None,
        held_from: Annotated[
            str | None, Field(description="ISO date: search the facts that held at some time from then ...")
        ] = None,
        held_until: Annotated[str | None, Field(description="... until then (ISO date; both or neither)")] = None,
    ) -> Memories:
        """Find the user's memories most related to a query, best match first: those that hold now, or held
        at valid_at, or at some time from held_from until held_until. A query naming a time ("in 2022",
        "last summer") ranks the memories of that time first."""
        if (held_from is None) != (held_until is None):
            raise ToolError("give both held_from and held_until, or neither")
        window = None if held_from is None or held_until is None else (held_from, held_until)
        try:
            with within(self.call_timeout, "--call-timeout"):  # a hosted embedder is a model call too
                found = await self.manager.asearch_user_memories(
                    query, limit=limit, user_id=self.user_of(ctx), valid_at=valid_at, held_between=window
                )
        except MemlayerError as exc:
            raise _tool_error(exc) from exc
        return Memories(memories=[MemoryItem.of(m) for m in found])

    async def list_(
        self,
        ctx: Context,
        topics: Annotated[TopicFilter | None, Field(description="only memories with any of these topics")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
        valid_at: Annotated[
            str | None, Field(description="ISO date: the facts that held then in the user's life, not now")
        ] = None,
    ) -> Memories:
        """List the user's memories that hold now (or held at valid_at), most recently changed first."""
        try:
            found = await self.manager.aget_user_memories(
                self.user_of(ctx), topics=topics, limit=limit, valid_at=valid_at, order="newest"
            )
        except MemlayerError as exc:
            raise _tool_error(exc) from exc
        return Memories(memories=[MemoryItem.of(m) for m in found])

    async def get(self, ctx: Context, memory_id: MemoryId) -> MemoryItem:
        """Read one of the user's current memories by its id."""
        user = self.user_of(ctx)
        try:
            memory = await self.manager.aget_user_memory(memory_id, user)
            if memory is None:
                # The manager's words for update/delete: an id of another user's reads as unknown.
                raise ConfigError(f"user {user!r} has no current memory {memory_id!r}")
        except MemlayerError as exc:
            raise _tool_error(exc) from exc
        return MemoryItem.of(memory)

    async def update(
        self,
        ctx: Context,
        memory_id: MemoryId,
        memory: MemoryText,
        topics: Annotated[Topics | None, Field(description="new topics; omitted keeps the old ones")] = None,
    ) -> MemoryItem:
        """Replace the text of one of the user's memories (the old version stays in its history)."""
        try:
            new = await self.manager.areplace_user_memory(memory_id, memory, self.user_of(ctx), topics=topics)
        except MemlayerError as exc:
            raise _tool_error(exc) from exc
        return MemoryItem.of(new)

    async def delete(self, ctx: Context, memory_id: MemoryId) -> Deleted:
        """Forget one of the user's memories by its id (its history is kept)."""
        try:
            user = self.user_of(ctx)
            if not await self.manager.adelete_user_memory(memory_id, user):
                # Same words as for an id that is another user's: the answer must not confirm it exists.
                raise ConfigError(f"user {user!r} has no current memory {memory_id!r}")
        except MemlayerError as exc:
            raise _tool_error(exc) from exc
        return Deleted(deleted=memory_id)

    async def history(
        self,
        ctx: Context,
        memory_id: Annotated[str | None, Field(max_length=64, description="one memory; all when omitted")] = None,
    ) -> Events:
        """Every add, update and delete of one memory (or of all the user's), oldest first, with reasons."""
        user = self.user_of(ctx)
        try:
            if memory_id is None:
                events = await self.manager.aget_user_events(user)
            else:
                events = await self.manager.aget_memory_history(memory_id, user)
                if not events:
                    raise ConfigError(f"user {user!r} has no memory {memory_id!r}")
        except MemlayerError as exc:
            raise _tool_error(exc) from exc
        return Events(events=[EventItem.of(e) for e in events])

    async def memories_resource(self, ctx: Context, topic: str | None = None) -> str:
        """The user's current memories, one a line, newest first."""
        try:
            found = await self.manager.aget_user_memories(self.user_of(ctx), topics=[topic] if topic else None)
        except MemlayerError as exc:
            raise ResourceError(" ".join(str(exc).split())) from exc
        return _lines(found)


def _lines(memories: list[Memory]) -> str:
    rows = [f"- {m.memory}" + (f" [{', '.join(m.topics)}]" if m.topics else "") + f" ({m.memory_id})" for m in memories]
    return "\n".join(rows) or "no memories stored for this user"


_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# remember too: an extraction may update or delete what it finds outdated.
_CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
_TOOLS: dict[str, ToolAnnotations] = {
    "remember": _CHANGE,
    "search": _READ,
    "list": _READ,
    "get": _READ,
    "update": _CHANGE,
    "delete": _CHANGE,
    "history": _READ,
}
TOOL_NAMES = tuple(_TOOLS)


def add_tools(server: MCPServer, service: MemoryService, names: tuple[str, ...]) -> None:
    """Register the tools ``names`` (each one of `TOOL_NAMES`) and the memories resource on ``server``."""
    for name in names:
        server.add_tool(
            getattr(service, f"{name}_" if name == "list" else name),
            name=name,
            annotations=_TOOLS[name],
            structured_output=True,
        )
    server.resource(MEMORY_RESOURCE, name="memories", mime_type="text/plain")(service.memories_resource)
