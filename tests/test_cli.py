"""The ``memlayer`` command line, end to end on temporary DuckDB files.

Commands run in-process through typer's CliRunner (and once as a real process); the model calls of
``extract`` and ``demo`` replay real recordings (cassettes/test_cli/ and the demo's own session,
shipped in the package under memlayer/data/). Re-record with the local server up:
``uv run pytest --memlayer-record=rewrite tests/test_cli.py -k extract`` and
``MEMLAYER_RECORD=rewrite uv run memlayer demo --db tmp/demo.duckdb``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from memlayer import DuckDb, MemoryManager
from memlayer._internal.cli import app
from memlayer._internal.cli.demo import CASSETTE, DEMO_QUERIES, MAYA, SAM, recorded_with

from .conftest import LOCAL_API_BASE, LOCAL_MODEL

try:
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2 (typer 0.15): keep stderr apart
except TypeError:
    runner = CliRunner()  # click >= 8.2, and the click typer vendors since: stderr is apart already
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    # Wide tables, no colour codes; MEMLAYER_* unset unless a test sets it.
    base = {"COLUMNS": "250", "NO_COLOR": "1", "MEMLAYER_DB": None, "MEMLAYER_MODEL": None, "MEMLAYER_API_BASE": None}
    return runner.invoke(app, list(args), env={**base, **(env or {})}, input=input)  # type: ignore[dict-item]


def ok(*args: str, **kwargs: Any) -> str:
    result = run(*args, **kwargs)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def fails(*args: str, **kwargs: Any) -> str:
    """The one line on stderr of a command that must fail with status 1 and no traceback."""
    result = run(*args, **kwargs)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def rows(*args: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok("sql", *args, "--format", "jsonl", **kwargs).splitlines()]


@pytest.fixture
def dbfile(tmp_path: Path) -> str:
    return str(tmp_path / "cli.duckdb")


def test_add_list_search_history_forget_sql_stats(dbfile: str) -> None:
    tea = UUID.findall(ok("add", "Likes green tea", "--user", "ana", "-t", "food", "-t", "drink", "--db", dbfile))[0]
    ok("add", "Writes Rust", "--user", "ana", "--topic", "programming", "--agent", "coder", "--db", dbfile)
    ok("add", "Runs a bakery", "--user", "bo", "--db", dbfile)
    ok("add", "Writes [bold]markup[/bold] literally", "--user", "cy", "--db", dbfile)
    assert "Writes [bold]markup[/bold] literally" in ok("list", "--user", "cy", "--db", dbfile)

    listed = ok("list", "--user", "ana", "--db", dbfile)
    assert "ana: 2 memories" in listed and "Likes green tea" in listed and "food, drink" in listed
    assert "Runs a bakery" not in listed
    assert "Writes Rust" in ok("list", "--user", "ana", "--topic", "programming", "--db", dbfile)
    found = ok("search", "green tea please", "--user", "ana", "--limit", "1", "--db", dbfile)
    assert "Likes green tea" in found and "Writes Rust" not in found

    assert "forgot" in ok("forget", "--user", "ana", tea, "--yes", "--db", dbfile)
    assert "Likes green tea" not in ok("list", "--user", "ana", "--db", dbfile)
    history = ok("history", "--user", "ana", tea, "--db", dbfile)
    assert "2 events" in history and "add" in history and "delete" in history

    assert rows("SELECT operation, count(*) AS n FROM memory_events GROUP BY 1 ORDER BY 1", "--db", dbfile) == [
        {"operation": "add", "n": 4},
        {"operation": "delete", "n": 1},
    ]
    csv = ok("sql", "SELECT topic, memories FROM topic_counts ORDER BY topic", "--format", "csv", "--db", dbfile)
    assert csv.splitlines() == ["topic,memories", "programming,1"]
    table = ok("sql", "SELECT user_id, memories_now FROM memory_churn ORDER BY 1", "--db", dbfile)
    assert "3 rows" in table and "ana" in table
    stats = json.loads(ok("stats", "--user", "ana", "--db", dbfile, "--json"))
    assert [stats[k] for k in ("users", "memories", "versions", "events")] == [1, 1, 2, 3]


def test_defaults_come_from_the_environment(dbfile: str) -> None:
    ok("add", "Likes tea", "--user", "ana", env={"MEMLAYER_DB": dbfile})
    assert "Likes tea" in ok("list", "--user", "ana", env={"MEMLAYER_DB": dbfile})
    # Only the commands that call a model read MEMLAYER_MODEL.
    assert "Likes tea" in ok("list", "--user", "ana", env={"MEMLAYER_DB": dbfile, "MEMLAYER_MODEL": "gpt4o"})
    line = fails("extract", "-", "--user", "ana", env={"MEMLAYER_DB": dbfile, "MEMLAYER_MODEL": "gpt4o"}, input="hi")
    assert "must name a provider and a model" in line


def test_forget_everything_asks_first(dbfile: str) -> None:
    ok("add", "Likes tea", "--user", "ana", "--db", dbfile)
    assert "pass --yes when not at a terminal" in fails("forget", "--user", "ana", "--db", dbfile)
    assert rows("SELECT count(*) AS n FROM memories", "--db", dbfile) == [{"n": 1}]
    assert "erased 1 memory, 1 event, 0 LLM calls" in ok("forget", "--user", "ana", "--yes", "--db", dbfile)
    assert rows("SELECT count(*) AS n FROM memory_events", "--db", dbfile) == [{"n": 0}]
    assert "nothing is held about user 'ana'" in fails("forget", "--user", "ana", "--yes", "--db", dbfile)


def test_export_and_import(dbfile: str, tmp_path: Path) -> None:
    memory = UUID.findall(ok("add", "Likes tea", "--user", "ana", "--db", dbfile))[0]
    ok("add", "Likes jazz", "--user", "bo", "--db", dbfile)
    ok("forget", "--user", "ana", memory, "--yes", "--db", dbfile)
    out = ok("export", str(tmp_path / "ana"), "--user", "ana", "--format", "csv", "--db", dbfile)
    assert "exported to" in out and "1 memory, 2 events" in out
    copy = str(tmp_path / "copy.duckdb")
    assert "1 memory, 2 events" in ok("import", str(tmp_path / "ana"), "--db", copy)
    assert rows("SELECT user_id, operation FROM memory_events ORDER BY seq", "--db", copy) == [
        {"user_id": "ana", "operation": "add"},
        {"user_id": "ana", "operation": "delete"},
    ]
    assert "0 memories, 0 events" in ok("import", str(tmp_path / "ana"), "--db", copy)
    assert "not an empty folder" in fails("export", str(tmp_path / "ana"), "--db", dbfile)
    assert "is not a memlayer export" in fails("import", str(tmp_path), "--db", copy)
    (tmp_path / "file").write_text("")
    assert "cannot create the export folder" in fails("export", str(tmp_path / "file" / "x"), "--db", dbfile)


def test_errors_are_one_line(dbfile: str, tmp_path: Path) -> None:
    extract = ("extract", "-", "--user", "a", "--db", dbfile)
    assert "did you mean 'openai:gpt-4o'?" in fails(*extract, "--model", "gpt-4o", input="hi")
    assert "unknown provider 'opena'" in fails(*extract, "--model", "opena:gpt-4o", input="hi")
    assert "give --db PATH or set MEMLAYER_DB" in fails("list", "--user", "a")
    assert "no database at" in fails("list", "--user", "a", "--db", str(tmp_path / "none.duckdb"))
    ok("add", "Likes tea", "--user", "ana", "--db", dbfile)
    assert "no memory 'nope'" in fails("history", "--user", "ana", "nope", "--db", dbfile)
    assert "has no current memory 'nope'" in fails("forget", "--user", "ana", "nope", "--yes", "--db", dbfile)
    assert "user_id must be a non-empty string" in fails("list", "--user", " ", "--db", dbfile)
    line = fails("sql", "DELETE FROM memories", "--db", dbfile)
    assert "of type DELETE, and the store was not touched" in line
    assert "reads 'nope', which is not a table or view" in fails("sql", "SELECT * FROM nope", "--db", dbfile)
    assert "extract needs a model" in fails("extract", "-", "--user", "ana", "--db", dbfile, input="hi")
    key = {"OPENAI_API_KEY": "sk-test"}
    assert "holds no messages" in fails(*extract, "--model", "openai:x", input=" ", env=key)
    assert "cannot read" in fails("extract", str(tmp_path / "no.json"), "--user", "a", "--model", "openai:x", env=key)
    # A missing option is a usage error (status 2), told by the parser.
    usage = run("list", "--db", dbfile)
    assert usage.exit_code == 2 and "Missing option '--user'" in usage.stderr


def test_a_locked_database_is_one_line(dbfile: str) -> None:
    DuckDb(dbfile).close()
    hold = f"import duckdb, sys; c = duckdb.connect({dbfile!r}); print('ready', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert "is locked by another process" in fails("list", "--user", "ana", "--db", dbfile)
        assert "A read-only reader in another process cannot open" in fails("sql", "SELECT 1", "--db", dbfile)
    finally:
        holder.communicate("")


def test_import_memlayer_does_not_load_the_command_line() -> None:
    heavy = "('typer', 'rich', 'memlayer._internal.cli')"
    probe = f"import sys, memlayer; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_console_script_fails_in_one_line(dbfile: str) -> None:
    DuckDb(dbfile).close()
    done = subprocess.run(
        [sys.executable, "-m", "memlayer", "sql", "DROP TABLE memories", "--db", dbfile],
        capture_output=True,
        text=True,
        env={"PATH": "", "NO_COLOR": "1"},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: only read-only queries run here (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE); this statement is "
        "of type DROP, and the store was not touched"
    ]


@pytest.mark.memlayer_cassette
def test_extract_from_stdin(dbfile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "local")  # the local server takes any key; LiteLLM wants one
    lines = [
        {"role": "user", "content": "Remember that I am vegetarian and I work as a nurse."},
        {"role": "assistant", "content": "Noted."},
    ]
    out = ok(
        "extract", "-", "--user", "ana", "--session", "s1", "--db", dbfile, "--model", LOCAL_MODEL,
        "--api-base", LOCAL_API_BASE, input="\n".join(json.dumps(line) for line in lines),
    )  # fmt: skip
    # What qwen1.5b replied: the two facts, each with its key (its topic).
    assert "1 call, 671 + 70 tokens" in out and "Works as a nurse" in out
    stored = rows(
        "SELECT memory, attribute, topics, session_id, agent_id FROM current_memories ORDER BY memory", "--db", dbfile
    )
    assert stored == [
        {"memory": "Vegetarian", "attribute": "diet", "topics": ["diet"], "session_id": "s1", "agent_id": None},
        {"memory": "Works as a nurse", "attribute": "work", "topics": ["work"], "session_id": "s1", "agent_id": None},
    ]
    assert rows("SELECT purpose, model, status FROM llm_calls", "--db", dbfile) == [
        {"purpose": "extraction", "model": "openai:qwen1.5b", "status": "ok"}
    ]


def test_demo_replays_offline_then_sql_answers(tmp_path: Path) -> None:
    path = str(tmp_path / "demo.duckdb")
    out = ok("demo", "--db", path)
    info = recorded_with()
    assert info["models"] == ["qwen1.5b"] and info["servers"] == ["llama.cpp"]
    assert "replaying a recorded session (no network, no key): recorded from qwen1.5b on llama.cpp" in out
    assert CASSETTE.is_file()
    for question, _ in DEMO_QUERIES:
        assert question in out
    assert f"memlayer sql --db {path}" in out
    # What qwen1.5b did, each an operation a correct extraction makes: hiking added, the marathon added,
    # the move one update of the memory holding the city (no second city, no "moved" memory), "forget" a
    # delete of Rust only. Known misses of the recorded model, not asserted as right: the first turn's
    # "data engineer" and "Python" were not stored, and the new city's text is the bare "Lisbon".
    events = rows("SELECT user_id, operation, old_memory, new_memory FROM memory_events ORDER BY seq", "--db", path)
    assert [tuple(e.values()) for e in events] == [
        (MAYA, "add", None, "Lives in Berlin"),
        (MAYA, "add", None, "Is learning Rust"),
        (MAYA, "add", None, "Is vegetarian"),
        (SAM, "add", None, "Runs a bakery in Porto"),
        (MAYA, "add", None, "Love hiking"),
        (SAM, "add", None, "Training for a marathon in April"),
        (MAYA, "update", "Lives in Berlin", "Lisbon"),
        (MAYA, "delete", "Is learning Rust", None),
    ]
    current = rows("SELECT user_id, memory, attribute FROM current_memories ORDER BY user_id, memory", "--db", path)
    assert [tuple(r.values()) for r in current] == [
        (MAYA, "Is vegetarian", "diet"),
        (MAYA, "Lisbon", "home"),
        (MAYA, "Love hiking", "likes"),
        (SAM, "Runs a bakery in Porto", "work"),  # its topic names the attribute
        (SAM, "Training for a marathon in April", "goal"),
    ]
    # The README's two questions, one `memlayer sql` each.
    topics, cost = (rows(sql, "--db", path) for _, sql in DEMO_QUERIES)
    assert topics == [
        {"topic": "food", "changes": 2, "users": 2},
        {"topic": "home", "changes": 2, "users": 1},
        {"topic": "programming", "changes": 2, "users": 1},
        {"topic": "goal", "changes": 1, "users": 1},
        {"topic": "likes", "changes": 1, "users": 1},
    ]
    assert cost == [
        {"user_id": MAYA, "calls": 3, "tokens": 2687, "cost_usd": None},
        {"user_id": SAM, "calls": 1, "tokens": 868, "cost_usd": None},
    ]
    refused = run("demo", "--db", path)  # an existing file: refused before anything is printed
    assert refused.exit_code == 1 and refused.stdout == ""
    assert (
        refused.stderr.strip()
        == f"error: {path!r} already exists; the demo writes a new store: give a --db that does not exist yet"
    )


def test_ids_are_taken_by_a_unique_prefix(dbfile: str) -> None:
    with DuckDb(dbfile) as store:
        manager = MemoryManager(db=store)
        # 17 ids over 16 hex digits: at least two share their first character.
        ids = [manager.add_user_memory(f"Fact {i}", user_id="ana").memory_id for i in range(17)]
    first = ids[0]
    history = json.loads(ok("history", "--user", "ana", first[:8], "--db", dbfile, "--json"))
    assert [(e["operation"], e["memory_id"]) for e in history] == [("add", first)]
    shared = next(i[0] for i in ids if sum(j.startswith(i[0]) for j in ids) > 1)
    assert "give more of the id" in fails("history", "--user", "ana", shared, "--db", dbfile)
    assert "give more of the id" in fails("forget", "--user", "ana", shared, "--yes", "--db", dbfile)
    # An unknown id is told before any "Delete?" (which needs a terminal or --yes).
    assert "has no current memory 'feedbeef'" in fails("forget", "--user", "ana", "feedbeef", "--db", dbfile)
    assert f"forgot {first}" in ok("forget", "--user", "ana", first[:8], "--yes", "--db", dbfile)
    assert "has no current memory" in fails("forget", "--user", "ana", first[:8], "--yes", "--db", dbfile)
    listed = json.loads(ok("list", "--user", "ana", "--db", dbfile, "--json"))
    assert len(listed) == 16 and first not in {m["memory_id"] for m in listed}


def test_counts_read_as_english_and_stats_fit_80_columns(dbfile: str) -> None:
    ok("add", "Likes tea", "--user", "ana", "--db", dbfile)
    assert "ana: 1 memory\n" in ok("list", "--user", "ana", "--db", dbfile)
    assert "ana: 1 event\n" in ok("history", "--user", "ana", "--db", dbfile)
    assert "1 row\n" in ok("sql", "SELECT 1", "--db", dbfile)
    stats = ok("stats", "--db", dbfile, env={"COLUMNS": "80"})
    assert max(map(len, stats.splitlines())) <= 80
    for name in ("users", "memories", "versions", "events", "llm_calls", "tokens", "cost_usd", "sessions"):
        assert re.search(rf"│ {name}\s+│", stats), stats  # each count on its own line, its name whole


def test_choices_are_shown_and_model_only_where_a_model_is_called(dbfile: str) -> None:
    assert "[table|csv|jsonl]" in ok("sql", "--help", env={"COLUMNS": "120"}).replace("<", "[").replace(">", "]")
    assert "parquet|csv|jsonl" in ok("export", "--help", env={"COLUMNS": "120"})
    assert "tune|heldout|all" in ok("eval", "--help", env={"COLUMNS": "120"})
    bad = run("sql", "SELECT 1", "--format", "xml", "--db", dbfile)
    assert bad.exit_code == 2 and "'xml' is not one of" in bad.stderr
    for command in ("add", "list", "history", "forget", "sql", "stats", "export", "import"):
        assert "--model" not in ok(command, "--help"), command
    for command in ("extract", "demo", "eval"):
        assert "--model" in ok(command, "--help"), command


def test_a_missing_key_is_named_before_anything_runs(dbfile: str) -> None:
    no_key = {"OPENAI_API_KEY": None, "ANTHROPIC_API_KEY": None}
    line = fails("extract", "-", "--user", "a", "--model", "anthropic:claude-sonnet-4-5", "--db", dbfile, env=no_key)
    assert (
        line
        == "error: model 'anthropic:claude-sonnet-4-5' needs an API key: set ANTHROPIC_API_KEY (or pass api_key=...)"
    )
    demo = run("demo", "--model", "openai:gpt-4o-mini", "--db", dbfile, env=no_key)
    assert demo.exit_code == 1 and demo.stdout == "" and "set OPENAI_API_KEY" in demo.stderr
    assert not Path(dbfile).exists()
    assert "set OPENAI_API_KEY" in fails("eval", "--model", "openai:gpt-4o-mini", env=no_key)


def test_a_failed_live_demo_leaves_no_store_and_one_line(dbfile: str) -> None:
    # A port nothing listens on: the first extraction fails after the seed memories were written.
    env = {"OPENAI_API_KEY": "sk-test", "COLUMNS": "250"}
    result = run(
        "demo", "--model", "openai:gpt-4o-mini", "--api-base", "http://127.0.0.1:9/v1", "--db", dbfile, env=env
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "LiteLLM" not in result.stdout, result.stderr
    assert not Path(dbfile).exists() and not Path(f"{dbfile}.wal").exists()


def test_the_demo_without_db_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where TemporaryDirectory makes its folder
    out = ok("demo")
    assert "That store was temporary and is deleted" in out and 'memlayer sql --db demo.duckdb "' in out
    assert list(tmp_path.iterdir()) == []


def test_version_and_python_dash_m() -> None:
    from memlayer import __version__

    assert ok("--version").strip() == f"memlayer {__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "memlayer", "--version"], capture_output=True, text=True, env={"PATH": ""}, check=True
    )
    assert done.stdout.strip() == f"memlayer {__version__}"


def test_list_reads_by_event_time(dbfile: str) -> None:
    with DuckDb(dbfile) as store:
        manager = MemoryManager(db=store)
        manager.add_user_memory("Lives in Leeds", user_id="ana")
        manager.add_user_memory("Lives in Bristol", user_id="ana")  # a new home: Leeds ends where Bristol starts
        moved = manager.get_user_memories(user_id="ana")[0].held_from
    assert moved is not None
    before = (moved - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert [m["memory"] for m in json.loads(ok("list", "--user", "ana", "--db", dbfile, "--json"))] == [
        "Lives in Bristol"
    ]
    held = json.loads(ok("list", "--user", "ana", "--db", dbfile, "--json", "--valid-at", before))
    assert [m["memory"] for m in held] == ["Lives in Leeds"]
    # Search by event time: what held then, and what held at some time in a window.
    found = json.loads(ok("search", "lives", "--user", "ana", "--db", dbfile, "--json", "--valid-at", before))
    assert [hit["memory"]["memory"] for hit in found] == ["Lives in Leeds"]
    window = ["--held-from", "2000-01-01", "--held-until", "2200-01-01"]
    found = json.loads(ok("search", "lives", "--user", "ana", "--db", dbfile, "--json", *window))
    assert sorted(hit["memory"]["memory"] for hit in found) == ["Lives in Bristol", "Lives in Leeds"]
    assert "--held-until" in fails("search", "lives", "--user", "ana", "--db", dbfile, "--held-from", "2000-01-01")
