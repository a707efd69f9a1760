"""The time and the new ids memlayer stamps on what it stores, from one place.

Both reach the model: a conversation is sent with its times, and a tool result with memory ids. A
replayed cassette must see the same request bodies as when it was recorded, so the cassette machinery
pins both to a sequence that starts at the recording's time and repeats exactly: each call to `now`
moves one millisecond on, and `new_id` counts. Outside a cassette they are the real clock and uuid4.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["aware", "naive", "naive_or_none", "new_id", "now", "pinned"]

_NAMESPACE = uuid.UUID("5b0f8a52-3c3e-4d8e-9a51-6d2f1d1f6a10")


@dataclass
class _Sequence:
    start: datetime
    seed: str
    ticks: int = 0
    ids: int = 0


_lock = threading.Lock()
_pinned: _Sequence | None = None


def now() -> datetime:
    """The current UTC time (timezone-aware)."""
    with _lock:
        if _pinned is None:
            return datetime.now(timezone.utc)
        _pinned.ticks += 1
        return _pinned.start + timedelta(milliseconds=_pinned.ticks)


def new_id() -> str:
    """A new unique id, as a UUID string."""
    with _lock:
        if _pinned is None:
            return str(uuid.uuid4())
        _pinned.ids += 1
        return str(uuid.uuid5(_NAMESPACE, f"{_pinned.seed}:{_pinned.ids}"))


@contextmanager
def pinned(start: datetime, seed: str) -> Iterator[None]:
    """Within the block, `now` and `new_id` repeat the same sequence every time."""
    global _pinned
    with _lock:
        previous, _pinned = _pinned, _Sequence(start.astimezone(timezone.utc), seed)
    try:
        yield
    finally:
        with _lock:
            _pinned = previous


def naive(ts: datetime) -> datetime:
    """UTC without tzinfo, as stored (DuckDB's Python client needs pytz for TIMESTAMPTZ)."""
    return ts.astimezone(timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


def naive_or_none(ts: datetime | None) -> datetime | None:
    """`naive`, for a time that may be unknown."""
    return None if ts is None else naive(ts)


def aware(ts: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as a timezone-aware one."""
    return None if ts is None else ts.replace(tzinfo=timezone.utc)
