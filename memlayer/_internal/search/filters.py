"""`SearchFilters`: which of a user's memories a search may return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["SearchFilters"]


@dataclass(frozen=True)
class SearchFilters:
    """Which of the user's memories may be returned: by agent, any of ``topics``, and change time."""

    agent_id: str | None = None
    topics: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
