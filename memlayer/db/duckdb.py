"""``from memlayer.db.duckdb import DuckDb``: the path Agno's stores have (``agno.db.sqlite.SqliteDb``, ...)."""

from .._internal.db import DuckDb

__all__ = ["DuckDb"]
