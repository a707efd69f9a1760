"""The limits ``memlayer serve --transport http`` puts on each client, in front of the MCP app.

- **Request body**: a POST larger than ``max_body_bytes`` is answered ``413`` before any of it reaches
  the MCP app (checked on ``Content-Length`` and again on the bytes that really arrive).
- **Concurrent requests per token**: a client (a bearer token) with ``max_concurrent`` POSTs in flight
  gets ``429`` with ``Retry-After: 1`` for the next one, at once: no request waits in a queue, so one
  client cannot hold every worker while the others wait.
- **Per-call deadline**: every model call a tool call makes ends within ``call_timeout`` seconds
  (`memlayer._internal.llm.road.within`); the tool answers with the `ModelError`, writing nothing. Database calls
  are not cut off mid-way, so an answer never misreports whether a write happened.

Text sizes are bounded by the tools' input schemas (`memlayer._internal.cli.mcp_tools`). Each refusal is a JSON
body ``{"error": ..., "error_description": ...}`` that says what to change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import checks
from ..errors import ConfigError

__all__ = ["LimitedApp", "Limits", "refuse"]

_log = logging.getLogger("memlayer.serve")


@dataclass(frozen=True)
class Limits:
    """What one client may send and hold at once; see the module doc."""

    max_body_bytes: int = 1_048_576
    max_concurrent: int = 8
    call_timeout: float | None = 120.0

    def __post_init__(self) -> None:
        checks.count("--max-body-bytes", self.max_body_bytes, minimum=1024)
        checks.count("--max-concurrent", self.max_concurrent, minimum=1)
        try:
            checks.optional_seconds("--call-timeout", self.call_timeout)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("None for no deadline", "0 for none")) from None


async def refuse(send: Send, status: int, error: str, description: str, headers: list[tuple[bytes, bytes]]) -> None:
    """Answer ``status`` with a JSON error body that says what to change."""
    body = json.dumps({"error": error, "error_description": description}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


@dataclass
class LimitedApp:
    """ASGI middleware: the body and concurrency limits of `Limits`, per bearer token."""

    app: ASGIApp
    limits: Limits
    _in_flight: dict[bytes, int] = field(default_factory=dict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":  # GET: the long-lived event stream
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = hashlib.sha256(headers.get("authorization", "").encode()).digest()
        if self._in_flight.get(client, 0) >= self.limits.max_concurrent:
            _log.warning("refused a request from %s: %d in flight", scope.get("client"), self.limits.max_concurrent)
            await refuse(send, 429, "too_many_requests", self._busy(), [(b"retry-after", b"1")])
            return
        self._in_flight[client] = self._in_flight.get(client, 0) + 1
        try:
            await self._bounded_body(scope, receive, send, headers.get("content-length"))
        finally:
            self._in_flight[client] -= 1
            if not self._in_flight[client]:
                del self._in_flight[client]

    async def _bounded_body(self, scope: Scope, receive: Receive, send: Send, length: str | None) -> None:
        limit = self.limits.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            await refuse(send, 413, "request_too_large", self._too_large(), [])
            return
        # The whole body is read here, bounded, then handed on: a missing or false Content-Length
        # cannot make the MCP app buffer more than the limit.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                await refuse(send, 413, "request_too_large", self._too_large(), [])
                return
        body, sent = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # after the body: the disconnect, when it comes
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _busy(self) -> str:
        return (
            f"this token already has {self.limits.max_concurrent} requests in flight (--max-concurrent): "
            "wait for one to finish, then retry"
        )

    def _too_large(self) -> str:
        return f"the request body is over {self.limits.max_body_bytes} bytes (--max-body-bytes): send less at once"
