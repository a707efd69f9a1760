"""Read-only SQL over the store, and store statistics.

`query` runs one SELECT-like statement and can never change the store, by two locks that do not
depend on each other:

1. the statement is parsed by DuckDB (``duckdb.extract_statements``) and anything but one statement
   of type SELECT (``SELECT``, ``WITH``, ``FROM``, ``VALUES``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``) is
   refused before it runs: ``INSERT``, ``UPDATE``, ``DELETE``, ``DROP``, ``COPY``, ``ATTACH``, ``PRAGMA``,
   ``SET``, ``CALL``, ``EXPORT`` and a second statement after a ``;``;
2. it runs inside ``BEGIN TRANSACTION READ ONLY``, which is rolled back, so DuckDB itself refuses any
   write a SELECT could still reach (``nextval`` on a sequence, which a rollback would not undo).

Given a `DuckDb`, it reads through that object's database (a separate cursor, so it runs beside
the writer's transactions in the same process). Given a path, it opens the file ``read_only``:
several readers may then share the file, but DuckDB refuses a reader from another process while
one process has the file open for writing (`DatabaseLockedError`, which says so).

Given a `PostgresDb` or a ``postgresql://`` dsn, it copies the tables the query reads into an
in-memory DuckDB (`memlayer._internal.analytics.snapshot`: one read-only snapshot of the server, a copy per
query) and runs the query there, by the same rules, so it answers and refuses exactly as on DuckDB.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from ..db import DuckDb, PostgresDb, readonly
from ..db.database import _locked_or_storage_error
from ..db.migrations import MIGRATIONS
from ..errors import ConfigError, StorageError
from .snapshot import is_dsn, pg_source, snapshot

__all__ = [
    "TABLES",
    "Db",
    "Progress",
    "QueryResult",
    "check_read_only",
    "first_line",
    "query",
    "quote_name",
    "reader",
    "sql_literal",
    "store_stats",
    "table_columns",
]

# Where analytics read: a store object, the path of a DuckDB file, or a postgresql:// dsn.
Db = DuckDb | PostgresDb | str | Path
Output = Literal["rows", "arrow", "pandas", "polars"]
Progress = Callable[[str], None]

# Every table an export holds, with the key that identifies a row.
TABLES: dict[str, tuple[str, ...]] = {
    "memories": ("memory_id", "version"),
    "memory_events": ("event_id",),
    "llm_calls": ("call_id",),
    "sessions": ("session_id",),
    "runs": ("run_id",),
    "messages": ("message_id",),
}
_EXTRAS = {"arrow": ("pyarrow", "arrow"), "pandas": ("pandas", "pandas"), "polars": ("polars", "polars")}


@dataclass(frozen=True)
class QueryResult:
    """Rows of a query with their column names; iterate it for the rows (tuples)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def check_read_only(sql: str) -> str:
    """The statement, if it is exactly one read-only statement; `ConfigError` naming what it is if not."""
    return readonly.check_read_only(sql)


def query(
    sql: str,
    *,
    db: Db,
    params: list[Any] | None = None,
    output: Output = "rows",
) -> Any:
    """Run one read-only query over the store; it cannot modify it.

    ``db`` is a `DuckDb` (its database is shared, in this process), the path of a database file
    (opened read-only), or a `PostgresDb` or ``postgresql://`` dsn (the tables the query reads are
    copied into an in-memory DuckDB first, in one read-only snapshot: a copy per query, see
    `analytics.snapshot`). ``output`` is ``"rows"`` (a `QueryResult`: ``.columns``, ``.rows``), ``"arrow"``
    (a ``pyarrow.Table``), ``"pandas"`` or ``"polars"`` (a DataFrame; ``pip install
    'memlayer-ai[pandas]'`` or ``'memlayer-ai[polars]'``).
    """
    check_read_only(sql)
    if output != "rows":
        _require_extra(output)
    _check_params(params)
    with reader(db, sql=sql) as cursor, readonly.read_only_transaction(cursor, sql) as statement:
        relation = cursor.sql(statement, params=params or None)
        if relation is None:  # a SELECT-typed statement that returns nothing
            return QueryResult([], []) if output == "rows" else None
        if output == "rows":
            return QueryResult(list(relation.columns), relation.fetchall())
        if output == "arrow":
            return relation.to_arrow_table()
        return relation.df() if output == "pandas" else relation.pl()


def _check_params(params: object) -> None:
    if params is not None and not isinstance(params, (list, tuple, dict)):
        raise ConfigError(f"params must be a list (or a dict for named parameters), got {params!r}")


def store_stats(db: Db, *, user_id: str | None = None) -> dict[str, Any]:
    """Counts over the store (or one user's part of it): users, memories, events, calls, cost, sessions, and
    memory jobs still queued or parked after their last attempt (`memlayer jobs`)."""
    where, params = ("WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
    sql = f"""
        SELECT
          (SELECT count(DISTINCT user_id) FROM memories {where}) AS users,
          (SELECT count(*) FROM memories {where} {"AND" if where else "WHERE"} recorded_until IS NULL) AS memories,
          (SELECT count(*) FROM memories {where}) AS versions,
          (SELECT count(*) FROM memory_events {where}) AS events,
          (SELECT count(*) FROM llm_calls {where}) AS llm_calls,
          (SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM llm_calls {where}) AS tokens,
          (SELECT sum(cost_usd) FROM llm_calls {where}) AS cost_usd,
          (SELECT count(*) FROM sessions {where}) AS sessions,
          (SELECT count(*) FROM messages {where}) AS messages,
          (SELECT count(*) FROM memory_jobs {where} {"AND" if where else "WHERE"} status IN ('pending', 'running'))
            AS jobs_queued,
          (SELECT count(*) FROM memory_jobs {where} {"AND" if where else "WHERE"} status = 'dead') AS jobs_parked
    """
    result = query(sql, db=db, params=params * 11)
    return dict(zip(result.columns, result.rows[0], strict=True))


# -- connections ----------------------------------------------------------------------------------


@contextmanager
def reader(db: Db, *, sql: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor for reading: on the `DuckDb`'s database, on the file opened read-only, or on an
    in-memory copy of a Postgres store (of the tables ``sql`` reads, or all but the vectors)."""
    if not isinstance(db, (DuckDb, PostgresDb, str, Path)):
        raise ConfigError(
            f"db must be a DuckDb or the path of a database file, a PostgresDb or a postgresql:// dsn, got {db!r}"
        )
    if isinstance(db, PostgresDb) or is_dsn(db):
        # A query is sandboxed like a file opened by path; an export's copy must write its files.
        copy = snapshot(pg_source(db), sql=sql, sandbox=sql is not None)
        try:
            with reader(copy) as cursor:
                yield cursor
        finally:
            copy.close()
        return
    if isinstance(db, DuckDb):
        with db.reading() as conn:
            cursor = conn.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        return
    conn = _open_read_only(Path(db))
    try:
        yield conn
    finally:
        conn.close()


def _open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise ConfigError(f"no database at {str(path)!r}")
    conn = _connect_read_only(path)
    try:
        applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations").fetchall()}
    except duckdb.CatalogException as exc:
        conn.close()
        raise StorageError(f"{str(path)!r} is not a memlayer database (it has no schema_migrations table)") from exc
    if {name for name, _ in MIGRATIONS} - applied:
        # Written by an older memlayer: add the missing views and tables first (no row is changed),
        # then read it read-only.
        conn.close()
        DuckDb(path).close()
        conn = _connect_read_only(path)
    return conn


def _connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        # No file, network or extension beyond the store itself: set at connection start, then locked.
        return duckdb.connect(str(path), read_only=True, config=readonly.SANDBOX_CONFIG)
    except duckdb.IOException as exc:
        error = _locked_or_storage_error(str(path), exc)
        raise type(error)(
            f"{error} A read-only reader in another process cannot open a file while a writer holds it "
            "(DuckDB allows many readers or one writer); read through that process's DuckDb instead."
        ) from exc
    except duckdb.ConnectionException as exc:
        raise StorageError(
            f"this process already has {str(path)!r} open for writing; pass that DuckDb object as db= instead"
        ) from exc
    except duckdb.Error as exc:
        raise StorageError(f"cannot open {str(path)!r} read-only: {first_line(exc)}") from exc


def _require_extra(output: str) -> None:
    if output not in _EXTRAS:
        raise ConfigError(f"output must be one of 'rows', 'arrow', 'pandas', 'polars', not {output!r}")
    module, extra = _EXTRAS[output]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"output={output!r} needs {module}: pip install 'memlayer-ai[{extra}]'") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- export and import ----------------------------------------------------------------------------


def table_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [
        (str(name), str(kind))
        for name, kind in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
