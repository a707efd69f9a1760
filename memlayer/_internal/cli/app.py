"""The ``memlayer`` command line app, its shared options and its table printing.

Every command takes ``--db`` (or ``MEMLAYER_DB``); the commands that call a model take ``--model``
(or ``MEMLAYER_MODEL``) and check its provider key before anything else. A `MemlayerError` becomes
one line on stderr and exit status 1, in one place (`_Group.invoke`); usage mistakes exit with 2.
``import memlayer`` never imports this module.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .. import checks
from ..analytics.snapshot import is_dsn
from ..db import DuckDb, PostgresDb
from ..errors import ConfigError, MemlayerError
from ..memory.background import JobSettings
from ..memory.manager import MemoryManager
from ..records import Memory, MemoryEvent, Message

__all__ = [
    "ApiBaseOpt",
    "DbOpt",
    "JsonOpt",
    "ModelOpt",
    "UserOpt",
    "app",
    "counted",
    "err",
    "model_ready",
    "out",
    "plural",
    "print_json",
]

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
    str | None,
    typer.Option(
        "--db", envvar="MEMLAYER_DB", help="DuckDB file, or a postgresql:// URL [env MEMLAYER_DB]", show_default=False
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", envvar="MEMLAYER_MODEL", help="LiteLLM model, e.g. openai:gpt-4o [env MEMLAYER_MODEL]"),
]
ApiBaseOpt = Annotated[
    str | None, typer.Option("--api-base", envvar="MEMLAYER_API_BASE", help="model server URL [env MEMLAYER_API_BASE]")
]
UserOpt = Annotated[str, typer.Option("--user", "-u", help="the user_id (required: there is no default user)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]

# Loggers of the libraries under memlayer: their warnings and retries would print before the one
# `error:` line (LiteLLM logs a failed call at ERROR, Instructor each retry). Set in the command line
# only: a program using memlayer keeps its own logging.
_QUIET_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "instructor", "httpx")


def _print_version(value: bool) -> None:
    if value:
        from ... import __version__

        out.print(f"memlayer {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def model_ready(model: str, *, api_base: str | None = None, api_key: str | None = None) -> None:
    """Check the model string and its provider key before anything is opened, asked or printed."""
    from ..llm.litellm import check_provider, require_keys, start_import
    from ..llm.spec import parse_model

    spec = parse_model(model, api_base=api_base, api_key=api_key)
    start_import()
    check_provider(spec)
    require_keys(spec)


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 memory``, ``2 memories``."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


# What a row of each table is, for counts people read ("1 memory version", "2 events").
_ROW_NAMES = {
    "memories": ("memory", "memories"),  # a row is a version; stats counts the two apart
    "memory_events": ("event", "events"),
    "llm_calls": ("LLM call", "LLM calls"),
    "sessions": ("session", "sessions"),
    "runs": ("run", "runs"),
    "messages": ("message", "messages"),
    "memory_embeddings": ("embedding", "embeddings"),
}


def counted(counts: dict[str, int]) -> str:
    """Row counts per table, in words: ``1 memory, 2 events, 0 LLM calls``."""
    return ", ".join(plural(n, *_ROW_NAMES.get(table, (table, table))) for table, n in counts.items())


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def db_path(db: str | None) -> str:
    """The ``--db`` value: a DuckDB file, or a Postgres dsn (``postgresql://`` or ``postgres://``)."""
    if not db:
        raise ConfigError("no database: give --db PATH or set MEMLAYER_DB (a file, or a postgresql:// URL)")
    return db


def shown(db: str) -> str:
    """``db`` as it may be printed: a dsn's password is never shown."""
    if is_dsn(db):
        from ..db.postgres import parse_dsn

        return parse_dsn(db.strip()).display
    return db


@contextmanager
def open_manager(
    db: str | None, model: str | None, api_base: str | None = None, jobs: JobSettings | None = None
) -> Iterator[MemoryManager]:
    """A manager on the file (created and migrated if new) or the Postgres database (migrated if
    blank); a bad model string fails here.

    A file this command created is removed again when the command fails: a failure leaves nothing behind.
    """
    path = db_path(db)
    if is_dsn(path):
        with PostgresDb(path.strip()) as server:
            yield MemoryManager(model, server, api_base=api_base, jobs=jobs)
        return
    created = path != ":memory:" and not Path(path).exists()
    try:
        with DuckDb(path) as store:
            yield MemoryManager(model, store, api_base=api_base, jobs=jobs)
    except BaseException:
        if created:
            for leftover in (Path(path), Path(f"{path}.wal")):
                leftover.unlink(missing_ok=True)
        raise


@contextmanager
def existing_manager(db: str | None, model: str | None) -> Iterator[MemoryManager]:
    path = db_path(db)
    if not is_dsn(path) and not Path(path).exists():
        raise ConfigError(f"no database at {path!r}")
    with open_manager(path, model) as manager:
        yield manager


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    # Text, not markup: a memory that reads "[bold]" is shown as written.
    table = Table(title=Text(title) if title else None, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(Text(str(column)), overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell(v)) for v in row))
    return table


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def memories_table(title: str, memories: Sequence[Memory]) -> Table:
    # 8 characters of the id, as in `events_table`: a table fits 80 columns, and the prefix works as an id.
    rows = [(m.memory_id[:8], m.memory, m.topics, m.version, m.updated_at) for m in memories]
    return table(title, ["memory", "text", "topics", "v", "updated (UTC)"], rows)


def events_table(title: str, events: Sequence[MemoryEvent]) -> Table:
    # 8 characters of the id: any unique prefix is taken back wherever a command takes an id.
    rows = [(e.created_at, e.operation, e.memory_id[:8], e.old_memory, e.new_memory, e.reason) for e in events]
    return table(title, ["time (UTC)", "op", "memory", "old", "new", "reason"], rows)


def read_messages(source: str) -> list[Message]:
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
                return checks.messages(stripped)  # plain text: one user message
            parsed = [json.loads(line) for line in stripped.splitlines() if line.strip()]  # JSON lines
        return checks.messages(parsed if isinstance(parsed, (list, dict)) else stripped)
    except ValueError as exc:
        raise ConfigError(f"{source!r} holds no valid messages: {str(exc).splitlines()[0]}") from exc
