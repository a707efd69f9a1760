"""The schema, built by an append-only list of named migrations.

The tables (m001, m002, m004) are written in the SQL both stores accept (``DOUBLE PRECISION`` and
``BYTEA`` are DuckDB's DOUBLE and BLOB), and `memlayer._internal.db.pg_migrations` runs the same functions on
Postgres; only the views and indexes that differ have a Postgres body of their own.

Each migration runs once, in its own transaction, and is recorded in ``schema_migrations``. A
shipped migration is never edited: a schema change is a new function at the end of this module,
registered by `migration` under its own name (the name is written once, as the function's). The
Postgres body of each one lives under the same name in `memlayer._internal.db.pg_migrations`, which checks
at import that both lists name the same migrations in the same order.
Timestamps are UTC, stored as ``TIMESTAMP`` (DuckDB's Python client needs pytz for ``TIMESTAMPTZ``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import duckdb

from ..errors import StorageError
from .jobs import create_jobs_table
from .record_time import record_time_names
from .store import Connection
from .views import DUCKDB_VIEWS, KEYED_VIEWS

__all__ = [
    "MIGRATIONS",
    "applied_migrations",
    "apply_migrations",
    "fact_keys_and_times",
    "migration",
]

Body = Callable[[duckdb.DuckDBPyConnection], None]
Migration = tuple[str, Body]
B = TypeVar("B", bound=Callable[[Any], None])

# The DuckDB migrations in order, filled once by the `migration` decorators below as this module is
# imported, and never changed afterwards.
MIGRATIONS: list[Migration] = []


def migration(body: B) -> B:
    """Register ``body`` as the next migration, named after the function."""
    MIGRATIONS.append((body.__name__, body))
    return body


@migration
def m001_memory_core(conn: Connection) -> None:
    # memories: one row per version; the current version has valid_to IS NULL.
    conn.execute(
        """
        CREATE TABLE memories (
            memory_id  VARCHAR   NOT NULL,
            version    INTEGER   NOT NULL,
            user_id    VARCHAR   NOT NULL,
            agent_id   VARCHAR,
            session_id VARCHAR,
            memory     VARCHAR   NOT NULL,
            memory_key VARCHAR   NOT NULL, -- lower-cased, spaces folded: finds duplicates without a scan of lower()
            topics     VARCHAR[] NOT NULL,
            input      VARCHAR,
            created_at TIMESTAMP NOT NULL,
            valid_from TIMESTAMP NOT NULL,
            valid_to   TIMESTAMP,
            PRIMARY KEY (memory_id, version)
        )
        """
    )
    conn.execute("CREATE INDEX memories_user_idx ON memories (user_id)")
    # memory_events: append-only; tokens and cost live on the llm_calls row it points to, so a
    # call that made three changes is not counted three times.
    conn.execute("CREATE SEQUENCE memory_events_seq")
    conn.execute(
        """
        CREATE TABLE memory_events (
            event_id   VARCHAR PRIMARY KEY,
            seq        BIGINT  NOT NULL DEFAULT nextval('memory_events_seq'),
            memory_id  VARCHAR NOT NULL,
            user_id    VARCHAR NOT NULL,
            operation  VARCHAR NOT NULL CHECK (operation IN ('add', 'update', 'delete')),
            old_memory VARCHAR,
            new_memory VARCHAR,
            old_topics VARCHAR[],
            new_topics VARCHAR[],
            reason     VARCHAR,
            source     VARCHAR NOT NULL,
            agent_id   VARCHAR,
            session_id VARCHAR,
            call_id    VARCHAR,
            model      VARCHAR,
            created_at TIMESTAMP NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX memory_events_user_idx ON memory_events (user_id)")
    conn.execute(
        """
        CREATE TABLE llm_calls (
            call_id        VARCHAR PRIMARY KEY,
            purpose        VARCHAR NOT NULL,
            model          VARCHAR NOT NULL,
            prompt_version VARCHAR,
            user_id        VARCHAR,
            agent_id       VARCHAR,
            session_id     VARCHAR,
            input_tokens   INTEGER NOT NULL,
            output_tokens  INTEGER NOT NULL,
            cost_usd       DOUBLE PRECISION,
            latency_ms     DOUBLE PRECISION NOT NULL,
            attempts       INTEGER NOT NULL,
            status         VARCHAR NOT NULL CHECK (status IN ('ok', 'error')),
            error          VARCHAR,
            created_at     TIMESTAMP NOT NULL
        )
        """
    )
    conn.execute(
        """
        CREATE VIEW current_memories AS
        SELECT memory_id, user_id, agent_id, session_id, memory, topics, input, version,
               created_at, valid_from AS updated_at
        FROM memories WHERE valid_to IS NULL
        """
    )


@migration
def m002_sessions(conn: Connection) -> None:
    # Storage, not memory: the chat history of each session, one row per run and per message.
    # A session belongs to one user; memlayer refuses to append another user's run to it.
    conn.execute(
        """
        CREATE TABLE sessions (
            session_id VARCHAR   PRIMARY KEY,
            user_id    VARCHAR   NOT NULL,
            agent_id   VARCHAR,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX sessions_user_idx ON sessions (user_id)")
    conn.execute("CREATE SEQUENCE runs_seq")
    conn.execute(
        """
        CREATE TABLE runs (
            run_id        VARCHAR   PRIMARY KEY,
            seq           BIGINT    NOT NULL DEFAULT nextval('runs_seq'),
            session_id    VARCHAR   NOT NULL,
            user_id       VARCHAR   NOT NULL,
            agent_id      VARCHAR,
            model         VARCHAR   NOT NULL,
            status        VARCHAR   NOT NULL CHECK (status IN ('ok', 'error')),
            error         VARCHAR,
            input_tokens  INTEGER   NOT NULL,
            output_tokens INTEGER   NOT NULL,
            cost_usd      DOUBLE PRECISION,
            latency_ms    DOUBLE PRECISION NOT NULL,
            llm_calls     INTEGER   NOT NULL,
            tool_calls    INTEGER   NOT NULL,
            created_at    TIMESTAMP NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX runs_session_idx ON runs (session_id)")
    conn.execute("CREATE SEQUENCE messages_seq")
    conn.execute(
        """
        CREATE TABLE messages (
            message_id   VARCHAR   PRIMARY KEY,
            seq          BIGINT    NOT NULL DEFAULT nextval('messages_seq'),
            run_id       VARCHAR   NOT NULL,
            session_id   VARCHAR   NOT NULL,
            user_id      VARCHAR   NOT NULL,
            agent_id     VARCHAR,
            role         VARCHAR   NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
            content      VARCHAR,
            tool_calls   JSON,     -- the assistant's requested calls, as the provider returned them
            tool_call_id VARCHAR,  -- on a tool message: which call it answers
            tool_name    VARCHAR,
            created_at   TIMESTAMP NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX messages_session_idx ON messages (session_id)")
    conn.execute("CREATE INDEX messages_user_idx ON messages (user_id)")


@migration
def m003_analytics_views(conn: duckdb.DuckDBPyConnection) -> None:
    # The documented analytics views (README: "Analytics and the command line"), in memlayer._internal.db.views.
    for view in DUCKDB_VIEWS:
        conn.execute(view)


@migration
def m004_retrieval(conn: Connection) -> None:
    # The vectors of memory versions, one row per version and embedder: a change of embedder adds
    # rows under its own name instead of mixing two vector spaces in one column. The dimension
    # comes from the model and is recorded in ``embedders``. A vector is stored as little-endian
    # float32 bytes: measured on 100k x 384, a BLOB imports in 1.4 s against 2.5 s for FLOAT[384]
    # and 3.3-8 s for FLOAT[], and loads into numpy twice as fast.
    conn.execute(
        """
        CREATE TABLE embedders (
            model      VARCHAR   PRIMARY KEY,
            dim        INTEGER   NOT NULL CHECK (dim > 0),
            created_at TIMESTAMP NOT NULL
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE memory_embeddings (
            memory_id VARCHAR NOT NULL,
            version   INTEGER NOT NULL,
            user_id   VARCHAR NOT NULL,
            model     VARCHAR NOT NULL,
            embedding BYTEA   NOT NULL
        )
        """
    )
    # No primary key: its index costs more at a bulk import than it saves; a version's vector is
    # written once, in the transaction that writes the version.
    conn.execute("CREATE INDEX memory_embeddings_user_idx ON memory_embeddings (user_id)")


@migration
def m005_user_revisions(conn: duckdb.DuckDBPyConnection) -> None:
    # The per-user revision (memlayer._internal.db.revisions): a process holding a user's search index compares
    # it to notice writes made elsewhere. Postgres also gets a unique index on the current version of
    # a fact here; DuckDB has no partial index, and its one writing process dedupes before it adds.
    conn.execute("CREATE SEQUENCE user_revisions_seq")
    conn.execute(
        """
        CREATE TABLE user_revisions (
            user_id  VARCHAR PRIMARY KEY,
            revision BIGINT  NOT NULL
        )
        """
    )


@migration
def m006_embedding_lookup(conn: duckdb.DuckDBPyConnection) -> None:
    # Postgres gets an index on (memory_id, version) of memory_embeddings here (memlayer._internal.db.pg_migrations).
    # DuckDB joins a user's rows to their vectors by hashing, whatever its statistics say: nothing to add.
    return


@migration
def m007_input_embeddings(conn: Connection) -> None:
    # The vector of the input a memory came from (the conversation an extraction read, or the text
    # given with a direct add), beside the memory's own, in the same embedder's space. Search ranks
    # by both: a short turn ("Yes, last week!") means what its context says. NULL: no input.
    conn.execute("ALTER TABLE memory_embeddings ADD COLUMN input_embedding BYTEA")


@migration
def m008_fact_keys_and_times(conn: Connection) -> None:
    fact_keys_and_times(conn)


def fact_keys_and_times(conn: Connection) -> None:
    """What each memory is about, and the two times (both stores run this body).

    - ``subject`` / ``attribute``: whose fact and which attribute (`memlayer._internal.facts`); ``fact_key``
      is set for single-valued attributes only, and Postgres keeps it unique among a user's current
      memories (`memlayer._internal.db.pg_migrations`); DuckDB's one writer checks it in the write
      (`memlayer._internal.db.changes`).
    - ``held_from`` / ``held_until``: when the fact held in the user's life (NULL: not said). Not the
      version's ``valid_from`` / ``valid_to``, which are *record* time: when memlayer held that text.
    - ``learned_at``: when memlayer learnt it, the time of the conversation it came from.
    Events carry the key too, so "whose city changed this month" is one query over ``memory_events``.
    Existing memories get a key inferred from their topics and text without an LLM call ("other" where
    nothing is clear); where a user holds two current memories for one single-valued key (duplicates
    made before keys existed), only the newest keeps it and the others become "other".
    """
    from ..facts import fact_key, infer_attribute

    for column, kind in (
        ("subject", "VARCHAR DEFAULT 'user'"),
        ("attribute", "VARCHAR DEFAULT 'other'"),
        ("fact_key", "VARCHAR"),
        ("held_from", "TIMESTAMP"),
        ("held_until", "TIMESTAMP"),
        ("learned_at", "TIMESTAMP"),
    ):
        conn.execute(f"ALTER TABLE memories ADD COLUMN {column} {kind}")
    conn.execute("ALTER TABLE memory_events ADD COLUMN subject VARCHAR")
    conn.execute("ALTER TABLE memory_events ADD COLUMN attribute VARCHAR")
    conn.execute("UPDATE memories SET learned_at = valid_from")
    for view in KEYED_VIEWS:
        conn.execute(view)
    rows = conn.execute(
        "SELECT memory_id, version, user_id, memory, topics, valid_to IS NULL FROM memories"
        " ORDER BY valid_from DESC, memory_id"
    ).fetchall()
    held: set[tuple[str, str]] = set()
    for memory_id, version, user_id, text, topics, current in rows:
        attribute = infer_attribute(text, topics or [])
        key = fact_key("user", attribute)
        if key is not None and current:
            if (user_id, key) in held:
                attribute, key = "other", None
            held.add((user_id, key or ""))
        if attribute != "other":
            conn.execute(
                "UPDATE memories SET attribute = ?, fact_key = ? WHERE memory_id = ? AND version = ?",
                [attribute, key, memory_id, version],
            )


@migration
def m009_record_time_names(conn: Connection) -> None:
    record_time_names(conn, "duckdb")


@migration
def m010_memory_jobs(conn: Connection) -> None:
    create_jobs_table(conn)  # the durable extraction queue (memlayer._internal.db.jobs), in SQL both stores accept


def applied_migrations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The migrations recorded in this database (none for a new one); reads only."""
    if not _has_table(conn, "schema_migrations"):
        return []
    return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]


def apply_migrations(
    conn: duckdb.DuckDBPyConnection, migrations: list[Migration] | None = None, *, allow_foreign: bool = False
) -> list[str]:
    """Run the migrations this database has not seen, in order; return the names run.

    A database that holds tables but was never migrated belongs to another program: it is refused,
    unchanged, unless ``allow_foreign`` (then memlayer's tables are added beside the others).
    """
    migrations = MIGRATIONS if migrations is None else migrations
    done = set(applied_migrations(conn))
    if not done and not allow_foreign:
        _refuse_foreign(conn)
    unknown = done - {name for name, _ in migrations}
    if unknown:
        # A newer memlayer wrote this file; an older one must not guess at its schema.
        raise StorageError(
            f"the database was written by a newer memlayer (migrations "
            f"{sorted(unknown)} are unknown here); upgrade memlayer to open it"
        )
    ran = []
    for name, migrate in migrations:
        if name in done:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            # Inside the first migration's transaction: a failed first migration leaves no trace.
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
            )
            migrate(conn)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?)",
                [name, datetime.now(timezone.utc).replace(tzinfo=None)],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        ran.append(name)
    return ran


def _has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = conn.execute(
        "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'"
        " AND table_name = ?",
        [name],
    ).fetchall()
    return bool(rows)


def _refuse_foreign(conn: duckdb.DuckDBPyConnection) -> None:
    rows = conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        " UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name = current_database() AND NOT internal"
        " ORDER BY 1"
    ).fetchall()
    if rows:
        names = ", ".join(str(row[0]) for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise StorageError(
            f"this DuckDB database is not memlayer's (it holds {names} and no schema_migrations); nothing was "
            "changed. Give memlayer its own file, or pass DuckDb(..., allow_foreign=True) to add its tables beside"
        )
