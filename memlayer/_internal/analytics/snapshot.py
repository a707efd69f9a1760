"""A Postgres store's tables copied into an in-memory DuckDB, where `query`, `store_stats` and `export_store` run.

Each call copies: the tables a query reads are fetched through ADBC (``adbc-driver-postgresql``: the
server sends them by binary COPY, straight into Arrow) inside one ``REPEATABLE READ, READ ONLY``
transaction, which is rolled back, and inserted into an in-memory `DuckDb` built by memlayer's own
migrations, so every view has DuckDB's definition and a query means exactly what it means on a DuckDB
store, under the same read-only rules and error texts. The cost is that copy, on every query: measured
on 2 cores, ``FROM topic_counts`` over 10k memories in 0.16 s and over 100k in 0.35-0.5 s; `store_stats`
(memories, events and the rest) over 100k memories and 100k events in 0.75 s; the first query of a
process adds about 0.4 s to load the driver. ``memory_embeddings`` is copied only when the query
names it. Why not read Postgres in place: DuckDB's ``postgres_scanner`` extension does not load into
DuckDB 2.x (the team measured it before this module), and memlayer turns extension loading off on
every connection anyway.

Only memlayer's own table names ever reach the server: the names a query reads are matched against
the tables the migrations create, and views are expanded to the tables they read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, TypeGuard

import duckdb

from ..db import DuckDb, PostgresDb
from ..db.postgres import Dsn, parse_dsn
from ..errors import ConfigError, StorageError

if TYPE_CHECKING:
    from adbc_driver_manager.dbapi import Connection as AdbcConnection

__all__ = ["DSN_PREFIXES", "is_dsn", "pg_source", "snapshot", "tables_read_by"]

DSN_PREFIXES = ("postgresql://", "postgres://")
# What a query copies when its tables cannot be told: everything but the vectors (the bulk of a store).
_DEFAULT_SKIP = frozenset({"memory_embeddings"})
_VIEW_HEAD = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+\S+\s+AS\s+", re.IGNORECASE)


def is_dsn(db: object) -> TypeGuard[str]:
    """Whether ``db`` names a Postgres server (a ``postgresql://`` or ``postgres://`` URL)."""
    return isinstance(db, str) and db.strip().lower().startswith(DSN_PREFIXES)


def pg_source(db: PostgresDb | str) -> Dsn:
    """Where to read: a `PostgresDb`'s dsn, or a dsn string (parsed, never echoed: it may hold a password)."""
    if isinstance(db, PostgresDb):
        return db.dsn
    require_adbc()
    return parse_dsn(db.strip())


def require_adbc() -> None:
    """`ConfigError` unless the ``postgres`` extra (ADBC, pyarrow and psycopg) is installed."""
    try:
        import adbc_driver_postgresql.dbapi  # type: ignore[import-untyped]  # noqa: F401
        import psycopg  # noqa: F401
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"analytics over Postgres need adbc-driver-postgresql, pyarrow and psycopg: "
            f"pip install 'memlayer-ai[postgres]' ({exc})"
        ) from None


def tables_read_by(conn: duckdb.DuckDBPyConnection, sql: str) -> set[str] | None:
    """The store's tables ``sql`` can read, views expanded to theirs; None when it does not parse."""
    tree = _tree(conn, sql)
    if tree is None:
        return None  # the read-only check refuses it before anything runs; the copy is never used
    views = {
        str(name).lower(): str(text)
        for name, text in conn.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal AND database_name = current_database()"
        ).fetchall()
    }
    tables: set[str] = set()
    pending, seen = _names(tree), set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in views:
            # duckdb_views() gives the whole CREATE statement; its SELECT is what the view reads.
            body = _tree(conn, _VIEW_HEAD.sub("", views[name], count=1))
            if body is None:
                return None
            pending |= _names(body)
        else:
            tables.add(name)
    return tables


def _tree(conn: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any] | None:
    try:
        tree: dict[str, Any] = json.loads(conn.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    except duckdb.Error:
        return None
    return None if tree.get("error") else tree


def _names(node: Any) -> set[str]:
    """Every table-or-view name a parsed tree reads (CTE names too: copying a table they shadow is harmless)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and "table_name" in node:
            found.add(str(node["table_name"]).lower())
        for value in node.values():
            found |= _names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _names(value)
    return found


def snapshot(source: Dsn, *, sql: str | None = None, sandbox: bool = False) -> DuckDb:
    """An in-memory `DuckDb` holding the tables ``sql`` reads (all but the vectors when it is None).

    ``sandbox``: afterwards turn off the copy's file and network access and lock its configuration,
    as a DuckDB file opened by path is (`memlayer._internal.db.readonly.SANDBOX_CONFIG`).
    """
    require_adbc()
    copy = DuckDb()
    try:
        with copy.reading() as conn:
            ours = {str(r[0]) for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            wanted = tables_read_by(conn, sql) if sql is not None else None
        wanted = ours - _DEFAULT_SKIP if wanted is None else ours & wanted
        _pull(source, copy, sorted(wanted))
        if sandbox:
            with copy.reading() as conn:
                conn.execute("SET enable_external_access = false")
                conn.execute("SET lock_configuration = true")
    except BaseException:
        copy.close()
        raise
    return copy


def _pull(source: Dsn, copy: DuckDb, tables: Collection[str]) -> None:
    """Copy ``tables`` from Postgres into ``copy``: one snapshot of the server, one DuckDB transaction."""
    import adbc_driver_manager

    with _connect(source) as pg, pg.cursor() as cursor, copy.transaction() as conn:
        try:
            # The first statement of ADBC's transaction: one consistent moment, and the server refuses a write.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema()")
            present = {str(row[0]) for row in cursor.fetchall()}
            if "schema_migrations" not in present:
                raise StorageError(f"{source.display} is not a memlayer database (it has no schema_migrations table)")
            for table in tables:
                if table in present:  # a store from an older memlayer may lack a later table: it stays empty
                    _copy_table(cursor, conn, table)
        except adbc_driver_manager.Error as exc:
            raise StorageError(f"reading {source.display} failed: {source.scrub(exc)}") from None
        finally:
            pg.rollback()


def _copy_table(cursor: Any, conn: duckdb.DuckDBPyConnection, table: str) -> None:
    names = [str(r[0]) for r in conn.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()]
    columns = ", ".join(f'"{n}"' for n in names)
    cursor.execute(f'SELECT {columns} FROM "{table}"')
    rows = cursor.fetch_arrow_table()
    conn.execute(f'DELETE FROM "{table}"')  # schema_migrations: the server's record, not the copy's own
    conn.register("_memlayer_pulled", rows)
    try:
        conn.execute(f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM _memlayer_pulled')
    finally:
        conn.unregister("_memlayer_pulled")


def _connect(source: Dsn) -> AdbcConnection:
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi

    try:
        connection: AdbcConnection = adbc_driver_postgresql.dbapi.connect(source.conninfo)
        return connection
    except adbc_driver_manager.Error as exc:
        raise StorageError(f"cannot reach Postgres at {source.display}: {source.scrub(exc)}") from None
