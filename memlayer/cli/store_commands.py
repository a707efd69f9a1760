"""``memlayer sql | stats | export | import``: the whole store, read-only SQL and transfer."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from .. import analytics
from ..db import DuckDb, PostgresDb
from ..errors import ConfigError
from .app import (
    DbOpt,
    ModelOpt,
    app,
    db_path,
    err,
    existing_manager,
    open_manager,
    out,
    shown,
    table,
)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help='one read-only statement, e.g. "SELECT * FROM topic_counts"')],
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv or jsonl")] = "table",
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Run one read-only SQL query over the store (a file is opened read-only; a Postgres store is
    read in one read-only snapshot)."""
    if format not in ("table", "csv", "jsonl"):
        raise ConfigError(f"--format must be table, csv or jsonl, not {format!r}")
    _print_result(analytics.query(query, db=db_path(db)), format)


def _print_result(result: analytics.QueryResult, format: str) -> None:
    if format == "table":
        out.print(table(None, result.columns, result.rows))
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
    numbers = analytics.store_stats(db_path(db), user_id=user)
    out.print(table(shown(db_path(db)) + (f" ({user})" if user else ""), list(numbers), [list(numbers.values())]))


@app.command(name="export")
def export_(
    dest: Annotated[Path, typer.Argument(help="a new folder for the export")],
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user's rows")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="parquet, csv or jsonl")] = "parquet",
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Export every table (or one user's rows) to Parquet, CSV or JSON lines."""
    with existing_manager(db, model) as manager, _progress("exporting") as step:
        fmt = cast("analytics.ExportFormat", format)  # export_store checks it
        store = manager.db
        assert isinstance(store, (DuckDb, PostgresDb))  # what open_manager makes
        counts = analytics.export_store(store, dest, format=fmt, user_id=user, progress=step)
    out.print(f"exported to {dest}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@app.command(name="import")
def import_(
    src: Annotated[Path, typer.Argument(help="a folder written by memlayer export")],
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Load an export, history included, in one transaction (identical rows are skipped)."""
    analytics.check_export(src)  # before the database is opened (or created)
    with open_manager(db, model) as manager, _progress("importing") as step:
        store = manager.db
        assert isinstance(store, (DuckDb, PostgresDb))  # what open_manager makes
        counts = analytics.import_store(store, src, progress=step)
    where = store.db_file if isinstance(store, DuckDb) else store.display
    out.print(f"imported into {where}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@contextmanager
def _progress(verb: str) -> Iterator[Any]:
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(verb, total=len(analytics.TABLES))

        def step(table: str) -> None:
            bar.update(task, advance=1, description=f"{verb} {table}")

        yield step
