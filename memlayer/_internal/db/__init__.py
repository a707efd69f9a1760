"""The stores: `DuckDb` (one file) and `PostgresDb` (one server, many processes), both a `Store`; the
migrations that build their schema, and the SQL over it, written once for both."""

from .database import DuckDb
from .postgres import PostgresDb
from .store import Connection, Store

__all__ = ["Connection", "DuckDb", "PostgresDb", "Store"]
