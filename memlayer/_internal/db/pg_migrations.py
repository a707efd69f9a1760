"""The Postgres bodies of the named migrations, and how N processes apply them exactly once.

Each function here has the name of a migration in `memlayer._internal.db.migrations` and builds the same
tables, columns and views in Postgres's dialect: ``DOUBLE PRECISION`` for ``DOUBLE``, ``BYTEA`` for
``BLOB`` (the same float32 bytes), explicit ``GROUP BY`` lists, arrays for DuckDB's lists. Importing
this module checks that the two lists name the same migrations in the same order, so a migration
added for DuckDB alone fails every Postgres test at once.

Each migration runs in its own transaction holding ``pg_advisory_xact_lock``, and re-reads
``schema_migrations`` under the lock: processes that open a fresh database at once wait for each
other, and each migration runs exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, Protocol

from ..errors import StorageError
from .jobs import create_jobs_table
from .migrations import MIGRATIONS, fact_keys_and_times
from .migrations import m001_memory_core as m001_tables
from .migrations import m002_sessions as m002_tables
from .migrations import m004_retrieval as m004_tables
from .migrations import m007_input_embeddings as m007_columns
from .record_time import record_time_names
from .store import Connection
from .views import POSTGRES_VIEWS

__all__ = ["PG_MIGRATIONS", "apply_pg_migrations", "pg_migration"]

PgBody = Callable[[Connection], None]
# In order, filled by the decorators below as this module is imported, and never changed afterwards.
PG_MIGRATIONS: list[tuple[str, PgBody]] = []
# pg_advisory_xact_lock(int, int): a key space apart from the one-bigint one the user locks use.
_LOCK_KEYS = [0x6D656D6C, 1]  # "meml", migrations


def pg_migration(body: PgBody) -> PgBody:
    """Register ``body`` as the Postgres side of the next DuckDB migration, which must have its name."""
    position = len(PG_MIGRATIONS)
    expected = MIGRATIONS[position][0] if position < len(MIGRATIONS) else None
    if body.__name__ != expected:
        raise RuntimeError(f"Postgres migration {body.__name__} is out of step: migration {position + 1} is {expected}")
    PG_MIGRATIONS.append((body.__name__, body))
    return body


@pg_migration
def m001_memory_core(conn: Connection) -> None:
    m001_tables(conn)  # the tables, in SQL both stores accept


@pg_migration
def m002_sessions(conn: Connection) -> None:
    m002_tables(conn)  # the tables, in SQL both stores accept


@pg_migration
def m003_analytics_views(conn: Connection) -> None:
    # The same names and columns as DuckDB's. Postgres divides integers as integers and rounds only
    # numerics, hence the casts; DuckDB's list functions become array operators and a lateral unnest.
    for view in POSTGRES_VIEWS:
        conn.execute(view)


@pg_migration
def m004_retrieval(conn: Connection) -> None:
    m004_tables(conn)  # the tables, in SQL both stores accept


@pg_migration
def m005_user_revisions(conn: Connection) -> None:
    conn.execute("CREATE SEQUENCE user_revisions_seq")
    conn.execute("CREATE TABLE user_revisions (user_id VARCHAR PRIMARY KEY, revision BIGINT NOT NULL)")
    # One current version per user and fact, whatever the number of writing processes: the second of
    # two concurrent adds of "Likes tea" conflicts here and is skipped (memlayer._internal.db.changes).
    conn.execute(
        "CREATE UNIQUE INDEX memories_current_key_idx ON memories (user_id, memory_key) WHERE valid_to IS NULL"
    )


@pg_migration
def m006_embedding_lookup(conn: Connection) -> None:
    # Loading a user's index joins their memories to their vectors. Right after a bulk write the
    # planner's statistics still say "one row", and it loops over the user's vectors (by the user_id
    # index) for each memory: measured 5.1 s for a 5,000-memory user, 75 ms once ANALYZE had run. With
    # this index, which holds every column the join filters on, each memory's vector is one index
    # lookup whatever the statistics: 62 ms for a 10,000-memory user on a table of 20,000.
    conn.execute("CREATE INDEX memory_embeddings_key_idx ON memory_embeddings (user_id, model, memory_id, version)")


@pg_migration
def m007_input_embeddings(conn: Connection) -> None:
    m007_columns(conn)  # ADD COLUMN ... BYTEA: both stores accept it


@pg_migration
def m008_fact_keys_and_times(conn: Connection) -> None:
    fact_keys_and_times(conn)  # the columns and the inferred keys, in SQL both stores accept
    # One current memory per user and single-valued fact ("where they live"), whatever the number of
    # writing processes: the second of two concurrent "home" values conflicts here.
    conn.execute(
        "CREATE UNIQUE INDEX memories_current_fact_idx ON memories (user_id, fact_key)"
        " WHERE valid_to IS NULL AND fact_key IS NOT NULL"
    )


@pg_migration
def m009_record_time_names(conn: Connection) -> None:
    # Postgres renames a column under its indexes and views (the partial unique indexes keep their
    # ``WHERE recorded_until IS NULL``): only the views that show the names are made again.
    record_time_names(conn, "postgres")


@pg_migration
def m010_memory_jobs(conn: Connection) -> None:
    create_jobs_table(conn)  # the same table and view on both stores


if len(PG_MIGRATIONS) != len(MIGRATIONS):
    missing = [name for name, _ in MIGRATIONS[len(PG_MIGRATIONS) :]]
    raise RuntimeError(f"migrations {missing} have no Postgres body in memlayer._internal.db.pg_migrations")


def applied_pg_migrations(conn: Connection) -> list[str]:
    """The migrations recorded in this database (none for a new one); reads only."""
    # A scan of the catalog, not to_regclass(): that answers from this backend's cache, which can still
    # say "no such table" just after another process created it and released the lock.
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
        " AND tablename = 'schema_migrations')"
    ).fetchone()
    if row is None or not row[0]:
        return []
    return [str(r[0]) for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]


class Transactional(Connection, Protocol):
    """A Postgres connection that opens its own transactions (`memlayer._internal.db.postgres.PgConnection`)."""

    def transaction(self, *, force_rollback: bool = ...) -> AbstractContextManager[Any]: ...


def apply_pg_migrations(
    conn: Transactional,
    migrations: list[tuple[str, PgBody]] | None = None,
    *,
    allow_foreign: bool = False,
) -> list[str]:
    """Run the migrations this database has not seen, each in its own locked transaction; return those run."""
    migrations = PG_MIGRATIONS if migrations is None else migrations
    if set(applied_pg_migrations(conn)) == {name for name, _ in migrations}:
        return []  # the usual open of a current database: no lock, no transaction
    ran = []
    for name, body in migrations:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(?, ?)", _LOCK_KEYS).fetchall()
            done = set(applied_pg_migrations(conn))  # under the lock: another process may just have run it
            _check_known(done, {n for n, _ in migrations})
            if not done and not allow_foreign:
                _refuse_foreign(conn)
            if name in done:
                continue
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
            )
            body(conn)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?)", [name, datetime.now(timezone.utc).replace(tzinfo=None)]
            )
        ran.append(name)
    return ran


def _check_known(done: set[str], known: set[str]) -> None:
    unknown = done - known
    if unknown:
        raise StorageError(
            f"the database was written by a newer memlayer (migrations {sorted(unknown)} are unknown here); "
            "upgrade memlayer to open it"
        )


def _refuse_foreign(conn: Connection) -> None:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
    ).fetchall()
    if rows:
        names = ", ".join(str(row[0]) for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise StorageError(
            f"this Postgres schema is not memlayer's (it holds {names} and no schema_migrations); nothing was "
            "changed. Give memlayer its own database or schema, or pass PostgresDb(..., allow_foreign=True)"
        )
