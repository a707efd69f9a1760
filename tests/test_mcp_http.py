"""``memlayer serve --transport http``: one server process, several clients, each its user by bearer token.

One real server process for the module (``--port 0``; it logs the port it bound), on a real DuckDB
file, with the scripted model of tests/test_mcp_server.py (the same launcher and replies; why it is
not a cassette is said there). Clients are the ``mcp`` SDK's streamable HTTP client.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("mcp")

import anyio
import httpx2
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup  # anyio's dependency there

from .test_mcp_server import ENV, MODEL, current, data, error, serve_command, write_replies

ALICE_TOKEN = "alice-token-0123456789abcdef"
BOB_TOKEN = "bob-token-0123456789abcdef"
PLAIN_JSON = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@dataclass
class Served:
    url: str
    db_file: Path
    process: subprocess.Popen[str]
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("mcp-http")
    tokens = tmp / "tokens"
    tokens.write_text(f"# token user_id\n{ALICE_TOKEN} alice\n{BOB_TOKEN}   bob   # the second client\n")
    db_file, log = tmp / "memories.duckdb", tmp / "server.log"
    args = ["--db", str(db_file), "--model", MODEL, "--transport", "http", "--tokens", str(tokens), "--port", "0"]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            serve_command(write_replies(tmp), *args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=stderr, text=True, env={**os.environ, **ENV},
        )  # fmt: skip
    try:
        yield Served(_wait_for_address(process, log), db_file, process, log)
    finally:
        process.send_signal(signal.SIGTERM)  # uvicorn shuts down cleanly on it, closing the DuckDB file
        returncode = process.wait(timeout=20)
    assert process.stdout is not None and process.stdout.read() == ""  # every log line went to stderr
    assert returncode == 0, log.read_text()
    assert {user for user, _ in current(db_file)} <= {"alice", "bob"}  # the file is whole and closed


def _wait_for_address(process: subprocess.Popen[str], log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"MCP server on (http://\S+/mcp)", log.read_text())
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise AssertionError(f"memlayer serve exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"memlayer serve did not start within 60 s:\n{log.read_text()}")


@asynccontextmanager
async def client(url: str, token: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_two_clients_each_see_only_their_own_users_memories(server: Served) -> None:
    async with client(server.url, ALICE_TOKEN) as alice, client(server.url, BOB_TOKEN) as bob:
        tea = data(await alice.call_tool("remember", {"text": "Green tea every morning, I live in Porto [tea]"}))
        alices = [c["memory_id"] for c in tea["changes"]]
        bobs = data(await bob.call_tool("remember", {"text": "I'm a nurse in Leeds [bob-job]"}))["changes"]
        assert [c["memory"] for c in bobs] == ["Works as a nurse in Leeds"]

        assert [m["memory"] for m in data(await bob.call_tool("list", {}))["memories"]] == ["Works as a nurse in Leeds"]
        found = data(await bob.call_tool("search", {"query": "green tea Porto"}))["memories"]
        assert [m["memory"] for m in found] == ["Works as a nurse in Leeds"]
        for tool, arguments in [
            ("get", {"memory_id": alices[0]}),
            ("update", {"memory_id": alices[0], "memory": "Drinks coffee"}),
            ("delete", {"memory_id": alices[1]}),
            ("history", {"memory_id": alices[0]}),
        ]:
            # Alice's ids read as unknown to bob, in the same words as an id that never existed.
            assert "has no" in error(await bob.call_tool(tool, arguments)), tool
        assert "user_id" not in json.dumps([t.input_schema for t in (await bob.list_tools()).tools])

        mine = sorted(m["memory"] for m in data(await alice.call_tool("list", {}))["memories"])
        assert mine == ["Drinks green tea every morning", "Lives in Porto"]
        resource = await bob.read_resource("memlayer://memories")
        assert resource.contents[0].text.startswith("- Works as a nurse in Leeds")  # type: ignore[union-attr]


async def test_missing_and_wrong_tokens_are_refused_before_the_mcp_app(server: Served) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    async with httpx2.AsyncClient(timeout=10) as http:
        for headers in [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": ALICE_TOKEN}]:
            refused = await http.post(server.url, json=initialize, headers={**PLAIN_JSON, **headers})
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["error"] == "unauthorized"
        accepted = await http.post(
            server.url, json=initialize, headers={**PLAIN_JSON, "Authorization": f"Bearer {BOB_TOKEN}"}
        )
        assert accepted.status_code == 200

    # The SDK's own client: the session never opens (the SDK reports the 401 as an MCPError).
    with pytest.raises(BaseExceptionGroup) as caught, anyio.fail_after(20):
        async with client(server.url, "wrong-token-0123456789") as session:
            await session.list_tools()
    assert caught.group_contains(MCPError, match="error response", depth=None)
    assert "refused POST /mcp" in server.log.read_text()


async def test_a_failing_model_is_a_tool_error_and_the_server_keeps_serving(server: Served) -> None:
    async with client(server.url, ALICE_TOKEN) as alice:
        before = data(await alice.call_tool("history", {}))["events"]
        limited = error(await alice.call_tool("remember", {"text": "I like jazz [ratelimit]"}))
        assert "provider failed" in limited and "slow down" in limited
        assert "never validated" in error(await alice.call_tool("remember", {"text": "I like jazz [garbage]"}))
        assert "not both" in error(await alice.call_tool("remember", {"text": "x", "messages": []}))
        assert data(await alice.call_tool("history", {}))["events"] == before  # nothing written
        data(await alice.call_tool("remember", {"text": "Chess on Sundays [chess]"}))  # the next call works
        assert "Plays chess on Sundays" in [m["memory"] for m in data(await alice.call_tool("list", {}))["memories"]]
    assert server.process.poll() is None


async def test_clients_at_once_each_get_their_own_answers(server: Served) -> None:
    # The served single writer: clients at once (as separate processes would be) on one DuckDB file.
    async def lists(token: str, seen: list[list[str]]) -> None:
        async with client(server.url, token) as session:
            for _ in range(5):
                seen.append(sorted(m["memory_id"] for m in data(await session.call_tool("list", {}))["memories"]))

    async with client(server.url, ALICE_TOKEN) as alice, client(server.url, BOB_TOKEN) as bob:
        await alice.call_tool("remember", {"text": "Chess on Sundays [chess]"})  # a repeat adds nothing
        await bob.call_tool("remember", {"text": "I'm a nurse in Leeds [bob-job]"})
        expected = {
            ALICE_TOKEN: sorted(m["memory_id"] for m in data(await alice.call_tool("list", {}))["memories"]),
            BOB_TOKEN: sorted(m["memory_id"] for m in data(await bob.call_tool("list", {}))["memories"]),
        }
    seen: dict[str, list[list[str]]] = {ALICE_TOKEN: [], BOB_TOKEN: []}
    async with anyio.create_task_group() as group:
        for token in seen:
            group.start_soon(lists, token, seen[token])
    assert {token: runs for token, runs in seen.items()} == {token: [ids] * 5 for token, ids in expected.items()}
    assert expected[ALICE_TOKEN] and expected[BOB_TOKEN] and not set(expected[ALICE_TOKEN]) & set(expected[BOB_TOKEN])


async def test_a_call_acts_for_the_token_on_it_even_in_another_clients_session(server: Served) -> None:
    # Raw HTTP, as a hostile client would: open a session with alice's token, then call with bob's.
    async with client(server.url, ALICE_TOKEN) as alice, client(server.url, BOB_TOKEN) as bob:
        await alice.call_tool("remember", {"text": "Chess on Sundays [chess]"})  # a repeat adds nothing
        await bob.call_tool("remember", {"text": "I'm a nurse in Leeds [bob-job]"})
        bobs = data(await bob.call_tool("list", {}))["memories"]
    assert "Works as a nurse in Leeds" in [m["memory"] for m in bobs]
    version = {"mcp-protocol-version": "2025-06-18"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list", "arguments": {}}}
    async with httpx2.AsyncClient(timeout=10, headers=PLAIN_JSON) as http:
        opened = await http.post(server.url, json=initialize, headers={"Authorization": f"Bearer {ALICE_TOKEN}"})
        session = {"mcp-session-id": opened.headers["mcp-session-id"], **version}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await http.post(server.url, json=initialized, headers={"Authorization": f"Bearer {ALICE_TOKEN}", **session})
        answer = await http.post(server.url, json=call, headers={"Authorization": f"Bearer {BOB_TOKEN}", **session})
    assert answer.status_code == 200
    reply = next(json.loads(line[5:]) for line in answer.text.splitlines() if line.startswith("data:"))
    assert reply["result"]["structuredContent"]["memories"] == bobs  # bob's, in alice's session
