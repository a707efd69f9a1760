"""``memlayer serve --transport http``'s limits: body size (413), requests in flight per token (429), and
the per-call deadline on model calls (a tool error, nothing written).

One real server process (the real command, ``python -m memlayer serve``) on a real DuckDB file, with a
real model endpoint that never answers (`HungModel` of tests/test_deadlines.py): a hung ``remember``
is how a request stays in flight long enough to test the concurrency limit, and what the deadline
ends. Not a cassette and not a scripted model: the point is the waiting, which only a real socket has.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("mcp")

import anyio
import httpx2
from mcp import ClientSession

from .test_deadlines import HungModel
from .test_mcp_http import PLAIN_JSON, _wait_for_address, client
from .test_mcp_server import ENV, current, data, error

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


@dataclass
class Served:
    url: str
    db_file: Path
    log: Path
    model: HungModel


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("mcp-limits")
    hung = HungModel()
    tokens = tmp / "tokens"
    tokens.write_text(f"{ALICE} alice\n{BOB} bob\n")
    db_file, log = tmp / "memories.duckdb", tmp / "server.log"
    args = [
        "--db", str(db_file), "--model", "openai/hung", "--api-base", hung.api_base, "--transport", "http",
        "--tokens", str(tokens), "--port", "0", "--max-body-bytes", "4096", "--max-concurrent", "2",
        "--call-timeout", "3",
    ]  # fmt: skip
    env = {**os.environ, **ENV, "OPENAI_API_KEY": "local"}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "memlayer", "serve", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr, text=True, env=env,
        )  # fmt: skip
    try:
        yield Served(_wait_for_address(process, log), db_file, log, hung)  # type: ignore[arg-type]
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=20)
        hung.listener.close()
    assert returncode == 0, log.read_text()
    assert current(db_file) == []  # no hung call wrote anything


async def test_a_body_over_the_limit_is_refused_413_declared_or_not(server: Served) -> None:
    big = {**INITIALIZE, "params": {**INITIALIZE["params"], "padding": "x" * 5000}}
    headers = {**PLAIN_JSON, "Authorization": f"Bearer {ALICE}"}
    async with httpx2.AsyncClient(timeout=10, headers=headers) as http:
        refused = await http.post(server.url, json=big)
        assert refused.status_code == 413
        assert refused.json() == {
            "error": "request_too_large",
            "error_description": "the request body is over 4096 bytes (--max-body-bytes): send less at once",
        }

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):  # no Content-Length: counted as it arrives
                yield b" " * 1000

        assert (await http.post(server.url, content=chunks())).status_code == 413
        assert (await http.post(server.url, json=INITIALIZE)).status_code == 200  # still serving


async def test_a_token_with_too_many_calls_in_flight_gets_429_and_the_others_do_not(server: Served) -> None:
    results: list[str] = []

    async def remember(session: ClientSession) -> None:
        results.append(error(await session.call_tool("remember", {"text": "I live in Porto"})))

    async with client(server.url, ALICE) as a1, client(server.url, ALICE) as a2, client(server.url, BOB) as b:
        before = server.model.opened
        async with anyio.create_task_group() as group:
            for session in (a1, a2, b):  # sessions open first, so the three calls overlap
                group.start_soon(remember, session)
            with anyio.fail_after(2.5):  # until all three wait on the hung model
                while server.model.opened - before < 3:
                    await anyio.sleep(0.02)
            headers = {**PLAIN_JSON, "Authorization": f"Bearer {ALICE}"}
            async with httpx2.AsyncClient(timeout=10, headers=headers) as http:
                started = time.monotonic()
                third = await http.post(server.url, json=INITIALIZE)
                assert time.monotonic() - started < 0.5  # refused at once, not queued
            assert third.status_code == 429 and third.headers["retry-after"] == "1"
            assert "already has 2 requests in flight (--max-concurrent)" in third.json()["error_description"]
        # Each hung call (alice's two, bob's one) ended at the deadline with the model's error, writing nothing.
        assert len(results) == 3 and all("no answer within --call-timeout=3 s" in e for e in results), results
        assert data(await a1.call_tool("list", {}))["memories"] == []  # and alice's slots are free again
