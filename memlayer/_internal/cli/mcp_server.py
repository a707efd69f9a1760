"""``memlayer serve``'s MCP server: the memory tools over one `MemoryManager`, on stdio or streamable HTTP.

Built on the official ``mcp`` SDK (`MCPServer`, mcp 2.x; FastMCP in 1.x). Who a request acts for is
never the model's choice: on stdio it is the one ``--user`` the server was started for; over HTTP
it is the user of the request's bearer token, looked up on every request (`BearerTokens`), so even
a client that reuses another client's MCP session id acts only for its own token's user. A request
without a known token is answered 401 before it reaches the MCP app.

Imported only when ``memlayer serve`` runs: ``memlayer --help`` and ``import memlayer`` never load ``mcp``.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import signal
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.types import ASGIApp, Receive, Scope, Send

from ... import __version__
from ..errors import ConfigError
from ..memory.manager import MemoryManager
from .mcp_limits import LimitedApp, Limits, refuse
from .mcp_tools import TOOL_NAMES, MemoryService, UserOf, add_tools

__all__ = [
    "TOKENS_ENV",
    "BearerAuth",
    "BearerTokens",
    "Limits",
    "build_server",
    "one_user",
    "run_http",
    "run_stdio",
    "tool_names",
]

TOKENS_ENV = "MEMLAYER_MCP_TOKENS"

_log = logging.getLogger("memlayer.serve")

INSTRUCTIONS = (
    "Long-term memory about the user you are talking with, kept across conversations. Search or list it "
    "before answering questions that depend on the user; call remember with what the user said when they "
    "share a lasting fact, preference or correction, or ask you to forget something."
)


def tool_names(disabled: Iterable[str], *, has_model: bool) -> tuple[str, ...]:
    """The tools to serve: all but ``disabled`` (each checked), and not ``remember`` without a model."""
    off = {name.strip() for item in disabled for name in item.split(",") if name.strip()}
    unknown = sorted(off - set(TOOL_NAMES))
    if unknown:
        close = difflib.get_close_matches(unknown[0], TOOL_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"--disable {unknown[0]!r}: no such tool{hint}; the tools are {', '.join(TOOL_NAMES)}")
    if not has_model:
        off.add("remember")
    names = tuple(name for name in TOOL_NAMES if name not in off)
    if not names:
        raise ConfigError("every tool is disabled: nothing to serve")
    return names


def build_server(
    manager: MemoryManager,
    user_of: UserOf,
    *,
    tools: Sequence[str] = TOOL_NAMES,
    agent_id: str | None = None,
    call_timeout: float | None = None,
) -> MCPServer:
    """An MCP server offering ``tools`` over ``manager``; each request acts for ``user_of(ctx)``, and its
    model calls end within ``call_timeout`` seconds."""
    # log_level: what the SDK's own logging setup would use; `memlayer serve` configures stderr logging first.
    server: MCPServer = MCPServer("memlayer", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    add_tools(server, MemoryService(manager, user_of, agent_id=agent_id, call_timeout=call_timeout), tuple(tools))
    return server


# -- stdio ----------------------------------------------------------------------------------------


def one_user(user_id: str) -> UserOf:
    """Every request acts for ``user_id``: the stdio server's one ``--user``."""

    def user_of(_ctx: Context) -> str:
        return user_id

    return user_of


async def run_stdio(server: MCPServer) -> None:
    """Serve on stdin/stdout until the client closes stdin.

    The SDK points fd 1 at stderr while it serves, so a stray print (ours, LiteLLM's) cannot corrupt
    the protocol stream; our own logging goes to stderr in any case.
    """
    await server.run_stdio_async()


# -- HTTP -----------------------------------------------------------------------------------------


class BearerTokens:
    """Which user each bearer token acts for, from ``token user_id`` lines.

    Only the tokens' SHA-256 digests are kept: a lookup compares digests, so its time says nothing
    about how much of a guessed token was right, and the tokens are not held in memory.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]], *, source: str) -> None:
        self._users: dict[bytes, str] = {}
        for token, user in pairs:
            digest = _digest(token)
            if digest in self._users:
                raise ConfigError(f"{source}: a token is given twice; each client needs a token of its own")
            self._users[digest] = user
        if not self._users:
            raise ConfigError(f"{source} holds no tokens: give one 'token user_id' line per client")

    @classmethod
    def parse(cls, text: str, *, source: str) -> BearerTokens:
        """``token user_id`` entries, one a line (or separated by commas); ``#`` starts a comment."""
        pairs = []
        for number, raw in enumerate(text.replace(",", "\n").splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 2:
                raise ConfigError(f"{source}, entry {number}: expected 'token user_id', got {len(fields)} field(s)")
            if len(fields[0]) < 16:
                raise ConfigError(f"{source}, entry {number}: a token must be at least 16 characters")
            pairs.append((fields[0], fields[1]))
        return cls(pairs, source=source)

    @classmethod
    def load(cls, path: str | None) -> BearerTokens:
        """From ``--tokens FILE``, else from the environment variable `TOKENS_ENV`."""
        if path:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"cannot read --tokens {path!r}: {exc.strerror}") from exc
            return cls.parse(text, source=path)
        if os.environ.get(TOKENS_ENV):
            return cls.parse(os.environ[TOKENS_ENV], source=TOKENS_ENV)
        raise ConfigError(
            f"--transport http needs bearer tokens: --tokens FILE of 'token user_id' lines, or {TOKENS_ENV}"
        )

    @property
    def users(self) -> set[str]:
        return set(self._users.values())

    def user(self, authorization: str | None) -> str | None:
        """The user of an ``Authorization: Bearer <token>`` header; None when it names no known token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._users.get(_digest(token.strip()))

    def user_of(self, ctx: Context) -> str:
        """The user of the request carrying this tool call (the header the `BearerAuth` checked)."""
        headers = ctx.headers or {}
        user = self.user(headers.get("authorization"))
        if user is None:  # BearerAuth refuses such requests first; this is the second lock on the door
            raise ToolError("unauthorized: no valid bearer token on this request")
        return user


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class BearerAuth:
    """ASGI middleware in front of the MCP app: a request without a known bearer token gets 401."""

    def __init__(self, app: ASGIApp, tokens: BearerTokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: the SDK's session manager starts and stops here
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.tokens.user(headers.get("authorization")) is not None:
            await self.app(scope, receive, send)
            return
        _log.warning(
            "refused %s %s from %s: no valid bearer token", scope["method"], scope["path"], scope.get("client")
        )
        challenge = [(b"www-authenticate", b'Bearer realm="memlayer"')]
        await refuse(send, 401, "unauthorized", "a valid bearer token is required", challenge)


async def run_http(
    server: MCPServer, *, tokens: BearerTokens, host: str, port: int, limits: Limits | None = None
) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until interrupted (Ctrl-C, SIGTERM).

    The socket is bound here, so ``--port 0`` takes a free port, and the address logged is the real one.
    """
    import uvicorn

    app = BearerAuth(LimitedApp(server.streamable_http_app(host=host), limits or Limits()), tokens)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    bound = sock.getsockname()[1]
    # log_config=None: uvicorn's own default sends access lines to stdout; ours go to stderr.
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    shown = f"[{host}]" if ":" in host else host
    _log.info("MCP server on http://%s:%d/mcp for %d user(s)", shown, bound, len(tokens.users))
    if host not in ("127.0.0.1", "localhost", "::1"):
        _log.warning("listening beyond this machine over plain HTTP: put TLS in front, tokens travel in headers")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again into the handler it
    # found: with a quiet one there, the command returns and closes the store instead of dying by it.
    quiet = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with sock:
            await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        for sig, handler in quiet.items():
            signal.signal(sig, handler)
    _log.info("stopped")


def _stopped(sig: int, _frame: object) -> None:
    _log.info("%s: shutting down", signal.Signals(sig).name)
