"""``memlayer serve``: the memory store as an MCP server (stdio for one desktop client, HTTP for many).

The ``mcp`` SDK is imported here only when the command runs; without the ``memlayer-ai[mcp]`` extra the
command fails with one line that says what to install.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import checks
from ..errors import ConfigError
from ..llm.litellm import import_litellm, start_import
from .app import ApiBaseOpt, DbOpt, ModelOpt, app, open_manager

if TYPE_CHECKING:
    from types import ModuleType

_SDK_MODULES = {"mcp", "mcp_types", "starlette", "uvicorn", "anyio", "httpx2", "sse_starlette"}


class Transport(str, Enum):
    stdio = "stdio"
    http = "http"


@app.command()
def serve(
    db: DbOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    transport: Annotated[Transport, typer.Option(help="stdio: one client; http: many, by bearer token")] = (
        Transport.stdio
    ),
    user: Annotated[str | None, typer.Option("--user", "-u", help="stdio: the one user_id served")] = None,
    tokens: Annotated[
        str | None,
        typer.Option(help="http: file of 'token user_id' lines (or env MEMLAYER_MCP_TOKENS)", show_default=False),
    ] = None,
    host: Annotated[str, typer.Option(help="http: address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="http: port (0: any free one)")] = 8000,
    disable: Annotated[
        list[str] | None, typer.Option("--disable", help="a tool not to offer, e.g. delete (repeatable)")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="agent_id stamped on memories written through MCP")] = None,
    max_body_bytes: Annotated[int, typer.Option(help="http: largest request body (413 above it)")] = 1_048_576,
    max_concurrent: Annotated[int, typer.Option(help="http: requests in flight per token (429 above it)")] = 8,
    call_timeout: Annotated[
        float, typer.Option(help="seconds a tool call's model calls may take (0: no deadline)")
    ] = 120.0,
) -> None:
    """Serve the memory tools over MCP: remember, search, list, get, update, delete, history."""
    mcp_server = _import_server()
    import anyio  # the SDK's event loop library, installed with it

    # Every argument is checked before anything is opened or logged.
    names = mcp_server.tool_names(disable or [], has_model=bool(model))
    agent_id = checks.optional_text("agent_id", agent)
    limits = mcp_server.Limits(max_body_bytes, max_concurrent, call_timeout or None)
    if transport is Transport.stdio:
        if tokens:
            raise ConfigError("--tokens is for --transport http; stdio serves the one --user")
        if not user:
            raise ConfigError("--transport stdio serves one user: give --user ID (the model never chooses it)")
        user_of: Callable[[Any], str] = mcp_server.one_user(checks.user(user))
        run: Callable[[Any], Awaitable[None]] = mcp_server.run_stdio
    else:
        if user:
            raise ConfigError("over HTTP each client's bearer token names its user (--tokens); drop --user")
        table = mcp_server.BearerTokens.load(tokens)
        user_of = table.user_of
        run = functools.partial(mcp_server.run_http, tokens=table, host=host, port=port, limits=limits)
    _log_to_stderr()
    if not model:
        logging.getLogger("memlayer.serve").warning("no --model: remember is off (it extracts memories with a model)")
    else:  # LiteLLM and Instructor import in the background while the server starts (and stay off stdout)
        start_import()
    with open_manager(db, model, api_base) as manager:
        if model and transport is Transport.http:
            # Finished before the address is announced: a request that waited on the import would hold
            # the event loop, and so every other client, for seconds.
            import_litellm()
        server = mcp_server.build_server(
            manager, user_of, tools=names, agent_id=agent_id, call_timeout=limits.call_timeout
        )
        anyio.run(run, server)


def _import_server() -> ModuleType:
    try:
        import memlayer._internal.cli.mcp_server as mcp_server  # the module, not the package: it needs the SDK
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _SDK_MODULES:
            raise
        raise ConfigError("memlayer serve needs the MCP SDK: pip install 'memlayer-ai[mcp]'") from exc
    return mcp_server


def _log_to_stderr() -> None:
    # stdout is the stdio transport's wire: every log line, ours and the SDK's, goes to stderr.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s memlayer serve: %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("memlayer").setLevel(logging.INFO)
    logging.getLogger("mcp.server.mcpserver").setLevel(logging.INFO)  # a tool's failure, in one line each
