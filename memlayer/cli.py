"""The ``memlayer`` command line: a thin layer over `MemoryManager` and `memlayer.analytics`.

Every command takes ``--db`` (or ``MEMLAYER_DB``) and ``--model`` (or ``MEMLAYER_MODEL``). A
`MemlayerError` becomes one line on stderr and exit status 1, in one place (`_Group.invoke`);
usage mistakes exit with 2. ``import memlayer`` never imports this module.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from . import analytics
from .db import DuckDb
from .errors import ConfigError, MemlayerError
from .manager import MemoryManager
from .types import Memory, MemoryEvent, Message

__all__ = ["app", "main"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Group(TyperGroup):
    def invoke(self, ctx: Any) -> Any:  # a click Context (typer vendors click since 0.2x)
        try:
            return super().invoke(ctx)
        except MemlayerError as exc:
            # One line: the message carries the what and the what-to-do; no traceback.
            err.print(f"[red]error:[/red] {escape(' '.join(str(exc).split()))}", markup=True)
            raise typer.Exit(code=1) from None
        except OSError as exc:  # a file the command was pointed at: unreadable, unwritable, a directory
            err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            raise typer.Abort() from None


app = typer.Typer(
    cls=_Group,
    name="memlayer",
    help="Long-term memory for AI agents: extract, inspect, query, export. Docs: the README.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

DbOpt = Annotated[
    str | None, typer.Option("--db", envvar="MEMLAYER_DB", help="DuckDB file [env MEMLAYER_DB]", show_default=False)
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", envvar="MEMLAYER_MODEL", help="LiteLLM model, e.g. openai:gpt-4o [env MEMLAYER_MODEL]"),
]
ApiBaseOpt = Annotated[
    str | None, typer.Option("--api-base", envvar="MEMLAYER_API_BASE", help="model server URL [env MEMLAYER_API_BASE]")
]
UserOpt = Annotated[str, typer.Option("--user", "-u", help="the user_id (required: there is no default user)")]


def _db_path(db: str | None) -> str:
    if not db:
        raise ConfigError("no database: give --db PATH or set MEMLAYER_DB")
    return db


@contextmanager
def _manager(db: str | None, model: str | None, api_base: str | None = None) -> Iterator[MemoryManager]:
    """A manager on the file (created and migrated if new); a bad model string fails here.

    A file this command created is removed again when the command fails: a failure leaves nothing behind.
    """
    path = _db_path(db)
    created = path != ":memory:" and not Path(path).exists()
    try:
        with DuckDb(path) as store:
            yield MemoryManager(model, store, api_base=api_base)
    except BaseException:
        if created:
            for leftover in (Path(path), Path(f"{path}.wal")):
                leftover.unlink(missing_ok=True)
        raise


@contextmanager
def _existing(db: str | None, model: str | None) -> Iterator[MemoryManager]:
    path = _db_path(db)
    if not Path(path).exists():
        raise ConfigError(f"no database at {path!r}")
    with _manager(path, model) as manager:
        yield manager


def _table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    # Text, not markup: a memory that reads "[bold]" is shown as written.
    table = Table(title=Text(title) if title else None, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(Text(str(column)), overflow="fold")
    for row in rows:
        table.add_row(*(Text(_cell(v)) for v in row))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _memories(title: str, memories: Sequence[Memory]) -> Table:
    rows = [(m.memory_id, m.memory, m.topics, m.version, m.updated_at) for m in memories]
    return _table(title, ["memory_id", "memory", "topics", "v", "updated (UTC)"], rows)


def _events(title: str, events: Sequence[MemoryEvent]) -> Table:
    rows = [(e.created_at, e.operation, e.memory_id[:8], e.old_memory, e.new_memory, e.reason) for e in events]
    return _table(title, ["time (UTC)", "op", "memory", "old", "new", "reason"], rows)


def _read_messages(source: str) -> list[Message]:
    """Messages from a file or stdin: a JSON list, JSON lines of {role, content}, or plain text."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {source!r}: {exc.strerror}") from exc
    if not text.strip():
        raise ConfigError(f"{'stdin' if source == '-' else source!r} holds no messages")
    stripped = text.strip()
    try:
        try:
            parsed = json.loads(stripped)
        except ValueError:
            if not stripped.startswith("{"):
                return Message.coerce(stripped)  # plain text: one user message
            parsed = [json.loads(line) for line in stripped.splitlines() if line.strip()]  # JSON lines
        return Message.coerce(parsed if isinstance(parsed, (list, dict)) else stripped)
    except ValueError as exc:
        raise ConfigError(f"{source!r} holds no valid messages: {str(exc).splitlines()[0]}") from exc


@app.command()
def add(
    text: Annotated[str, typer.Argument(help="the memory, as it should be stored")],
    user: UserOpt,
    topic: Annotated[list[str] | None, typer.Option("--topic", "-t", help="a topic (repeatable)")] = None,
    agent: Annotated[str | None, typer.Option(help="agent_id")] = None,
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Store a memory as given (no LLM call)."""
    with _manager(db, model) as manager:
        memory = manager.add_user_memory(text, user_id=user, topics=topic or [], agent_id=agent)
    out.print(f"added {memory.memory_id}: {memory.memory}")


@app.command()
def extract(
    source: Annotated[str, typer.Argument(help="file of messages (JSON list, JSON lines or text), or - for stdin")],
    user: UserOpt,
    agent: Annotated[str | None, typer.Option(help="agent_id")] = None,
    session: Annotated[str | None, typer.Option(help="session_id")] = None,
    db: DbOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
) -> None:
    """Extract memories from messages with one LLM call, and apply them."""
    if not model:
        raise ConfigError("extract needs a model: give --model provider:model or set MEMLAYER_MODEL")
    messages = _read_messages(source)
    with _manager(db, model, api_base) as manager, err.status(f"asking {model}..."):
        result = manager.create_user_memories(messages, user_id=user, agent_id=agent, session_id=session)
    rows = [(c.operation, c.memory_id, c.old_memory, c.memory, c.reason) for c in result.changes]
    out.print(_table("changes", ["op", "memory_id", "old", "new", "reason"], rows))
    for skipped in result.skipped:
        out.print(f"skipped: {skipped}")
    if result.usage:
        u = result.usage
        out.print(f"{u.attempts} call(s), {u.input_tokens} + {u.output_tokens} tokens, {u.latency_ms:.0f} ms")


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="what to look for")],
    user: UserOpt,
    limit: Annotated[int, typer.Option(min=1)] = 10,
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """The user's current memories that best match a query."""
    with _existing(db, model) as manager:
        out.print(_memories(f"{user}: {text!r}", manager.search_user_memories(text, user_id=user, limit=limit)))


@app.command(name="list")
def list_(
    user: UserOpt,
    topic: Annotated[list[str] | None, typer.Option("--topic", "-t", help="only these topics")] = None,
    as_of: Annotated[datetime | None, typer.Option(help="as they were then (UTC)")] = None,
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """The user's memories now (or at --as-of), newest first."""
    with _existing(db, model) as manager:
        memories = manager.get_user_memories(user_id=user, topics=topic, as_of=as_of)
    out.print(_memories(f"{user}: {len(memories)} memories", memories))


@app.command()
def history(
    user: UserOpt,
    memory_id: Annotated[str | None, typer.Argument(help="one memory; all of the user's when omitted")] = None,
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Every add, update and delete (of one memory, or of all the user's), oldest first."""
    with _existing(db, model) as manager:
        if memory_id:
            events = manager.get_memory_history(memory_id, user_id=user)
            if not events:
                raise ConfigError(f"user {user!r} has no memory {memory_id!r}")
        else:
            events = manager.get_user_events(user_id=user)
    out.print(_events(f"{user}: {len(events)} events", events))


@app.command()
def forget(
    user: UserOpt,
    memory_id: Annotated[str | None, typer.Argument(help="forget one memory (history kept)")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Erase everything held about a user (every version, event, LLM call, session), or forget one memory."""
    what = f"memory {memory_id} of {user!r}" if memory_id else f"EVERYTHING held about {user!r} (it cannot be undone)"
    with _existing(db, model) as manager:
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError(f"forget asks before deleting {what}; pass --yes when not at a terminal")
            typer.confirm(f"Delete {what}?", abort=True)
        if memory_id:
            manager.delete_user_memory(memory_id, user_id=user)
            out.print(f"forgot {memory_id} (its history stays until the user is erased)")
            return
        counts = manager.erase_user(user_id=user)
    if not any(counts.values()):
        raise ConfigError(f"nothing is held about user {user!r}")
    out.print("erased " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help='one read-only statement, e.g. "SELECT * FROM topic_counts"')],
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv or jsonl")] = "table",
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Run one read-only SQL query over the store (the file is opened read-only)."""
    if format not in ("table", "csv", "jsonl"):
        raise ConfigError(f"--format must be table, csv or jsonl, not {format!r}")
    _print_result(analytics.query(query, db=_db_path(db)), format)


def _print_result(result: analytics.QueryResult, format: str) -> None:
    if format == "table":
        out.print(_table(None, result.columns, result.rows))
        out.print(f"{len(result)} row(s)", style="dim")
    elif format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        for row in result.rows:
            sys.stdout.write(json.dumps(dict(zip(result.columns, row, strict=True)), default=str) + "\n")


@app.command()
def stats(
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user")] = None,
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Counts: users, memories, versions, events, LLM calls, tokens, cost, sessions, messages."""
    numbers = analytics.store_stats(_db_path(db), user_id=user)
    out.print(_table(f"{_db_path(db)}" + (f" ({user})" if user else ""), list(numbers), [list(numbers.values())]))


@app.command(name="export")
def export_(
    dest: Annotated[Path, typer.Argument(help="a new folder for the export")],
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user's rows")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="parquet, csv or jsonl")] = "parquet",
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Export every table (or one user's rows) to Parquet, CSV or JSON lines."""
    with _existing(db, model) as manager, _progress("exporting") as step:
        fmt = cast("analytics.ExportFormat", format)  # export_store checks it
        counts = analytics.export_store(manager.db, dest, format=fmt, user_id=user, progress=step)
    out.print(f"exported to {dest}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@app.command(name="import")
def import_(
    src: Annotated[Path, typer.Argument(help="a folder written by memlayer export")],
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Load an export, history included, in one transaction (identical rows are skipped)."""
    analytics.check_export(src)  # before the database is opened (or created)
    with _manager(db, model) as manager, _progress("importing") as step:
        counts = analytics.import_store(manager.db, src, progress=step)
    out.print(f"imported into {manager.db.db_file}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@contextmanager
def _progress(verb: str) -> Iterator[Any]:
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(verb, total=len(analytics.TABLES))

        def step(table: str) -> None:
            bar.update(task, advance=1, description=f"{verb} {table}")

        yield step


@app.command()
def demo(
    db: DbOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
) -> None:
    """Run a short conversation through extraction, then show memories, history and analytics.

    Offline by default (a recorded session, no network, no key); live with --model.
    """
    from . import demo as script

    path = db or str(Path(tempfile.mkdtemp(prefix="memlayer-demo-")) / "demo.duckdb")
    if model:
        out.print(f"[bold]running live[/bold] against {escape(model)}", markup=True)
    elif script.recording():
        out.print(f"[bold]recording the demo session[/bold] from {script.RECORDED_API_BASE} into {script.CASSETTE}")
    else:
        info = script.recorded_with()
        models = ", ".join(info.get("models", [])) or "unknown"
        out.print(
            f"[bold]replaying a recorded session (no network, no key)[/bold]: recorded from {models} "
            f"on {', '.join(info.get('servers', [])) or 'a local server'}, {info.get('recorded_at', '')}. "
            "Give --model to run it live.",
            markup=True,
        )
    before = "known before the conversation (stored directly, no LLM call)"
    out.print(_table(before, ["user", "memory", "topics"], script.SEED))
    with DuckDb(path) as store:
        with _progress_turns(len(script.CONVERSATION)) as on_turn:
            turns = script.run_demo(store, model=model, api_base=api_base, on_turn=on_turn)
        for turn in turns:
            said = " / ".join(f"{m.role}: {m.content}" for m in turn.messages)
            rows = [(c.operation, c.old_memory, c.memory) for c in turn.result.changes]
            out.print(_table(f"{turn.user_id} ({turn.session_id}): {said}", ["op", "old", "new"], rows))
        manager = MemoryManager(db=store)
        for user in script.DEMO_USERS:
            out.print(_memories(f"{user}: memories now", manager.get_user_memories(user_id=user)))
        out.print(_events(f"{script.MAYA}: history", manager.get_user_events(user_id=script.MAYA)))
        for question, statement in script.DEMO_QUERIES:
            result = analytics.query(statement, db=store)
            out.print(_table(question, result.columns, result.rows))
            out.print(f'  memlayer sql --db {path} "{statement}"', style="dim")
    out.print(f'\nThe store is {path}; ask it anything: memlayer sql --db {path} "SELECT * FROM memory_churn"')


@app.command(name="eval")
def eval_(
    model: Annotated[
        str, typer.Option("--model", envvar="MEMLAYER_MODEL", help="the model to measure [env MEMLAYER_MODEL]")
    ],
    api_base: ApiBaseOpt = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="MEMLAYER_API_KEY", help="the provider key, if not in its usual variable"),
    ] = None,
    split: Annotated[str, typer.Option(help="tune, heldout or all")] = "all",
    category: Annotated[str | None, typer.Option(help="only this category")] = None,
    scenarios: Annotated[
        list[Path] | None, typer.Option("--scenarios", help="scenario files or folders (default: the shipped set)")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="scenarios run at once (each in its own store)")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print the scores and every turn as JSON")] = False,
    failures: Annotated[bool, typer.Option("--failures", help="list every failed check")] = False,
) -> None:
    """Measure extraction quality with a model: labelled scenarios, scored per category and overall."""
    from . import evaluation

    if split not in ("tune", "heldout", "all"):
        raise ConfigError(f"--split must be tune, heldout or all, not {split!r}")
    chosen = evaluation.load_scenarios(
        scenarios, split=None if split == "all" else cast("evaluation.Split", split), category=category
    )
    options: dict[str, Any] = {"model": model, "api_base": api_base, "api_key": api_key}
    MemoryManager(**options)  # a bad model string fails here, before any progress bar
    turns = sum(len(s.turns) for s in chosen)
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"{len(chosen)} scenarios", total=turns)
        results = evaluation.run_scenarios(
            chosen,
            manager_options=options,
            jobs=jobs,
            on_scenario=lambda scenario, done: bar.update(task, advance=len(done), description=scenario.id),
        )
    summary = evaluation.report(results)
    if as_json:
        sys.stdout.write(json.dumps({"model": model, **summary}, indent=2, ensure_ascii=False) + "\n")
        return
    if failures:
        _print_failures(results)
    groups = [*summary["by_category"], *summary["by_split"], summary["overall"]]
    columns = ["group", "scen", "turns", "recall", "viol", "dup", "prec", "err", "ops", "tok", "s"]
    rows = [
        (g["group"], g["scenarios"], g["extractions"], f"{g['recall']:.2f}", f"{g['absent_violation_rate']:.1%}",
         g["duplicates"], f"{g['precision']:.2f}", g["errors"], f"{g['operations_per_extraction']:.1f}",
         f"{g['output_tokens_per_extraction']:.0f}", f"{g['seconds_per_extraction']:.1f}")
        for g in groups
    ]  # fmt: skip
    title = f"extraction quality: {model} (viol: absent facts found; per extraction: ops, output tokens, seconds)"
    out.print(_table(title, columns, rows))


def _print_failures(results: Sequence[Any]) -> None:
    for r in results:
        problems = [f"missing {', '.join(r.missing)}"] if r.missing else []
        problems += [f"should be absent: {', '.join(r.violations)}"] if r.violations else []
        problems += [f"unexpected memory {m!r}" for m in r.unmatched]
        problems += [f"error: {r.error}"] if r.error else []
        problems += [f"{r.duplicates} duplicate(s)"] if r.duplicates else []
        if problems:
            out.print(Text(f"{r.scenario} turn {r.turn}: " + "; ".join(problems)))
            out.print(Text("    did: " + ("; ".join(r.changes) or "nothing")), style="dim")


@contextmanager
def _progress_turns(total: int) -> Iterator[Any]:
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("extracting", total=total)
        yield lambda turn: bar.update(task, advance=1, description=f"extracted {turn.session_id}")


def main() -> None:
    """The console script ``memlayer``."""
    app()


if __name__ == "__main__":
    main()
