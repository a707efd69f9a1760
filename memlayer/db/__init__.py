"""The DuckDB store: the connection, the migrations that build its schema, and the SQL over it."""

from .database import DuckDb

__all__ = ["DuckDb"]
