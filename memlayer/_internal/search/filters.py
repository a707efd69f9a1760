"""`SearchFilters`: which of a user's memories a search may return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["SearchFilters"]


@dataclass(frozen=True)
class SearchFilters:
    """Which of the user's memories may be returned: by agent, any of ``topics``, and change time
    (``since`` / ``until``, record time); by event time, what held at ``valid_at`` or at some time
    during ``held_between`` (``[start, end)``), applied as the user's memories are read
    (`memlayer._internal.search.indexes.load_one_off`)."""

    agent_id: str | None = None
    topics: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    valid_at: datetime | None = None
    held_between: tuple[datetime, datetime] | None = None

    @property
    def by_event_time(self) -> bool:
        return self.valid_at is not None or self.held_between is not None
