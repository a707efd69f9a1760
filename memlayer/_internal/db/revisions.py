"""Per-user write order and revision: how one process notices another's writes of a user's memories.

``user_revisions`` holds one row per user with memories: a token from a global sequence, replaced in
the same transaction by every write of that user's memories (`ChangeSet.write`, `erase_user`). A
search index loaded in one process remembers the token it loaded at and reloads when
`user_revision` returns another one. The token comes from a sequence, not ``revision + 1``, so an
erased user's row can be deleted (nothing about them stays) without a later write ever reissuing a
token some index already holds.

On Postgres, `lock_user` takes a transaction-scoped advisory lock on the user, so two processes
writing one user's memories commit one after the other: each sees the other's committed rows, and
the events' ``seq`` follows commit order per user.

DuckDB has one writing process, which serialises its transactions and updates its own search index
as each commits, so there is no other process to notice anything: neither the lock nor the revision is
written there, and `user_revision` stays 0. The upsert cost DuckDB 1.05 ms of a 5.7 ms commit
(benchmarks/store.py), against 0.05 ms on Postgres. The table exists in both, from one migration.
"""

from __future__ import annotations

from .store import Connection, dialect

__all__ = ["drop_revision", "lock_user", "touch_user", "user_revision"]


def lock_user(conn: Connection, user_id: str) -> None:
    """Wait for, and hold until commit, the right to write ``user_id``'s memories (Postgres only)."""
    if dialect(conn) == "postgres":
        # The one-bigint key space; the migrations lock uses the two-int one, so they never collide.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", [user_id]).fetchall()


def touch_user(conn: Connection, user_id: str) -> tuple[int, int] | None:
    """Give the user a new revision inside the caller's write transaction, under `lock_user`; returns
    (the revision before, the new one), or None on DuckDB.

    A process whose loaded index was at the revision before has missed no other write, and moves its
    index on to the new one; any other revision means another process wrote meanwhile (reload).
    """
    if dialect(conn) == "duckdb":
        return None
    before = user_revision(conn, user_id)  # stable: the caller holds the user's lock
    row = conn.execute(
        "INSERT INTO user_revisions (user_id, revision) VALUES (?, nextval('user_revisions_seq'))"
        " ON CONFLICT (user_id) DO UPDATE SET revision = excluded.revision RETURNING revision",
        [user_id],
    ).fetchone()
    assert row is not None
    return before, int(row[0])


def drop_revision(conn: Connection, user_id: str) -> None:
    """Forget the user's row (an erasure): `user_revision` then returns 0, which no write ever issues."""
    conn.execute("DELETE FROM user_revisions WHERE user_id = ?", [user_id])


def user_revision(conn: Connection, user_id: str) -> int:
    """The user's current revision: 0 for a user with no write since the store began (or erased),
    and always 0 on DuckDB, whose one writing process needs none.

    Compare it for equality only: it changes on every write of the user's memories, and grows.
    """
    row = conn.execute("SELECT revision FROM user_revisions WHERE user_id = ?", [user_id]).fetchone()
    return 0 if row is None else int(row[0])
