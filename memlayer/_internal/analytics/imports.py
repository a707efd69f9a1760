"""`import_store`: an export folder (`export_store`) loaded into either store, in one transaction."""

from __future__ import annotations

from pathlib import Path

from ..db import DuckDb, PostgresDb
from ..errors import ConfigError
from .pg_import import import_into_postgres
from .query import Progress
from .transfer import export_folder, import_into_duckdb

__all__ = ["import_store"]


def import_store(db: DuckDb | PostgresDb, src: str | Path, *, progress: Progress | None = None) -> dict[str, int]:
    """Load an export into ``db`` in one transaction; return the rows added per table.

    Rows already stored with the same key and content are skipped (importing twice adds nothing).
    A row whose key is stored with different content refuses the whole import: nothing is written.
    """
    folder = export_folder(src)
    if isinstance(db, PostgresDb):
        return import_into_postgres(db, folder, progress=progress)
    if not isinstance(db, DuckDb):
        raise ConfigError(f"db must be a DuckDb or a PostgresDb, got {db!r}")
    return import_into_duckdb(db, folder, progress=progress)
