"""``from memlayer.db.schemas import UserMemory``: Agno's path (``agno.db.schemas``) to `UserMemory`."""

from .._internal.records import UserMemory

__all__ = ["UserMemory"]
