"""Analytics over the store: read-only SQL, store statistics, and export / import of whole stores.

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

An export is a folder: one file per table (Parquet, CSV or JSON lines) and ``manifest.json``.
`import_store` loads one back in a single transaction, keeping every version, event, LLM call,
session, run and message as it was; rows already present and identical are skipped, and a row
that clashes with a different stored row refuses the whole import.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import duckdb

from .db import DuckDb, readonly
from .db.database import _locked_or_storage_error
from .db.migrations import MIGRATIONS
from .errors import ConfigError, StorageError

__all__ = [
    "EXPORT_FORMATS",
    "TABLES",
    "QueryResult",
    "check_export",
    "check_read_only",
    "export_store",
    "import_store",
    "query",
    "store_stats",
]

Output = Literal["rows", "arrow", "pandas", "polars"]
ExportFormat = Literal["parquet", "csv", "jsonl"]
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
# Tables ordered by a sequence column: imported rows keep their order after the rows already stored.
_SEQUENCES = {"memory_events": "memory_events_seq", "runs": "runs_seq", "messages": "messages_seq"}
EXPORT_FORMATS: dict[str, str] = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}
_EXTRAS = {"arrow": ("pyarrow", "arrow"), "pandas": ("pandas", "pandas"), "polars": ("polars", "polars")}
MANIFEST = "manifest.json"


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
    db: DuckDb | str | Path,
    params: list[Any] | None = None,
    output: Output = "rows",
) -> Any:
    """Run one read-only query over the store; it cannot modify it.

    ``db`` is a `DuckDb` (its database is shared, in this process) or the path of a database file
    (opened read-only). ``output`` is ``"rows"`` (a `QueryResult`: ``.columns``, ``.rows``), ``"arrow"``
    (a ``pyarrow.Table``), ``"pandas"`` or ``"polars"`` (a DataFrame; ``pip install
    'memlayer[pandas]'`` or ``'memlayer[polars]'``).
    """
    check_read_only(sql)
    if output != "rows":
        _require_extra(output)
    _check_params(params)
    with _reader(db) as cursor, readonly.read_only_transaction(cursor, sql) as statement:
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


def store_stats(db: DuckDb | str | Path, *, user_id: str | None = None) -> dict[str, Any]:
    """Counts over the store (or one user's part of it): users, memories, events, calls, cost, sessions."""
    where, params = ("WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
    sql = f"""
        SELECT
          (SELECT count(DISTINCT user_id) FROM memories {where}) AS users,
          (SELECT count(*) FROM memories {where} {"AND" if where else "WHERE"} valid_to IS NULL) AS memories,
          (SELECT count(*) FROM memories {where}) AS versions,
          (SELECT count(*) FROM memory_events {where}) AS events,
          (SELECT count(*) FROM llm_calls {where}) AS llm_calls,
          (SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM llm_calls {where}) AS tokens,
          (SELECT sum(cost_usd) FROM llm_calls {where}) AS cost_usd,
          (SELECT count(*) FROM sessions {where}) AS sessions,
          (SELECT count(*) FROM messages {where}) AS messages
    """
    result = query(sql, db=db, params=params * 9)
    return dict(zip(result.columns, result.rows[0], strict=True))


# -- connections ----------------------------------------------------------------------------------


@contextmanager
def _reader(db: DuckDb | str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor for reading: on the `DuckDb`'s database, or on the file opened read-only."""
    if not isinstance(db, (DuckDb, str, Path)):
        raise ConfigError(f"db must be a DuckDb or the path of a database file, got {db!r}")
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
        raise StorageError(f"cannot open {str(path)!r} read-only: {_first_line(exc)}") from exc


def _require_extra(output: str) -> None:
    if output not in _EXTRAS:
        raise ConfigError(f"output must be one of 'rows', 'arrow', 'pandas', 'polars', not {output!r}")
    module, extra = _EXTRAS[output]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"output={output!r} needs {module}: pip install 'memlayer[{extra}]'") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- export and import ----------------------------------------------------------------------------


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [
        (str(name), str(kind))
        for name, kind in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_store(
    db: DuckDb,
    dest: str | Path,
    *,
    format: ExportFormat = "parquet",
    user_id: str | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Write every table (or one user's rows) to the folder ``dest``; return rows per table.

    All tables are read in one transaction, so the export is one consistent moment of the store.
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}, not {format!r}")
    if user_id is not None and (not isinstance(user_id, str) or not user_id.strip()):
        raise ConfigError(f"user_id must be a non-empty string, got {user_id!r}")
    folder = Path(dest)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"{str(folder)!r} exists and is not an empty folder; export into a new one")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the export folder {str(folder)!r}: {exc.strerror}") from exc
    counts: dict[str, int] = {}
    with _reader(db) as cursor:
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        try:
            for table in TABLES:
                counts[table] = _export_table(cursor, table, folder, format, user_id)
                if progress:
                    progress(table)
            applied = cursor.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
            migrations = [row[0] for row in applied]
        except duckdb.Error as exc:
            raise StorageError(f"export to {str(folder)!r} failed: {_first_line(exc)}") from exc
        finally:
            cursor.execute("ROLLBACK")
    manifest = {
        "memlayer_export": 1,
        "format": format,
        "user_id": user_id,
        "migrations": migrations,
        "tables": counts,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return counts


def _export_table(conn: duckdb.DuckDBPyConnection, table: str, folder: Path, format: str, user_id: str | None) -> int:
    columns = _columns(conn, table)
    # JSON columns go out as their exact text, so a round trip does not reformat them.
    select = ", ".join(
        f"{_quote(n)}::VARCHAR AS {_quote(n)}" if kind == "JSON" and format != "parquet" else _quote(n)
        for n, kind in columns
    )
    key = ", ".join(_quote(k) for k in TABLES[table])
    where, params = (" WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
    target = folder / f"{table}.{EXPORT_FORMATS[format]}"
    options = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER, FORCE_QUOTE *", "jsonl": "FORMAT json"}[format]
    conn.execute(
        f"COPY (SELECT {select} FROM {table}{where} ORDER BY {key}) TO {_literal(str(target))} ({options})", params
    )
    row = conn.execute(f"SELECT count(*) FROM {table}{where}", params).fetchone()
    return int(row[0]) if row else 0


def check_export(src: str | Path) -> None:
    """Refuse ``src`` unless it is a memlayer export this version can read (`ConfigError` says why)."""
    _read_manifest(_folder(src))


def _folder(src: object) -> Path:
    if not isinstance(src, (str, Path)) or not str(src).strip():
        raise ConfigError(f"give the folder of a memlayer export, got {src!r}")
    return Path(src)


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{str(folder)!r} is not a memlayer export (no {MANIFEST})")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if manifest.get("memlayer_export") != 1 or manifest.get("format") not in EXPORT_FORMATS:
        raise ConfigError(f"{str(path)!r} is not a memlayer export manifest this version can read")
    known = {name for name, _ in MIGRATIONS}
    newer = sorted(set(manifest.get("migrations", [])) - known)
    if newer:
        raise ConfigError(f"{str(folder)!r} was exported by a newer memlayer (migrations {newer}); upgrade first")
    for table in manifest.get("tables", {}):
        if table not in TABLES:
            raise ConfigError(f"{str(path)!r} lists an unknown table {table!r}")
        if not (folder / f"{table}.{EXPORT_FORMATS[manifest['format']]}").is_file():
            raise ConfigError(f"{str(folder)!r} lacks {table}.{EXPORT_FORMATS[manifest['format']]}")
    return manifest


def import_store(db: DuckDb, src: str | Path, *, progress: Progress | None = None) -> dict[str, int]:
    """Load an export into ``db`` in one transaction; return the rows added per table.

    Rows already stored with the same key and content are skipped (importing twice adds nothing).
    A row whose key is stored with different content refuses the whole import: nothing is written.
    """
    folder = _folder(src)
    manifest = _read_manifest(folder)
    ext = EXPORT_FORMATS[manifest["format"]]
    added: dict[str, int] = {}
    with db.transaction() as conn:
        for table in manifest["tables"]:
            added[table] = _import_table(conn, table, folder / f"{table}.{ext}", manifest["format"])
            if progress:
                progress(table)
    return added


def _import_table(conn: duckdb.DuckDBPyConnection, table: str, path: Path, format: str) -> int:
    columns = _columns(conn, table)
    types = dict(columns)
    if format == "parquet":
        source = f"read_parquet({_literal(str(path))})"
    elif format == "csv":
        # Every value was quoted on export, so an unquoted empty field is NULL and "" the empty string.
        source = f"read_csv({_literal(str(path))}, header = true, all_varchar = true, allow_quoted_nulls = false)"
    else:
        spec = ", ".join(f"{_literal(n)}: {_literal('VARCHAR' if kind == 'JSON' else kind)}" for n, kind in columns)
        source = f"read_json({_literal(str(path))}, format = 'newline_delimited', columns = {{{spec}}})"
    have = {str(row[0]) for row in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    missing = [n for n, _ in columns if n not in have]
    if missing:
        raise ConfigError(f"{str(path)!r} lacks the column(s) {missing} of {table}; nothing was imported")
    stage = f"_memlayer_import_{table}"
    casts = ", ".join(f"CAST({_quote(n)} AS {types[n]}) AS {_quote(n)}" for n, _ in columns)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT {casts} FROM {source}")
    try:
        return _merge(conn, table, stage, [n for n, _ in columns])
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {stage}")


def _merge(conn: duckdb.DuckDBPyConnection, table: str, stage: str, names: list[str]) -> int:
    key = TABLES[table]
    on = " AND ".join(f"s.{_quote(k)} = t.{_quote(k)}" for k in key)
    compared = [n for n in names if n not in key and n != "seq"]  # seq is renumbered, see below
    differs = " OR ".join(f"s.{_quote(n)} IS DISTINCT FROM t.{_quote(n)}" for n in compared) or "false"
    clash = conn.execute(
        f"SELECT {', '.join(f's.{_quote(k)}' for k in key)}, count(*) OVER () FROM {stage} s "
        f"JOIN {table} t ON {on} WHERE {differs} LIMIT 1"
    ).fetchone()
    if clash is not None:
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(key, clash, strict=False))
        raise ConfigError(
            f"{table}: {clash[-1]} imported row(s) clash with different rows already stored "
            f"(first: {shown}); nothing was imported"
        )
    new = f"NOT EXISTS (SELECT 1 FROM {table} t WHERE {on})"
    values = [_quote(n) for n in names]
    if table in _SEQUENCES:
        # Into an empty table the order numbers are kept as exported; otherwise they go after the
        # rows already stored, in their exported order.
        row = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()
        offset = int(row[0]) if row else 0
        values = [f"s.seq + {offset}" if n == "seq" else f"s.{_quote(n)}" for n in names]
    else:
        values = [f"s.{v}" for v in values]
    inserted = conn.execute(
        f"INSERT INTO {table} ({', '.join(_quote(n) for n in names)}) "
        f"SELECT {', '.join(values)} FROM {stage} s WHERE {new}"
    ).fetchone()
    if table in _SEQUENCES:
        _advance_sequence(conn, table, _SEQUENCES[table])
    return int(inserted[0]) if inserted else 0


def _advance_sequence(conn: duckdb.DuckDBPyConnection, table: str, sequence: str) -> None:
    """Move the sequence past the largest stored value, so new rows sort after the imported ones."""
    top = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()
    now = conn.execute(f"SELECT nextval('{sequence}')").fetchone()
    assert top is not None and now is not None
    highest, current = int(top[0]), int(now[0])
    if current < highest:
        conn.execute(f"SELECT max(nextval('{sequence}')) FROM range(?)", [highest - current])
