"""``from memlayer.models.message import Message``: Agno's path (``agno.models.message``) to `Message`."""

from ..records import Message

__all__ = ["Message"]
