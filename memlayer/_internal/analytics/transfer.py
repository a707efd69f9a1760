"""Export and import of whole stores.

An export is a folder: one file per table (Parquet, CSV or JSON lines) and ``manifest.json``.
`import_store` loads one back in a single transaction, keeping every version, event, LLM call,
session, run and message as it was; rows already present and identical are skipped, and a row
that clashes with a different stored row refuses the whole import.

Both work on a `DuckDb` and on a `PostgresDb`, so a store moves either way between them: an export
of a Postgres store reads one snapshot of the server (`memlayer._internal.analytics.snapshot`), and an import
into one writes in one server transaction (`memlayer._internal.analytics.pg_import`). The vectors
(``memory_embeddings``) are not exported from either: the store's embedder remakes them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import duckdb

from ..db import DuckDb, PostgresDb
from ..db.migrations import MIGRATIONS
from ..errors import ConfigError, StorageError
from .query import TABLES, Progress, first_line, quote_name, reader, sql_literal, table_columns

__all__ = [
    "EXPORT_FORMATS",
    "SEQUENCES",
    "check_export",
    "clash_error",
    "export_folder",
    "export_store",
    "import_into_duckdb",
]

ExportFormat = Literal["parquet", "csv", "jsonl"]
EXPORT_FORMATS: dict[str, str] = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}
MANIFEST = "manifest.json"
# Tables ordered by a sequence column: imported rows keep their order after the rows already stored.
SEQUENCES = {"memory_events": "memory_events_seq", "runs": "runs_seq", "messages": "messages_seq"}
# Columns a migration renamed: (migration, table, new name, old name). An export made before that
# migration holds the old name, and is read under the new one.
RENAMES = [
    ("m009_record_time_names", "memories", "recorded_from", "valid_from"),
    ("m009_record_time_names", "memories", "recorded_until", "valid_to"),
]


def export_store(
    db: DuckDb | PostgresDb,
    dest: str | Path,
    *,
    format: ExportFormat = "parquet",
    user_id: str | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Write every table (or one user's rows) to the folder ``dest``; return rows per table.

    All tables are read in one transaction, so the export is one consistent moment of the store (on
    Postgres a ``REPEATABLE READ, READ ONLY`` one, copied into an in-memory DuckDB and written from there).
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
    with reader(db) as cursor:
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        try:
            for table in TABLES:
                counts[table] = _export_table(cursor, table, folder, format, user_id)
                if progress:
                    progress(table)
            applied = cursor.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
            migrations = [row[0] for row in applied]
        except duckdb.Error as exc:
            raise StorageError(f"export to {str(folder)!r} failed: {first_line(exc)}") from exc
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
    columns = table_columns(conn, table)
    # JSON columns go out as their exact text, so a round trip does not reformat them.
    select = ", ".join(
        f"{quote_name(n)}::VARCHAR AS {quote_name(n)}" if kind == "JSON" and format != "parquet" else quote_name(n)
        for n, kind in columns
    )
    key = ", ".join(quote_name(k) for k in TABLES[table])
    where, params = (" WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
    target = folder / f"{table}.{EXPORT_FORMATS[format]}"
    options = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER, FORCE_QUOTE *", "jsonl": "FORMAT json"}[format]
    conn.execute(
        f"COPY (SELECT {select} FROM {table}{where} ORDER BY {key}) TO {sql_literal(str(target))} ({options})", params
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


def import_into_duckdb(db: DuckDb, src: str | Path, *, progress: Progress | None = None) -> dict[str, int]:
    """Load an export into a `DuckDb` in one transaction (`memlayer._internal.analytics.imports.import_store`)."""
    folder = _folder(src)
    manifest = _read_manifest(folder)
    ext = EXPORT_FORMATS[manifest["format"]]
    added: dict[str, int] = {}
    with db.transaction() as conn:
        for table in manifest["tables"]:
            names = _names_in_files(manifest, table)
            added[table] = _import_table(conn, table, folder / f"{table}.{ext}", manifest["format"], names)
            if progress:
                progress(table)
    return added


def _names_in_files(manifest: dict[str, Any], table: str) -> dict[str, str]:
    """The old name of each column of ``table`` that the export's memlayer had not yet renamed."""
    done = set(manifest.get("migrations", []))
    return {new: old for migration, renamed, new, old in RENAMES if renamed == table and migration not in done}


def _import_table(conn: duckdb.DuckDBPyConnection, table: str, path: Path, format: str, names: dict[str, str]) -> int:
    columns = table_columns(conn, table)
    file_columns = [(names.get(n, n), kind) for n, kind in columns]
    types = dict(columns)
    if format == "parquet":
        source = f"read_parquet({sql_literal(str(path))})"
    elif format == "csv":
        # Every value was quoted on export, so an unquoted empty field is NULL and "" the empty string.
        source = f"read_csv({sql_literal(str(path))}, header = true, all_varchar = true, allow_quoted_nulls = false)"
    else:
        spec = ", ".join(
            f"{sql_literal(n)}: {sql_literal('VARCHAR' if kind == 'JSON' else kind)}" for n, kind in file_columns
        )
        source = f"read_json({sql_literal(str(path))}, format = 'newline_delimited', columns = {{{spec}}})"
    have = {str(row[0]) for row in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    missing = [n for n, _ in file_columns if n not in have]
    if missing:
        raise ConfigError(f"{str(path)!r} lacks the column(s) {missing} of {table}; nothing was imported")
    stage = f"_memlayer_import_{table}"
    casts = ", ".join(f"CAST({quote_name(names.get(n, n))} AS {types[n]}) AS {quote_name(n)}" for n, _ in columns)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT {casts} FROM {source}")
    try:
        return _merge(conn, table, stage, [n for n, _ in columns])
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {stage}")


def _merge(conn: duckdb.DuckDBPyConnection, table: str, stage: str, names: list[str]) -> int:
    key = TABLES[table]
    on = " AND ".join(f"s.{quote_name(k)} = t.{quote_name(k)}" for k in key)
    compared = [n for n in names if n not in key and n != "seq"]  # seq is renumbered, see below
    differs = " OR ".join(f"s.{quote_name(n)} IS DISTINCT FROM t.{quote_name(n)}" for n in compared) or "false"
    clash = conn.execute(
        f"SELECT {', '.join(f's.{quote_name(k)}' for k in key)}, count(*) OVER () FROM {stage} s "
        f"JOIN {table} t ON {on} WHERE {differs} LIMIT 1"
    ).fetchone()
    if clash is not None:
        raise clash_error(table, key, clash)
    new = f"NOT EXISTS (SELECT 1 FROM {table} t WHERE {on})"
    values = [quote_name(n) for n in names]
    if table in SEQUENCES:
        # Into an empty table the order numbers are kept as exported; otherwise they go after the
        # rows already stored, in their exported order.
        row = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()
        offset = int(row[0]) if row else 0
        values = [f"s.seq + {offset}" if n == "seq" else f"s.{quote_name(n)}" for n in names]
    else:
        values = [f"s.{v}" for v in values]
    inserted = conn.execute(
        f"INSERT INTO {table} ({', '.join(quote_name(n) for n in names)}) "
        f"SELECT {', '.join(values)} FROM {stage} s WHERE {new}"
    ).fetchone()
    if table in SEQUENCES:
        _advance_sequence(conn, table, SEQUENCES[table])
    return int(inserted[0]) if inserted else 0


def clash_error(table: str, key: tuple[str, ...], clash: tuple[object, ...]) -> ConfigError:
    """The refusal of an import: ``clash`` holds the first clashing key's values, then the clash count."""
    shown = ", ".join(f"{k}={v!r}" for k, v in zip(key, clash, strict=False))
    return ConfigError(
        f"{table}: {clash[-1]} imported row(s) clash with different rows already stored "
        f"(first: {shown}); nothing was imported"
    )


def _advance_sequence(conn: duckdb.DuckDBPyConnection, table: str, sequence: str) -> None:
    """Move the sequence past the largest stored value, so new rows sort after the imported ones."""
    top = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()
    now = conn.execute(f"SELECT nextval('{sequence}')").fetchone()
    assert top is not None and now is not None
    highest, current = int(top[0]), int(now[0])
    if current < highest:
        conn.execute(f"SELECT max(nextval('{sequence}')) FROM range(?)", [highest - current])


def export_folder(src: object) -> Path:
    """``src`` as an export folder, checked (its manifest read), before any store is opened."""
    folder = _folder(src)
    _read_manifest(folder)
    return folder
