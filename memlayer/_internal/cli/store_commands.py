"""``memlayer sql | stats | export | import``: the whole store, read-only SQL and transfer."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import analytics
from ..db import DuckDb, PostgresDb
from .app import (
    DbOpt,
    JsonOpt,
    app,
    counted,
    db_path,
    err,
    existing_manager,
    open_manager,
    out,
    plural,
    print_json,
    shown,
    table,
)


# Enums, so ``--help`` lists the choices and the parser refuses anything else (a usage error).
class SqlFormat(str, Enum):
    table = "table"
    csv = "csv"
    jsonl = "jsonl"


class ExportFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help='one read-only statement, e.g. "SELECT * FROM topic_counts"')],
    format: Annotated[SqlFormat, typer.Option("--format", "-f", help="how to print the rows")] = SqlFormat.table,
    db: DbOpt = None,
) -> None:
    """Run one read-only SQL query over the store (a file is opened read-only; a Postgres store is
    read in one read-only snapshot)."""
    _print_result(analytics.query(query, db=db_path(db)), format)


def _print_result(result: analytics.QueryResult, format: SqlFormat) -> None:
    if format is SqlFormat.table:
        out.print(table(None, result.columns, result.rows))
        out.print(plural(len(result), "row"), style="dim")
    elif format is SqlFormat.csv:
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
    as_json: JsonOpt = False,
) -> None:
    """Counts: users, memories, versions, events, LLM calls, tokens, cost, sessions, messages."""
    numbers = analytics.store_stats(db_path(db), user_id=user)
    if as_json:
        print_json(numbers)
        return
    # One row per count: nine columns side by side would wrap their headers at 80 columns.
    out.print(table(shown(db_path(db)) + (f" ({user})" if user else ""), ["count", "value"], list(numbers.items())))


@app.command(name="export")
def export_(
    dest: Annotated[Path, typer.Argument(help="a new folder for the export")],
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user's rows")] = None,
    format: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="one file per table in")
    ] = ExportFormat.parquet,
    db: DbOpt = None,
) -> None:
    """Export every table (or one user's rows) to Parquet, CSV or JSON lines."""
    with existing_manager(db, None) as manager, _progress("exporting") as step:
        store = manager.db
        assert isinstance(store, (DuckDb, PostgresDb))  # what open_manager makes
        counts = analytics.export_store(store, dest, format=format.value, user_id=user, progress=step)
    out.print(f"exported to {dest}: " + counted(counts))


@app.command(name="import")
def import_(
    src: Annotated[Path, typer.Argument(help="a folder written by memlayer export")],
    db: DbOpt = None,
) -> None:
    """Load an export, history included, in one transaction (identical rows are skipped)."""
    analytics.check_export(src)  # before the database is opened (or created)
    with open_manager(db, None) as manager, _progress("importing") as step:
        store = manager.db
        assert isinstance(store, (DuckDb, PostgresDb))  # what open_manager makes
        counts = analytics.import_store(store, src, progress=step)
    where = store.db_file if isinstance(store, DuckDb) else store.display
    out.print(f"imported into {where}: " + counted(counts))


@contextmanager
def _progress(verb: str) -> Iterator[Any]:
    from rich.progress import Progress

    # A bar on a terminal only: redirected, it leaves a blank line before the result or the error.

    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(verb, total=len(analytics.TABLES))

        def step(table: str) -> None:
            bar.update(task, advance=1, description=f"{verb} {table}")

        yield step
