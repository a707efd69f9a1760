"""Read-only SQL over the store: the statement may read memlayer's tables and views, and nothing else.

Three locks, each enough for writes on its own, with the last two also keeping the query inside the store:

1. DuckDB parses the text and anything but one statement of type SELECT (``SELECT``, ``WITH``, ``FROM``,
   ``VALUES``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``) is refused before it runs;
2. the parsed tree (``json_serialize_sql``) may name only the store's own tables and views, the query's
   own CTEs, a few generators (``range``, ``generate_series``, ``unnest``) and DuckDB's catalog
   (``duckdb_tables()``, ...): ``read_csv``, ``glob``,
   ``read_text``, ``read_parquet('https://...')`` and a file name used as a table are refused, and so is
   a query whose FROM clause or tables the walk cannot read (it fails closed);
3. it runs inside ``BEGIN TRANSACTION READ ONLY``, rolled back afterwards.

A file opened by path is also opened with ``enable_external_access=false`` and locked configuration
(`SANDBOX_CONFIG`); a shared `DuckDb` cannot be (DuckDB's setting is per database and one-way, and
export and import need files), so there the tree check is what keeps the query in. Every memlayer
connection turns off extension auto-install and auto-load, so no query can fetch code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..errors import ConfigError

__all__ = ["NO_EXTENSIONS", "SANDBOX_CONFIG", "check_read_only", "check_references", "read_only_transaction"]

NO_EXTENSIONS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
SANDBOX_CONFIG: dict[str, Any] = {**NO_EXTENSIONS, "enable_external_access": False, "lock_configuration": True}
_GENERATORS = frozenset({"range", "generate_series", "unnest"})
# DuckDB's catalog, which describes the store (duckdb_secrets and duckdb_settings are left out).
_CATALOG_FUNCTIONS = frozenset(
    f"duckdb_{name}"
    for name in ("tables", "views", "columns", "databases", "schemas", "indexes", "constraints", "sequences", "types")
)
_CATALOG_SCHEMAS = frozenset({"information_schema", "pg_catalog"})


def check_read_only(sql: object) -> str:
    """The statement, if it is exactly one read-only statement; `ConfigError` naming what it is if not."""
    if not isinstance(sql, str) or not sql.strip():
        raise ConfigError('give a SQL query, e.g. "SELECT * FROM topic_counts"')
    try:
        sql.encode("utf-8")  # a lone surrogate (bad decoding) reaches DuckDB's parser as a TypeError
    except UnicodeEncodeError as exc:
        raise ConfigError(f"the query is not valid text (it holds {sql[exc.start : exc.end]!r})") from None
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ConfigError(f"the query does not parse: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise ConfigError(f"give exactly one statement, not {len(statements)}: queries here are read-only")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise ConfigError(
            f"only read-only queries run here (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE); "
            f"this statement is of type {kind.name}, and the store was not touched"
        )
    return sql.strip()


def check_references(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse a statement that reads anything but the store: a file, a URL, a table function."""
    try:
        # fetchall, not fetchone: an unfinished result would block the query that follows on this cursor.
        tree = json.loads(conn.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    except duckdb.Error as exc:
        raise ConfigError(f"the query does not parse: {_first_line(exc)}") from exc
    if tree.get("error"):
        raise ConfigError(f"the query cannot be checked, so it does not run: {tree.get('error_message', '')}")
    found = _references(tree)
    known = _store_names(conn) | found.ctes
    catalog = conn.execute("SELECT current_database()").fetchall()[0]
    for ref in found.refs:
        if ref["type"] == "TABLE_FUNCTION":
            name = str(ref.get("function", {}).get("function_name", "?"))
            if name.lower() not in _GENERATORS | _CATALOG_FUNCTIONS:
                raise ConfigError(f"the query calls {name}(): queries here read the store's tables and views only")
            continue
        name, schema = str(ref.get("table_name", "")), str(ref.get("schema_name", ""))
        if ref.get("catalog_name", "") not in ("", catalog[0] if catalog else ""):
            raise ConfigError(f"the query reads {ref['catalog_name']}.{name}: only this store can be read")
        if schema.lower() in _CATALOG_SCHEMAS:
            continue
        if schema not in ("", "main") or name.lower() not in known:
            raise ConfigError(f"the query reads {name!r}, which is not a table or view of the store")


# Fail closed: every query node's FROM clause is read as one of these kinds of table reference, and a
# reference of another kind, or a table named anywhere else in the tree (a DuckDB whose serialized form
# has changed), refuses the query rather than letting a table through unread.
_PLAIN_REFS = frozenset({"EMPTY", "EXPRESSION_LIST", "SUBQUERY"})  # read by the walk through the whole tree
_SHOW_SPECIAL = frozenset({'"tables"', '"databases"', "__show_tables_expanded"})  # SHOW TABLES / DATABASES


@dataclass
class _Found:
    refs: list[dict[str, Any]] = field(default_factory=list)  # the tables and table functions read
    ctes: set[str] = field(default_factory=set)
    queries: int = 0  # SELECT nodes seen
    placed: set[int] = field(default_factory=set)  # ids of the table references read as part of a FROM clause


def _references(tree: dict[str, Any]) -> _Found:
    """What a parsed statement reads; `ConfigError` if any part of it cannot be read as a known form."""
    found = _Found()
    _walk(tree, found)
    if not found.queries:
        raise ConfigError("the query's tables cannot be found in its parsed form, so it does not run")
    return found


def _walk(node: Any, found: _Found) -> None:
    if isinstance(node, dict):
        is_table = node.get("type") in ("BASE_TABLE", "TABLE_FUNCTION") and "class" not in node
        if is_table and id(node) not in found.placed:
            raise ConfigError("the query names a table where it cannot be checked, so it does not run")
        if node.get("type") == "SELECT_NODE":
            found.queries += 1
            if not isinstance(node.get("from_table"), dict):
                raise ConfigError("the query's FROM clause cannot be checked, so it does not run")
            _from(node["from_table"], found)
        for entry in node.get("cte_map", {}).get("map", []) if isinstance(node.get("cte_map"), dict) else []:
            found.ctes.add(str(entry.get("key", "")).lower())
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)


def _from(ref: dict[str, Any], found: _Found) -> None:
    """One table reference of a FROM clause: what it reads goes to ``found``; a kind not known here is refused."""
    kind = ref.get("type")
    found.placed.add(id(ref))
    if kind == "BASE_TABLE" and ref.get("table_name"):
        found.refs.append(ref)
    elif kind == "TABLE_FUNCTION" and isinstance(ref.get("function"), dict):
        found.refs.append(ref)
    elif kind == "JOIN" and isinstance(ref.get("left"), dict) and isinstance(ref.get("right"), dict):
        _from(ref["left"], found)
        _from(ref["right"], found)
    elif kind == "PIVOT" and isinstance(ref.get("source"), dict):
        _from(ref["source"], found)
    elif kind == "SHOW_REF" and ref.get("query") is None:
        # SHOW TABLES / DATABASES, or DESCRIBE/SHOW of a name, checked as a table (DESCRIBE of a query
        # holds that query, read by the walk). Its show_type differs between DuckDB releases: not read.
        if ref.get("table_name") in _SHOW_SPECIAL:
            pass
        elif ref.get("table_name"):
            found.refs.append({**ref, "type": "BASE_TABLE"})
        else:
            raise ConfigError("the query shows something that cannot be checked, so it does not run")
    elif kind not in _PLAIN_REFS and kind != "SHOW_REF":
        raise ConfigError(f"the query reads from a {kind} clause, which cannot be checked, so it does not run")


def _store_names(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND database_name = current_database()"
        " UNION SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND database_name = current_database()"
        " AND NOT internal"
    ).fetchall()
    return {str(row[0]).lower() for row in rows}


@contextmanager
def read_only_transaction(cursor: duckdb.DuckDBPyConnection, sql: str) -> Iterator[str]:
    """Check ``sql`` and hold a read-only transaction around its use; DuckDB errors become `ConfigError`."""
    statement = check_read_only(sql)
    cursor.execute("BEGIN TRANSACTION READ ONLY")
    try:
        check_references(cursor, statement)
        yield statement
    except duckdb.TransactionException as exc:
        raise ConfigError(f"the query tried to write and was refused (read-only): {_first_line(exc)}") from exc
    except duckdb.Error as exc:
        raise ConfigError(f"the query failed: {_first_line(exc)}") from exc
    finally:
        cursor.execute("ROLLBACK")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
