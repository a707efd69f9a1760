"""``from memlayer.models.message import Message``: Agno's path (``agno.models.message``) to `Message`."""

from .._internal.records import Message

__all__ = ["Message"]
