"""``from memlayer._internal.db import DuckDb, PostgresDb``: the stores, at Agno's path (``agno.db``)."""

from .._internal.db import DuckDb, PostgresDb, Store

__all__ = ["DuckDb", "PostgresDb", "Store"]
