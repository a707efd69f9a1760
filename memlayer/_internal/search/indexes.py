"""`SearchIndex`: the loaded `UserIndex` of each recently searched user of one store, for one embedder.

The store owns its indexes (`Store.attached`), so every manager on one store shares them and a
write through any of them updates the index in the same lock as its commit. On Postgres other
processes write too: each user's index remembers the user's revision it is at (`db.revisions`), a
search first reads the current one (one indexed row, about 0.1 ms) and reloads the user when another
process has written since; a local write that finds the index at the revision before it moves the
index on in place.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..db.revisions import user_revision
from ..db.store import Connection, Store, dialect
from ..db.vectors import check_embedder, load_user_rows
from ..records import Memory

if TYPE_CHECKING:
    from .index import UserIndex

__all__ = ["SearchIndex", "index_for", "indexes_of", "load_one_off"]


class SearchIndex:
    """Loaded user indexes, bounded by ``max_rows`` (least recently used users are dropped first, to be
    loaded again): a loaded row takes about 2.4 KB with 384-d vectors (measured), so 500k rows hold
    about 1.2 GB.
    """

    def __init__(self, model: str | None, *, max_rows: int = 500_000) -> None:
        self.model = model
        self.max_rows = max_rows
        self._users: OrderedDict[str, UserIndex] = OrderedDict()
        self._revisions: dict[str, int] = {}
        self._lock = threading.RLock()
        self.loads = 0  # how many times a user was loaded from the store (for tests and benchmarks)

    def holds(self, user_id: str) -> bool:
        """Whether the user's index is loaded (current or not)."""
        with self._lock:
            return user_id in self._users

    def user(self, conn: Connection, user_id: str) -> UserIndex:
        """The user's index, current; call inside the caller's ``db.reading()`` so no write interleaves."""
        from .index import UserIndex  # here: it brings numpy (60-110 ms), which a new user's first words skip

        shared = dialect(conn) == "postgres"  # other processes may write: compare revisions
        revision = user_revision(conn, user_id) if shared else 0
        with self._lock:
            index = self._users.get(user_id)
            if index is not None and self._revisions.get(user_id) == revision:
                self._users.move_to_end(user_id)
                return index
            if self.model is not None:
                check_embedder(conn, self.model)
            index = UserIndex(user_id, load_user_rows(conn, user_id, self.model))
            self.loads += 1
            self._users[user_id], self._revisions[user_id] = index, revision
            self._users.move_to_end(user_id)
            self._evict()
            return index

    def _evict(self) -> None:
        total = sum(len(u) for u in self._users.values())
        while total > self.max_rows and len(self._users) > 1:
            user_id, dropped = self._users.popitem(last=False)
            self._revisions.pop(user_id, None)
            total -= len(dropped)

    def apply(
        self,
        user_id: str,
        touched: Sequence[str],
        current: Sequence[Memory],
        vectors: dict[tuple[str, int], Any],
        revisions: tuple[int, int] | None = None,
        *,
        input_vectors: dict[tuple[str, int], Any] | None = None,
    ) -> None:
        """A committed change of this process; ``revisions`` (before, after) when the store has them."""
        with self._lock:
            index = self._users.get(user_id)
            if index is None:
                return
            if revisions is not None and self._revisions.get(user_id) != revisions[0]:
                self.forget(user_id)  # another process wrote since the load: reload on next use
                return
            embedded = self.model is not None
            index.apply(touched, current, vectors if embedded else {}, input_vectors if embedded else {})
            if revisions is not None:
                self._revisions[user_id] = revisions[1]
            if index.alive_count * 2 < len(index):  # mostly retired rows: reload on next use
                self.forget(user_id)

    def forget(self, user_id: str | None = None) -> None:
        with self._lock:
            if user_id is None:
                self._users.clear()
                self._revisions.clear()
            else:
                self._users.pop(user_id, None)
                self._revisions.pop(user_id, None)


def index_for(db: Store, model: str | None) -> SearchIndex:
    """The one `SearchIndex` of ``db`` for embedder ``model``, shared by every manager on that db."""
    index: SearchIndex = db.attached(("search_index", model), lambda: SearchIndex(model))
    return index


def indexes_of(db: Store) -> list[SearchIndex]:
    return [item for item in db.attachments() if isinstance(item, SearchIndex)]


def load_one_off(
    conn: Connection,
    user_id: str,
    model: str | None,
    *,
    as_of: datetime | None = None,
    valid_at: datetime | None = None,
    held_between: tuple[datetime, datetime] | None = None,
) -> UserIndex:
    """A one-off index of the memories the user had at ``as_of``, or that held at ``valid_at`` or during
    ``held_between`` (history and past facts are not cached: `memlayer._internal.db.vectors.load_user_rows`)."""
    from .index import UserIndex

    if model is not None:
        check_embedder(conn, model)
    rows = load_user_rows(conn, user_id, model, as_of=as_of, valid_at=valid_at, held_between=held_between)
    return UserIndex(user_id, rows)
