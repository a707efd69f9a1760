"""Record time under names nobody reads as event time: the body of migration m009 on both stores."""

from __future__ import annotations

from .store import Connection
from .views import RECORD_TIME_DROPPED, RECORD_TIME_VIEWS, TIMELINE_VIEWS

__all__ = ["record_time_names"]


def record_time_names(conn: Connection, store: str) -> None:
    """Record time under names nobody reads as event time (both stores run this body).

    ``valid_from`` / ``valid_to`` said when memlayer held a version, beside ``held_from`` / ``held_until``
    (when the fact held in the user's life): they become ``recorded_from`` / ``recorded_until``, in place,
    so a store made by an older memlayer opens with its rows as they were. The views that name them are
    made again (`memlayer.db.views.RECORD_TIME_VIEWS`), and ``memory_timeline`` is added.
    """
    for view in RECORD_TIME_DROPPED[store]:
        conn.execute(f"DROP VIEW {view}")
    conn.execute("ALTER TABLE memories RENAME COLUMN valid_from TO recorded_from")
    conn.execute("ALTER TABLE memories RENAME COLUMN valid_to TO recorded_until")
    for view in RECORD_TIME_VIEWS[store] + TIMELINE_VIEWS:
        conn.execute(view)
