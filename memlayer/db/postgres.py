"""``from memlayer.db.postgres import PostgresDb``: Agno's path (``agno.db.postgres``) to `PostgresDb`."""

from .._internal.db import PostgresDb

__all__ = ["PostgresDb"]
