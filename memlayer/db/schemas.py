"""``from memlayer.db.schemas import UserMemory``: Agno's path (``agno.db.schemas``) to `UserMemory`."""

from ..records import UserMemory

__all__ = ["UserMemory"]
