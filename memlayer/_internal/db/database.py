"""`DuckDb`: the `Store` on one DuckDB file (or ``:memory:``) holding memories, their history and LLM usage.

DuckDB lets one process write a file at a time. Within a process every memlayer object that shares a
`DuckDb` shares its one connection, and a lock serialises its use, so threads never interleave two
transactions. A second process that opens the same file gets `DatabaseLockedError`, which says who
holds it and what to do.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ..errors import ConfigError, DatabaseLockedError, StorageError
from .agno_memories import AgnoMemoryMethods
from .migrations import apply_migrations
from .readonly import NO_EXTENSIONS, read_only_transaction

__all__ = ["DuckDb"]

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


class DuckDb(AgnoMemoryMethods):
    """The store. ``DuckDb(db_file="tmp/agents.duckdb")``, or ``DuckDb()`` for an in-memory one."""

    dialect = "duckdb"

    def __init__(
        self, db_file: str | Path = ":memory:", *, read_only: bool = False, allow_foreign: bool = False
    ) -> None:
        """``allow_foreign``: add memlayer's tables to a DuckDB file that already holds other tables."""
        self.db_file = _check_path(db_file)
        self.read_only = read_only
        self.allow_foreign = allow_foreign
        self._lock = threading.RLock()
        self._closed = False
        self._conn: duckdb.DuckDBPyConnection | None = self._connect()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self.db_file != ":memory:" and not self.read_only:
            try:
                Path(self.db_file).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the folder of {self.db_file!r}: {exc.strerror or exc}") from exc
            _drop_if_empty(Path(self.db_file))
        try:
            conn = duckdb.connect(self.db_file, read_only=self.read_only)
        except duckdb.IOException as exc:
            raise _locked_or_storage_error(self.db_file, exc) from exc
        except duckdb.Error as exc:
            raise StorageError(f"cannot open DuckDB file {self.db_file!r}: {exc}") from exc
        try:
            for name, value in NO_EXTENSIONS.items():  # memlayer needs none; no query may fetch one
                conn.execute(f"SET {name} = {str(value).lower()}")
        except duckdb.Error as exc:
            conn.close()
            raise StorageError(f"cannot configure DuckDB file {self.db_file!r}: {exc}") from exc
        if not self.read_only:
            try:
                apply_migrations(conn, allow_foreign=self.allow_foreign)
            except duckdb.Error as exc:
                conn.close()
                raise StorageError(f"migrating {self.db_file!r} failed, nothing was changed: {exc}") from exc
            except BaseException:
                conn.close()
                raise
        return conn

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction: everything inside commits together or not at all."""
        if self.read_only:
            raise StorageError(f"{self.db_file!r} was opened read_only; it cannot be written")
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN TRANSACTION")
            committing = False
            try:
                yield conn
                committing = True
                conn.execute("COMMIT")
            except duckdb.Error as exc:
                _rollback(conn)
                if committing:
                    self._discard(conn)
                raise StorageError(_write_failure(self.db_file, exc)) from exc
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection, for reads, held for the block so no write interleaves."""
        with self._lock:
            try:
                yield self._connection()
            except duckdb.Error as exc:
                raise StorageError(f"read from {self.db_file!r} failed: {exc}") from exc

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one read-only statement over the tables and views and return its rows (`memlayer.query`'s rules).

        A write is refused: every change goes through `MemoryManager`, so the event log and the search
        index never miss one.
        """
        if params is not None and not isinstance(params, (list, tuple, dict)):
            raise ConfigError(f"params must be a list (or a dict for named parameters), got {params!r}")
        with self.reading() as conn:
            cursor = conn.cursor()
        try:
            with read_only_transaction(cursor, query) as statement:
                return cursor.execute(statement, params or []).fetchall()
        finally:
            cursor.close()

    def rewrite(self) -> None:
        """Copy the database into a fresh file and swap it in, so deleted rows leave no bytes behind.

        DuckDB keeps deleted rows in their blocks until the blocks are reused; `MemoryManager.erase_user`
        calls this so an erased user's texts are gone from the file and its WAL. It costs a full copy:
        time and free disk space in proportion to the whole file, with the lock held (other threads wait).
        An in-memory database has no file and is left as it is.
        """
        if self.db_file == ":memory:" or self.read_only:
            return
        with self._lock:
            conn = self._connection()
            fresh = Path(self.db_file + ".rewrite")
            try:
                _remove(fresh, Path(f"{fresh}.wal"))
                conn.execute("CHECKPOINT")
                name = conn.execute("SELECT current_database()").fetchall()[0][0]
                conn.execute(f"ATTACH {_literal(str(fresh))} AS memlayer_rewrite")
                conn.execute(f'COPY FROM DATABASE "{name}" TO memlayer_rewrite')
                conn.execute("DETACH memlayer_rewrite")
            except (duckdb.Error, OSError) as exc:
                _remove(fresh, Path(f"{fresh}.wal"))
                raise StorageError(f"rewriting {self.db_file!r} failed; the file is unchanged: {exc}") from exc
            conn.close()
            self._conn = None
            try:
                os.replace(fresh, self.db_file)
                _remove(Path(self.db_file + ".wal"))
            finally:
                self._conn = self._connect()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _discard(self, conn: duckdb.DuckDBPyConnection) -> None:
        """After a COMMIT that failed (a full disk): drop the connection, so the next call reopens the file
        and sees only what was committed. DuckDB 1.5.0 kept the failed write's text in memory and joined it
        to the next one. An in-memory database would be lost, so it is kept."""
        if self.db_file == ":memory:":
            return
        try:
            conn.close()
        except duckdb.Error:
            pass  # its checkpoint may not fit either: the file and its WAL hold what was committed
        self._conn = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            if self._closed:
                raise StorageError(f"DuckDb({self.db_file!r}) is closed")
            self._conn = self._connect()  # after `_discard`: reopened, or the reason it cannot be
        return self._conn

    def __repr__(self) -> str:
        return f"DuckDb(db_file={self.db_file!r})"


def _check_path(db_file: object) -> str:
    if not isinstance(db_file, (str, os.PathLike)):
        raise ConfigError(f"db_file must be a path or ':memory:', got {db_file!r}")
    path = os.fspath(db_file)
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise ConfigError(f"db_file must be a path or ':memory:', got {db_file!r}")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"db_file is not a valid path: {db_file!r}") from None
    return path


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _drop_if_empty(path: Path) -> None:
    """An empty file (what ``tempfile.NamedTemporaryFile`` leaves, as Agno's test fixtures pass it) holds no
    data, but DuckDB refuses it as "not a valid DuckDB database file": it is removed so DuckDB starts it."""
    try:
        if path.is_file() and path.stat().st_size == 0:
            path.unlink()
    except OSError as exc:
        raise StorageError(f"cannot replace the empty file {str(path)!r}: {exc.strerror or exc}") from exc


def _rollback(conn: duckdb.DuckDBPyConnection) -> None:
    # A COMMIT that failed (a full disk) has already ended the transaction: ROLLBACK would then fail
    # with "no transaction is active" and hide the error that matters.
    try:
        conn.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass


def _not_writable(text: str) -> bool:
    return "Read-only file system" in text or "Permission denied" in text


def _write_failure(db_file: str, exc: duckdb.Error) -> str:
    text = str(exc)
    if "No space left on device" in text or "File too large" in text or "could not write" in text.lower():
        return (
            f"write to {db_file!r} failed, the disk is full (or a file size limit was reached), nothing was "
            f"written: free space, then retry; everything committed before is kept ({text})"
        )
    if _not_writable(text):
        return (
            f"write to {db_file!r} failed, the file or its folder is not writable, nothing was written: "
            f"fix the permissions or open it with DuckDb(..., read_only=True) ({text})"
        )
    return f"write to {db_file!r} failed and was rolled back: {text}"


def _locked_or_storage_error(db_file: str, exc: duckdb.IOException) -> StorageError:
    holder = _LOCK_HOLDER.search(str(exc))
    if holder is None and _not_writable(str(exc)):
        return StorageError(
            f"cannot open DuckDB file {db_file!r} for writing: the file or its folder is not writable "
            f"(a read-only file system or permissions); open it with DuckDb(..., read_only=True) to read, "
            f"or fix the permissions ({exc})"
        )
    if holder is None:
        return StorageError(f"cannot open DuckDB file {db_file!r}: {exc}")
    return DatabaseLockedError(
        f"DuckDB file {db_file!r} is locked by another process (PID {holder['pid']}, "
        f"{holder['exe']}). DuckDB allows one process per file: stop that process, share one "
        "DuckDb object within a process, or give each process its own db_file."
    )
