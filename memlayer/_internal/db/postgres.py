"""`PostgresDb`: the `Store` on a PostgreSQL server, shared by many processes on many hosts.

``PostgresDb("postgresql://memlayer@db.internal/memlayer")`` opens a pool of connections (psycopg 3
and psycopg_pool, installed with ``pip install 'memlayer-ai[postgres]'`` and imported only here, when a
`PostgresDb` is made). The schema comes from the same named migrations as DuckDB's
(`memlayer._internal.db.pg_migrations`), applied once however many processes open a fresh database at once.

Each thread holds one pooled connection for the span of its outermost ``reading()`` or
``transaction()`` block, and blocks nested inside reuse it: a write inside a read (as the manager
does) never waits for a second connection, so a small pool cannot deadlock. Results come back in
binary format, so a user's float32 vectors load as ``bytes`` without a hex round trip.

What keeps concurrent writers correct lives with the SQL: a per-user advisory lock and revision
(`memlayer._internal.db.revisions`), the unique current version (`memlayer._internal.db.changes`), and the row count
that refuses a change to a memory another process changed meanwhile.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, StorageError
from .agno_memories import AgnoMemoryMethods
from .pg_migrations import apply_pg_migrations
from .readonly import check_read_only

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["Dsn", "PgConnection", "PostgresDb", "parse_dsn", "to_numbered"]

# Every table that holds a user's rows: what `rewrite` vacuums after an erasure.
_TABLES = (
    "memories, memory_events, llm_calls, messages, runs, sessions, memory_embeddings, embedders, user_revisions,"
    " memory_jobs"  # a queued job holds the messages of its turn
)
# A quoted literal, a quoted name or a line comment: ``?`` inside one is text, not a placeholder.
_QUOTED = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*)""")


@functools.lru_cache(maxsize=1024)
def to_numbered(query: str) -> str:
    """memlayer's ``?`` placeholders as Postgres's own ``$1, $2, ...``.

    Sent through psycopg's `RawCursor`, which passes the text on as it is: psycopg's ``%s`` parsing
    runs in Python and cost a second for the 90k parameters of a 6,000-change set.
    """
    parts = _QUOTED.split(query)
    count = 0

    def number(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"\?", number, parts[i])
    return "".join(parts)


class PgConnection:
    """A psycopg connection with memlayer's `Connection` face: ``?`` placeholders, binary results."""

    dialect = "postgres"

    def __init__(self, raw: psycopg.Connection[tuple[Any, ...]]) -> None:
        from psycopg import RawCursor

        self.raw = raw
        self._cursor = RawCursor

    def execute(self, query: str, parameters: Any = None, /) -> psycopg.RawCursor[tuple[Any, ...]]:
        cursor = self._cursor(self.raw)
        return cursor.execute(to_numbered(query), parameters or None, binary=True)

    def executemany(self, query: str, parameters: Any, /) -> None:
        with self._cursor(self.raw) as cursor:
            cursor.executemany(to_numbered(query), parameters)

    def transaction(self, *, force_rollback: bool = False) -> AbstractContextManager[Any]:
        """A transaction (a savepoint when one is open already), committed when the block exits cleanly."""
        return self.raw.transaction(force_rollback=force_rollback)


class PostgresDb(AgnoMemoryMethods):
    """The store on a Postgres server. ``dsn``: a libpq connection string or ``postgresql://`` URL."""

    dialect = "postgres"

    def __init__(
        self,
        dsn: str | None = None,
        *,
        db_url: str | None = None,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 10.0,
        allow_foreign: bool = False,
        vacuum_full: bool = False,
    ) -> None:
        """``min_size``/``max_size``: pooled connections, one per thread inside a block; ``timeout``:
        seconds to wait for the server or for a free connection. ``allow_foreign``: add memlayer's
        tables to a schema that already holds others. ``vacuum_full``: see `rewrite`. ``db_url``: Agno's
        name for the dsn, SQLAlchemy's driver suffix allowed (``postgresql+psycopg://...``)."""
        _require_psycopg()
        if (dsn is None) == (db_url is None):
            raise ConfigError("give PostgresDb one dsn: PostgresDb('postgresql://...') or db_url='postgresql://...'")
        self.dsn = parse_dsn(dsn if dsn is not None else re.sub(r"^(postgres(?:ql)?)\+\w+://", r"\1://", str(db_url)))
        self.display = self.dsn.display
        if not (isinstance(min_size, int) and isinstance(max_size, int) and 0 <= min_size <= max_size >= 1):
            raise ConfigError(f"need 0 <= min_size <= max_size and max_size >= 1, got {min_size}, {max_size}")
        self.timeout = timeout
        self.vacuum_full = vacuum_full
        self._local = threading.local()
        self._migrate(allow_foreign)
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] | None = self._open_pool(min_size, max_size)

    def _migrate(self, allow_foreign: bool) -> None:
        import psycopg

        try:
            raw = psycopg.connect(self.dsn.conninfo, autocommit=True, connect_timeout=max(1, int(self.timeout)))
        except psycopg.Error as exc:
            raise StorageError(f"cannot reach Postgres at {self.display}: {self.dsn.scrub(exc)}") from None
        with raw:
            try:
                apply_pg_migrations(PgConnection(raw), allow_foreign=allow_foreign)
            except psycopg.Error as exc:
                raise StorageError(
                    f"migrating {self.display} failed, nothing was changed: {self.dsn.scrub(exc)}"
                ) from exc

    def _open_pool(self, min_size: int, max_size: int) -> ConnectionPool[psycopg.Connection[tuple[Any, ...]]]:
        from psycopg_pool import ConnectionPool, PoolTimeout

        pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            self.dsn.conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},  # transactions are explicit: reading() holds none open
            configure=_configure,
            # Checked when taken from the pool: a connection that died while idle (a server restart, a
            # failover, a terminated backend) is replaced there, instead of failing the next call.
            check=ConnectionPool.check_connection,
            timeout=self.timeout,
            open=False,
            name="memlayer",
        )
        try:
            pool.open(wait=True, timeout=self.timeout)
        except PoolTimeout as exc:
            pool.close()
            raise StorageError(f"cannot open a connection pool to {self.display}: {self.dsn.scrub(exc)}") from None
        return pool

    @contextmanager
    def _connection(self) -> Iterator[PgConnection]:
        """This thread's connection: the one its outer block holds, or one from the pool for this block."""
        held: PgConnection | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        from psycopg_pool import PoolTimeout

        pool = self._pool
        if pool is None:
            raise StorageError(f"PostgresDb({self.display}) is closed")
        try:
            with pool.connection() as raw:
                conn = self._local.conn = PgConnection(raw)
                try:
                    yield conn
                finally:
                    self._local.conn = None
        except PoolTimeout as exc:
            raise StorageError(
                f"no connection to {self.display} within {self.timeout} s, nothing was done: the server is down, "
                f"at max_connections, or every pooled connection is busy; retry later, or raise max_connections "
                f"on the server or max_size here ({self.dsn.scrub(exc)})"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """One Postgres transaction: everything inside commits together or not at all."""
        import psycopg

        with self._connection() as conn:
            committing = False
            try:
                with conn.transaction():
                    yield conn
                    committing = True  # the block is done: what fails now is the COMMIT
            except psycopg.Error as exc:
                raise StorageError(_write_failure(self.display, self.dsn.scrub(exc), exc, committing)) from exc

    @contextmanager
    def reading(self) -> Iterator[PgConnection]:
        """A pooled connection for reads (autocommit: each statement sees what was committed before it)."""
        import psycopg

        with self._connection() as conn:
            try:
                yield conn
            except psycopg.Error as exc:
                lost = " (the connection was lost: retry the call; the pool reconnects by itself)"
                raise StorageError(
                    f"read from {self.display} failed{lost if _lost(exc) else ''}: {self.dsn.scrub(exc)}"
                ) from exc

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one read-only statement and return its rows.

        Three walls: DuckDB's parser must see exactly one SELECT-type statement; the server runs it by
        the extended protocol, which refuses a second statement; and inside a READ ONLY transaction that
        is rolled back. What a read-only query may still call (``pg_terminate_backend`` on the role's
        own sessions, advisory locks, installed extensions) is bounded by the role's privileges: give
        untrusted SQL a role that may only SELECT memlayer's tables.
        """
        import psycopg

        if params is not None and not isinstance(params, (list, tuple, dict)):
            raise ConfigError(f"params must be a list (or a dict for named parameters), got {params!r}")
        statement = check_read_only(query)
        with self._connection() as conn:
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute("SET TRANSACTION READ ONLY")
                    return conn.execute(statement, params or []).fetchall()
            except psycopg.errors.ReadOnlySqlTransaction as exc:
                raise ConfigError(f"the query tried to write and was refused (read-only): {exc}") from exc
            except psycopg.Error as exc:
                raise ConfigError(f"the query failed: {str(exc).strip().splitlines()[0]}") from exc

    def rewrite(self) -> None:
        """VACUUM memlayer's tables, so the rows an erasure deleted are removed from their pages and indexes.

        Plain VACUUM (the default) takes no lock that stops other writers; the freed space is reused by
        later rows, but until then the bytes may stay in the files, and in the WAL until it is recycled.
        ``vacuum_full=True`` rewrites each table into a new file instead, which also drops those bytes
        from the database's files, at the cost of an exclusive lock on each table while it is copied.
        A row that a transaction still open elsewhere can see is not removed: VACUUM is best effort.
        """
        import psycopg

        with self._connection() as conn:
            if conn.raw.info.transaction_status != 0:  # VACUUM cannot run inside a transaction block
                raise StorageError("rewrite() cannot run inside a transaction; call it after the block")
            try:
                conn.execute(f"VACUUM {'(FULL) ' if self.vacuum_full else ''}{_TABLES}")
            except psycopg.Error as exc:
                raise StorageError(f"vacuuming {self.display} failed: {self.dsn.scrub(exc)}") from exc

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __repr__(self) -> str:
        return f"PostgresDb({self.display})"


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"PostgresDb needs psycopg 3 and psycopg_pool: pip install 'memlayer-ai[postgres]' ({exc})"
        ) from None


def _lost(exc: BaseException) -> bool:
    """The connection itself failed (server gone, backend terminated), not the statement: SQLSTATE class 08
    or 57P, or the client's own error without a SQLSTATE (the socket closed under it)."""
    import psycopg

    sqlstate = getattr(exc, "sqlstate", None) or ""
    return sqlstate.startswith(("08", "57P")) or (isinstance(exc, psycopg.OperationalError) and not sqlstate)


def _write_failure(display: str, text: str, exc: BaseException, committing: bool) -> str:
    """What a failed write says: what happened to it, and what to do."""
    if getattr(exc, "sqlstate", None) == "57014":  # query_canceled: statement_timeout, or a cancel
        return (
            f"write to {display} ran over the server's statement_timeout (or was cancelled) and was rolled back, "
            f"nothing was written: retry, or raise statement_timeout for this role ({text})"
        )
    if _lost(exc) and committing:
        return (
            f"the connection to {display} was lost while committing: the write may or may not have been "
            f"applied. Read before retrying (adding the same text again stores it once) ({text})"
        )
    if _lost(exc):
        return (
            f"the connection to {display} was lost (a server restart, a failover or a terminated backend) and "
            f"the write was rolled back, nothing was written: retry the call; the pool reconnects by itself ({text})"
        )
    return f"write to {display} failed and was rolled back: {text}"


def _configure(raw: psycopg.Connection[tuple[Any, ...]]) -> None:
    """Return JSON columns as text, as DuckDB does, so the code above decodes them once, the same way."""
    from psycopg.types.string import TextBinaryLoader, TextLoader

    raw.adapters.register_loader("json", TextLoader)
    raw.adapters.register_loader("json", TextBinaryLoader)


@dataclass(frozen=True)
class Dsn:
    """A Postgres connection string, parsed: what to connect with, and what may be shown of it."""

    conninfo: str = field(repr=False)  # holds the password: never printed
    password: str | None = field(repr=False)
    display: str

    def scrub(self, exc: BaseException) -> str:
        """The error's text with the password hidden (a driver's message can quote the dsn)."""
        text = str(exc).strip() or type(exc).__name__
        return text.replace(self.password, "***") if self.password else text


def parse_dsn(dsn: object) -> Dsn:
    """`Dsn` of a connection string or URL; `ConfigError` (quoting nothing of it) if it does not parse."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ConfigError(f"dsn must be a Postgres connection string or URL, got {type(dsn).__name__}")
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # its message can quote the dsn, password and all
        raise ConfigError("the dsn does not parse as a Postgres connection string or URL") from None
    password = params.pop("password", None)
    shown = make_conninfo("", **{k: v for k, v in params.items() if v is not None})
    if password is not None:
        shown += " password=***"
    return Dsn(dsn, None if password is None else str(password), repr(shown))
