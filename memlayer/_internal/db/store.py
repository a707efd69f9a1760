"""`Store`: what every memlayer database offers, and `Connection`: what its blocks yield.

Two stores implement it: `DuckDb` (one file, one writing process) and `PostgresDb` (one server, many
processes on many hosts). Everything above the store calls only ``transaction()`` and ``reading()`` and
hands the connection they yield to the SQL functions of this package, which are written once, with
``?`` placeholders, in the SQL both databases accept. Where they differ (a setting, a row count, a
conflict clause), the function asks `dialect` and says why in a comment.

DuckDB's own connection is yielded as it is: wrapping it would cost every statement a Python call,
and `memlayer._internal.analytics` needs its ``cursor()``. Postgres's is a `postgres.PgConnection`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, TypeVar

import duckdb

__all__ = ["Connection", "Cursor", "Dialect", "Store", "changed_rows", "dialect"]

Dialect = Literal["duckdb", "postgres"]
_S = TypeVar("_S", bound="Store")
_T = TypeVar("_T")
_ATTACH_LOCK = threading.Lock()


class Cursor(Protocol):
    """The result of `Connection.execute`."""

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...


class Connection(Protocol):
    """What ``transaction()`` and ``reading()`` yield: ``?`` placeholders, parameters as a list."""

    def execute(self, query: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, query: str, parameters: Any, /) -> object: ...


def dialect(conn: Connection) -> Dialect:
    """Which database ``conn`` talks to, for the few statements that differ."""
    return "duckdb" if isinstance(conn, duckdb.DuckDBPyConnection) else "postgres"


def changed_rows(conn: Connection, query: str, parameters: list[Any]) -> int:
    """Run an UPDATE or DELETE and return how many rows it changed.

    DuckDB returns the count as the statement's one row; psycopg returns no row and sets ``rowcount``.
    """
    cursor = conn.execute(query, parameters)
    if dialect(conn) == "duckdb":
        row = cursor.fetchone()
        return int(row[0]) if row is not None else 0
    return int(getattr(cursor, "rowcount", -1))


class Store(ABC):
    """A memlayer database. Use it as a context manager, or call `close`."""

    dialect: Dialect

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction: everything inside commits together or not at all (`StorageError` if not)."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Connection]:
        """A connection for reads, held for the block."""

    @abstractmethod
    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one read-only statement and return its rows; a write is refused with `ConfigError`."""

    @abstractmethod
    def rewrite(self) -> None:
        """Make deleted rows leave the storage (after an erasure); each store says how far it gets."""

    def attached(self, key: Hashable, make: Callable[[], _T]) -> _T:
        """The object kept under ``key`` for as long as this store lives, made on first use.

        What must be shared by everything on one store, and by nothing else, lives here: each
        embedder's loaded search index (`memlayer._internal.search.index.index_for`), shared by every manager
        on the store. The store owns them; nothing is keyed by the store in a module global.
        """
        with _ATTACH_LOCK:
            slots: dict[Hashable, Any] = self.__dict__.setdefault("_attached", {})
            if key not in slots:
                slots[key] = make()
            return slots[key]  # type: ignore[no-any-return]

    def attachments(self) -> list[Any]:
        """Everything `attached` so far."""
        with _ATTACH_LOCK:
            return list(self.__dict__.get("_attached", {}).values())

    @abstractmethod
    def close(self) -> None:
        """Release the connection(s); the store cannot be used afterwards."""

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
