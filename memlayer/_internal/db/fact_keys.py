"""One current value of a single-valued fact (`memlayer._internal.facts`): the key a version holds, and DuckDB's check.

Postgres keeps it with a partial unique index (``memories_current_fact_idx``, migration m008); DuckDB has
no partial index and one writing process, so a change set checks it in the same write, after closing the
versions it replaces (`refuse_second_values`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import StorageError
from ..facts import fact_key
from ..records import Memory
from .store import Connection

__all__ = ["current_fact_key", "refuse_second_values"]


def current_fact_key(memory: Memory) -> str | None:
    """The unique key a version holds: only a single-valued fact that still holds in the user's life
    (a past value, "lived in Berlin until 2019", leaves the slot to the present one)."""
    if memory.held_until is not None and memory.held_until <= (memory.learned_at or memory.updated_at):
        return None
    return fact_key(memory.subject, memory.attribute)


def refuse_second_values(conn: Connection, user_id: str, versions: Sequence[Memory]) -> None:
    """Raise `StorageError` if a current memory of the user holds a key ``versions`` write, or two of them do."""
    keys = [k for k in (current_fact_key(m) for m in versions) if k is not None]
    if not keys:
        return
    marks = ", ".join("?" * len(keys))
    held = conn.execute(
        f"SELECT fact_key FROM memories WHERE user_id = ? AND recorded_until IS NULL AND fact_key IN ({marks})",
        [user_id, *keys],
    ).fetchall()
    clashes = sorted({row[0] for row in held} | {k for k in keys if keys.count(k) > 1})
    if clashes:
        raise StorageError(
            f"the user already has a current memory for {clashes} (one value at a time: update it instead); "
            "nothing was written"
        )
