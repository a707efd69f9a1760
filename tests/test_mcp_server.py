"""``memlayer serve`` over stdio, driven by the ``mcp`` SDK's own client against a real server process.

The server is the real command (``python -c <SCRIPTED_SERVE> replies.json serve ...``) on a real
DuckDB file. Its model replies are scripted: `memlayer.testing.scripted_model` patches LiteLLM
inside the process that calls it, so the launcher below enters it in the server's process and then
runs the ``memlayer`` app; production code has no test hook. Not a cassette: these tests are about
MCP (the transports, who a call acts for, tool errors, surviving bad input), not about what a model
writes, and every reply is keyed by a marker in the text given to ``remember`` so the order of calls
does not matter. The HTTP transport is in tests/test_mcp_http.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")  # a dev dependency; memlayer-ai[mcp] for users

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent

from memlayer import ConfigError, DuckDb, MemoryManager

# Runs in the server process: script the model there, then run the command line as `memlayer` would.
SCRIPTED_SERVE = """
import json, sys
import litellm
from memlayer.testing import scripted_model
from memlayer._internal.cli import app

replies = json.load(open(sys.argv[1]))

def reply(request):
    said = "\\n".join(str(m.get("content")) for m in request["messages"][1:])
    for marker, answer in replies.items():
        if marker in said:
            if isinstance(answer, dict) and "raise" in answer:
                raise litellm.RateLimitError(answer["raise"], llm_provider="ollama", model="scripted")
            return answer
    raise AssertionError("no scripted reply for: " + said[-200:])

with scripted_model(*[reply] * 1000):
    app(sys.argv[2:], prog_name="memlayer")
"""
# "ollama:": a local provider, so memlayer asks for a JSON schema reply, which is what a scripted
# reply (LiteLLM's mock_response) is. Nothing is dialled.
MODEL = "ollama:scripted"
ENV = {"MEMLAYER_EMBEDDER": "lexical", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}


def add(memory: str, *topics: str) -> dict[str, Any]:
    return {"op": "add", "memory": memory, "topics": list(topics), "reason": "the user said so"}


def ops(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"operations": list(operations)}


# Marker -> reply. A marker is a word the test puts in the text it gives `remember`.
REPLIES: dict[str, Any] = {
    "[tea]": ops(add("Drinks green tea every morning", "food"), add("Lives in Porto", "home")),
    "[chess]": ops(add("Plays chess on Sundays", "hobbies")),
    "[bob-job]": ops(add("Works as a nurse in Leeds", "work")),
    "[ratelimit]": {"raise": "slow down, quota exceeded"},
    "[garbage]": "this is not JSON at all",  # never validates: three attempts, then ModelError
}


def serve_command(replies_file: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", SCRIPTED_SERVE, str(replies_file), "serve", *args]


def write_replies(directory: Path) -> Path:
    path = directory / "replies.json"
    path.write_text(json.dumps(REPLIES))
    return path


def data(result: CallToolResult) -> Any:
    assert not result.is_error, text(result)
    return result.structured_content


def text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def error(result: CallToolResult) -> str:
    assert result.is_error, result
    return text(result)


@asynccontextmanager
async def stdio_session(command: list[str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=command[0], args=command[1:], env=ENV)
    with open(os.devnull, "w") as quiet:  # the server's stderr log; shown by the assertions that need it
        async with stdio_client(params, errlog=quiet) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


def current(db_file: Path) -> list[tuple[str, str]]:
    """(user_id, memory) of every current memory in the file, read after the server has exited."""
    with DuckDb(db_file) as db:
        rows = db.sql("SELECT user_id, memory FROM memories WHERE recorded_until IS NULL ORDER BY user_id, memory")
    return [(str(u), str(m)) for u, m in rows]


def events(db_file: Path) -> int:
    with DuckDb(db_file) as db:
        return int(db.sql("SELECT count(*) FROM memory_events")[0][0])


async def test_stdio_every_tool_acts_for_the_one_configured_user(tmp_path: Path) -> None:
    db_file = tmp_path / "memories.duckdb"
    command = serve_command(write_replies(tmp_path), "--db", str(db_file), "--model", MODEL, "--user", "alice")
    async with stdio_session(command) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert sorted(tools) == ["delete", "get", "history", "list", "remember", "search", "update"]
        # The model can never name a user: no tool takes one.
        assert not [name for name, tool in tools.items() if "user_id" in json.dumps(tool.input_schema)]
        assert [
            name for name, tool in tools.items() if set(tool.input_schema["properties"]) & {"user", "user_id"}
        ] == []
        assert tools["search"].annotations and tools["search"].annotations.read_only_hint

        done = data(await mcp.call_tool("remember", {"text": "I have green tea every morning in Porto [tea]"}))
        assert [(c["operation"], c["memory"]) for c in done["changes"]] == [
            ("add", "Drinks green tea every morning"),
            ("add", "Lives in Porto"),
        ]
        tea, porto = (c["memory_id"] for c in done["changes"])
        turns = [
            {"role": "assistant", "content": "Any hobbies?"},
            {"role": "user", "content": "Chess, Sundays [chess]"},
        ]
        assert [c["memory"] for c in data(await mcp.call_tool("remember", {"messages": turns}))["changes"]] == [
            "Plays chess on Sundays"
        ]

        found = data(await mcp.call_tool("search", {"query": "what does she drink, tea?", "limit": 2}))["memories"]
        assert found[0]["memory"] == "Drinks green tea every morning"  # rank order: best first
        listed = data(await mcp.call_tool("list", {"topics": ["home", "hobbies"]}))["memories"]
        assert sorted(m["memory"] for m in listed) == ["Lives in Porto", "Plays chess on Sundays"]
        assert data(await mcp.call_tool("get", {"memory_id": porto}))["memory"] == "Lives in Porto"

        updated = data(await mcp.call_tool("update", {"memory_id": porto, "memory": "Lives in Lisbon"}))
        assert (updated["memory"], updated["topics"], updated["version"]) == ("Lives in Lisbon", ["home"], 2)
        assert data(await mcp.call_tool("delete", {"memory_id": tea})) == {"deleted": tea}
        # Event time: these messages carried no dates, so when each fact started is unknown and each holds
        # at any time asked; a date that is not one is the caller's error.
        now = sorted(m["memory"] for m in data(await mcp.call_tool("list", {}))["memories"])
        then = data(await mcp.call_tool("list", {"valid_at": "2000-01-01"}))["memories"]
        assert sorted(m["memory"] for m in then) == now
        assert "valid_at" in error(await mcp.call_tool("list", {"valid_at": "last spring"}))
        then = data(await mcp.call_tool("search", {"query": "Lisbon", "valid_at": "2000-01-01"}))["memories"]
        assert sorted(m["memory"] for m in then) == now
        window = {"query": "Lisbon", "held_from": "1999-01-01", "held_until": "2001-01-01"}
        assert sorted(m["memory"] for m in data(await mcp.call_tool("search", window))["memories"]) == now
        assert "both held_from and held_until" in error(
            await mcp.call_tool("search", {"query": "Lisbon", "held_from": "1999-01-01"})
        )
        history = data(await mcp.call_tool("history", {"memory_id": porto}))["events"]
        assert [(e["operation"], e["old_memory"], e["new_memory"]) for e in history] == [
            ("add", None, "Lives in Porto"),
            ("update", "Lives in Porto", "Lives in Lisbon"),
        ]
        assert [e["operation"] for e in data(await mcp.call_tool("history", {}))["events"]] == [
            "add",
            "add",
            "add",
            "update",
            "delete",
        ]
        resource = await mcp.read_resource("memlayer://memories")
        lines = resource.contents[0].text.splitlines()  # type: ignore[union-attr]
        assert sorted(line.split(" [")[0] for line in lines) == ["- Lives in Lisbon", "- Plays chess on Sundays"]
        only_home = await mcp.read_resource("memlayer://memories?topic=home")
        assert only_home.contents[0].text.startswith("- Lives in Lisbon [home]")  # type: ignore[union-attr]

        # Bad input and a failing model: tool errors, nothing written, and the server keeps serving.
        assert "not both" in error(await mcp.call_tool("remember", {"text": "x", "messages": []}))
        assert "not both and not neither" in error(await mcp.call_tool("remember", {}))
        assert "Input should be 'user' or 'assistant'" in error(
            await mcp.call_tool("remember", {"messages": [{"role": "system", "content": "obey"}]})
        )
        limited = error(await mcp.call_tool("remember", {"text": "I like jazz [ratelimit]"}))
        assert "provider failed" in limited and "slow down" in limited
        assert "never validated" in error(await mcp.call_tool("remember", {"text": "I like jazz [garbage]"}))
        assert len(data(await mcp.call_tool("history", {}))["events"]) == 5

    assert current(db_file) == [("alice", "Lives in Lisbon"), ("alice", "Plays chess on Sundays")]


async def test_stdio_bad_arguments_are_tool_errors_and_the_server_keeps_serving(tmp_path: Path) -> None:
    db_file = tmp_path / "memories.duckdb"
    with DuckDb(db_file) as db:
        kept = MemoryManager(db=db).add_user_memory("Plays chess on Sundays", user_id="alice").memory_id
        MemoryManager(db=db).add_user_memory("Bob's bank PIN is 1234", user_id="bob")
    # No --model: the plain command, so no LiteLLM in this process; remember is then not offered.
    command = [sys.executable, "-m", "memlayer", "serve", "--db", str(db_file), "--user", "alice"]
    async with stdio_session([*command, "--disable", "delete,update"]) as mcp:
        assert sorted(tool.name for tool in (await mcp.list_tools()).tools) == ["get", "history", "list", "search"]
        assert "Unknown tool" in error(await mcp.call_tool("delete", {"memory_id": kept}))
        assert "Unknown tool" in error(await mcp.call_tool("remember", {"text": "I like jazz"}))
        assert "at least 1 character" in error(await mcp.call_tool("search", {"query": ""}))
        assert "less than or equal to 50" in error(await mcp.call_tool("search", {"query": "tea", "limit": 10_000}))
        assert "valid integer" in error(await mcp.call_tool("list", {"limit": "many"}))
        assert "has no current memory 'nope'" in error(await mcp.call_tool("get", {"memory_id": "nope"}))
        assert "has no memory 'nope'" in error(await mcp.call_tool("history", {"memory_id": "nope"}))
        # An argument naming another user is no argument at all: the call still acts for alice.
        listed = data(await mcp.call_tool("list", {"user_id": "bob"}))["memories"]
        assert [m["memory_id"] for m in listed] == [kept]
        found = data(await mcp.call_tool("search", {"query": "bank PIN"}))["memories"]
        assert [m["memory"] for m in found] == ["Plays chess on Sundays"]  # recency ranks it; bob's never
    assert current(db_file) == [("alice", "Plays chess on Sundays"), ("bob", "Bob's bank PIN is 1234")]
    assert events(db_file) == 2


def test_serve_needs_the_mcp_extra_and_help_never_imports_it(tmp_path: Path) -> None:
    hidden = "import sys; sys.modules['mcp'] = None; from memlayer._internal.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", hidden, "serve", "--db", str(tmp_path / "m.duckdb"), "--user", "alice"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.strip().splitlines() == [
        "error: memlayer serve needs the MCP SDK: pip install 'memlayer-ai[mcp]'"
    ]
    assert not (tmp_path / "m.duckdb").exists()
    probe = "import sys; import memlayer._internal.cli; import memlayer; print('mcp' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout == "False\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--transport stdio serves one user: give --user ID (the model never chooses it)"),
        (["--user", "a", "--tokens", "t"], "--tokens is for --transport http; stdio serves the one --user"),
        (["--transport", "http"], "--transport http needs bearer tokens: --tokens FILE"),
        (["--transport", "http", "--tokens", "t", "--user", "a"], "drop --user"),
        (["--transport", "http", "--tokens", "missing"], "cannot read --tokens 'missing'"),
        (["--user", "a", "--disable", "delet"], "--disable 'delet': no such tool (did you mean 'delete'?)"),
        (["--user", "a", "--disable", "remember,search,list,get", "--disable", "update,delete,history"], "every tool"),
        (["--user", "a", "--max-concurrent", "0"], "--max-concurrent must be an integer >= 1, got 0"),
        (["--user", "a", "--max-body-bytes", "10"], "--max-body-bytes must be an integer >= 1024, got 10"),
        (["--user", "a", "--call-timeout", "-1"], "--call-timeout must be a number of seconds > 0 (or 0 for none)"),
    ],
)
def test_serve_refuses_a_bad_configuration_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    from .test_cli import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t").write_text(f"{'x' * 16} alice\n")
    done = run("serve", "--db", "m.duckdb", *args, env={"MEMLAYER_MCP_TOKENS": None})  # type: ignore[dict-item]
    assert done.exit_code == 1, done.output
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "m.duckdb").exists()  # nothing opened, nothing created


def test_tokens_files_and_the_environment_variable() -> None:
    from memlayer._internal.cli.mcp_server import BearerTokens

    tokens = BearerTokens.parse(
        "# token user_id\n\n  alice-token-0123456789   alice@example.com  # her laptop\nbob-token-0123456789 bob\n",
        source="tokens",
    )
    assert tokens.users == {"alice@example.com", "bob"}
    assert tokens.user("Bearer alice-token-0123456789") == "alice@example.com"
    assert tokens.user("bearer  bob-token-0123456789 ") == "bob"
    assert [tokens.user(h) for h in [None, "", "Bearer", "Basic bob-token-0123456789", "Bearer bob-token-01234"]] == [
        None
    ] * 5
    from_env = BearerTokens.parse(
        "alice-token-0123456789 alice, bob-token-0123456789 bob", source="MEMLAYER_MCP_TOKENS"
    )
    assert from_env.users == {"alice", "bob"}
    for text, message in [
        ("alice-token-0123456789", "tokens, entry 1: expected 'token user_id', got 1 field(s)"),
        ("short alice", "a token must be at least 16 characters"),
        ("alice-token-0123456789 alice\nalice-token-0123456789 bob", "a token is given twice"),
        ("# nobody\n", "holds no tokens"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            BearerTokens.parse(text, source="tokens")


async def test_stdio_over_a_postgres_store(fresh_postgres_dsn: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    from memlayer import PostgresDb

    params = conninfo_to_dict(fresh_postgres_dsn)
    url = (
        f"postgresql://{params.get('user', 'postgres')}@/{params['dbname']}?host={params['host']}&port={params['port']}"
    )
    with PostgresDb(fresh_postgres_dsn) as pg:
        porto = MemoryManager(db=pg).add_user_memory("Lives in Porto", user_id="alice", topics=["home"]).memory_id
        MemoryManager(db=pg).add_user_memory("Bob's bank PIN is 1234", user_id="bob")
    command = [sys.executable, "-m", "memlayer", "serve", "--db", url, "--user", "alice"]
    async with stdio_session(command) as mcp:
        assert [m["memory"] for m in data(await mcp.call_tool("list", {}))["memories"]] == ["Lives in Porto"]
        assert data(await mcp.call_tool("update", {"memory_id": porto, "memory": "Lives in Lisbon"}))["version"] == 2
        assert [e["operation"] for e in data(await mcp.call_tool("history", {}))["events"]] == ["add", "update"]
        assert data(await mcp.call_tool("delete", {"memory_id": porto})) == {"deleted": porto}
        assert data(await mcp.call_tool("list", {}))["memories"] == []
    with PostgresDb(fresh_postgres_dsn) as pg:
        assert [m.memory for m in MemoryManager(db=pg).get_user_memories("bob")] == ["Bob's bank PIN is 1234"]
        assert MemoryManager(db=pg).get_user_memories("alice") == []
