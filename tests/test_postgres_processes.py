"""Many processes on one Postgres store: what DuckDB cannot do, and what must not go wrong when it happens.

Four worker processes (``spawn``, as on any host) are started once for the module and reused; each task
opens its own `PostgresDb`, as a separate program would. A manager process supplies the barriers that
make the workers collide on purpose.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from memlayer import StorageError
from memlayer._internal.clock import now as utcnow
from memlayer._internal.db import PostgresDb
from memlayer._internal.db import memories as mem
from memlayer._internal.db.changes import ChangeSet, Provenance
from memlayer._internal.db.migrations import MIGRATIONS

WORKERS = 4
ALICE = "alice"
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=SPAWN) as executor:
        yield executor


@pytest.fixture(scope="module")
def sync() -> Iterator[Any]:
    with SPAWN.Manager() as manager:
        yield manager


# -- what the workers do (module level, so a spawned process can import them) -------------------------


def _write(db: PostgresDb, user: str, build: Any) -> ChangeSet:
    changes = ChangeSet(Provenance(user, "api", utcnow()))
    with db.transaction() as conn:
        build(changes, conn)
        changes.write(conn)
    return changes


def open_fresh(dsn: str, barrier: Any) -> str:
    barrier.wait(60)
    with PostgresDb(dsn, max_size=1) as db:
        return repr(db)


def add_fact(dsn: str, barrier: Any, text: str) -> int:
    """Add ``text`` for Alice at the same moment as the others; returns how many adds were skipped."""
    with PostgresDb(dsn, max_size=1) as db:
        barrier.wait(60)
        return len(_write(db, ALICE, lambda c, _: c.add(text, [])).skipped)


def update_memory(dsn: str, barrier: Any, memory_id: str, text: str) -> str:
    with PostgresDb(dsn, max_size=1) as db:
        with db.reading() as conn:
            old = mem.find_memory(conn, ALICE, memory_id)
        assert old is not None
        barrier.wait(60)
        try:
            _write(db, ALICE, lambda c, _: c.update(old, text, []))
        except StorageError as exc:
            return str(exc)
        return "won"


def mixed_load(dsn: str, worker: int, rounds: int) -> dict[str, int]:
    """Adds (own and shared texts) and updates over three users; counts what was written and refused."""
    rng = random.Random(worker)
    done = {"adds": 0, "skipped": 0, "updates": 0, "refused": 0}
    with PostgresDb(dsn, max_size=1) as db:
        for i in range(rounds):
            user, roll = f"u{rng.randrange(3)}", rng.random()
            if roll < 0.6:
                text = f"w{worker} fact {i}" if roll < 0.4 else f"shared fact {i % 7}"
                skipped = len(_write(db, user, lambda c, _, text=text: c.add(text, [])).skipped)
                done["adds"] += 1 - skipped
                done["skipped"] += skipped
                continue
            try:
                changes = _write(db, user, lambda c, conn, i=i: _update_one(c, conn, rng, f"w{worker} edit {i}"))
                done["updates"] += len(changes.changes)  # 0 when the user had no memory to update
            except StorageError:
                done["refused"] += 1  # another worker changed it first: the retryable refusal
    return done


def _update_one(changes: ChangeSet, conn: Any, rng: random.Random, text: str) -> None:
    memories = mem.list_memories(conn, changes.origin.user_id)
    if memories:
        changes.update(rng.choice(memories), text, [])


def hold_a_write_open(dsn: str, ready: Any) -> None:
    """Write 50 memories inside a transaction, say so, and wait there to be killed."""
    with PostgresDb(dsn, max_size=1) as db, db.transaction() as conn:
        changes = ChangeSet(Provenance(ALICE, "api", utcnow()))
        for i in range(50):
            changes.add(f"doomed {i}", [])
        changes.write(conn)
        ready.set()
        time.sleep(120)


def add_many(dsn: str, prefix: str, count: int) -> int:
    with PostgresDb(dsn, max_size=1) as db:
        for i in range(count):
            _write(db, ALICE, lambda c, _, i=i: c.add(f"{prefix} {i}", []))
    return count


# -- the tests ---------------------------------------------------------------------------------------


def current_texts(dsn: str, user: str = ALICE) -> list[str]:
    with PostgresDb(dsn, max_size=1) as db, db.reading() as conn:
        return sorted(m.memory for m in mem.list_memories(conn, user))


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(
    pool: ProcessPoolExecutor, sync: Any, empty_postgres_dsn: str
) -> None:
    barrier = sync.Barrier(WORKERS)
    opened = [pool.submit(open_fresh, empty_postgres_dsn, barrier) for _ in range(WORKERS)]
    assert all(f.result(timeout=120).startswith("PostgresDb(") for f in opened)
    with PostgresDb(empty_postgres_dsn) as db:
        assert db.sql("SELECT name, count(*) FROM schema_migrations GROUP BY name ORDER BY name") == [
            (name, 1) for name, _ in MIGRATIONS
        ]


def test_one_fact_added_by_every_process_at_once_is_stored_once(
    pool: ProcessPoolExecutor, sync: Any, fresh_postgres_dsn: str
) -> None:
    barrier = sync.Barrier(WORKERS)
    texts = ["Likes tea", "likes tea", "Likes  TEA ", "LIKES TEA"]
    futures = [pool.submit(add_fact, fresh_postgres_dsn, barrier, t) for t in texts]
    skipped = [f.result(timeout=60) for f in futures]
    assert sorted(skipped) == [0] + [1] * (WORKERS - 1)
    assert len(current_texts(fresh_postgres_dsn)) == 1
    with PostgresDb(fresh_postgres_dsn) as db:
        assert db.sql("SELECT operation, count(*) FROM memory_events GROUP BY operation") == [("add", 1)]


def test_concurrent_updates_of_one_memory_one_wins(
    pool: ProcessPoolExecutor, sync: Any, fresh_postgres_dsn: str
) -> None:
    with PostgresDb(fresh_postgres_dsn) as db:
        tea = _write(db, ALICE, lambda c, _: c.add("Likes tea", [])).current_versions()[0]
    barrier = sync.Barrier(WORKERS)
    futures = [
        pool.submit(update_memory, fresh_postgres_dsn, barrier, tea.memory_id, f"Likes tea no. {w}")
        for w in range(WORKERS)
    ]
    outcomes = [f.result(timeout=60) for f in futures]
    assert outcomes.count("won") == 1
    assert all("changed while this change was prepared; retry" in o for o in outcomes if o != "won")
    winner = f"Likes tea no. {outcomes.index('won')}"
    assert current_texts(fresh_postgres_dsn) == [winner]
    with PostgresDb(fresh_postgres_dsn) as db, db.reading() as conn:
        history = mem.list_events(conn, ALICE, tea.memory_id)
    assert [(e.operation, e.new_memory) for e in history] == [("add", "Likes tea"), ("update", winner)]


def test_mixed_load_loses_nothing_and_keeps_each_users_event_order(
    pool: ProcessPoolExecutor, fresh_postgres_dsn: str
) -> None:
    futures = [pool.submit(mixed_load, fresh_postgres_dsn, w, 80) for w in range(WORKERS)]
    totals = {k: sum(f.result(timeout=120)[k] for f in futures) for k in ("adds", "skipped", "updates", "refused")}
    with PostgresDb(fresh_postgres_dsn) as db:
        counts = dict(db.sql("SELECT operation, count(*) FROM memory_events GROUP BY operation"))
        assert (counts.get("add"), counts.get("update", 0)) == (totals["adds"], totals["updates"])
        assert (
            db.sql(
                "SELECT user_id, memory_key FROM memories WHERE recorded_until IS NULL"
                " GROUP BY 1, 2 HAVING count(*) > 1"
            )
            == []
        )
        for user in ("u0", "u1", "u2"):
            assert _replay(db, user) == dict(
                db.sql("SELECT memory_id, memory FROM memories WHERE user_id = ? AND recorded_until IS NULL", [user])
            )
    assert totals["adds"] > 0 and totals["updates"] > 0


def _replay(db: PostgresDb, user: str) -> dict[str, str]:
    """The user's current memories rebuilt from their events in ``seq`` order; each must follow the last."""
    state: dict[str, str] = {}
    rows = db.sql(
        "SELECT memory_id, operation, old_memory, new_memory FROM memory_events WHERE user_id = ? ORDER BY seq", [user]
    )
    for memory_id, operation, old, new in rows:
        assert state.get(memory_id) == old, f"event out of order for {memory_id}: {operation} {old!r} -> {new!r}"
        if operation == "delete":
            del state[memory_id]
        else:
            state[memory_id] = new
    return state


def test_a_worker_killed_inside_a_write_leaves_nothing_and_blocks_no_one(
    pool: ProcessPoolExecutor, fresh_postgres_dsn: str
) -> None:
    ready = SPAWN.Event()
    doomed = SPAWN.Process(target=hold_a_write_open, args=(fresh_postgres_dsn, ready))
    doomed.start()
    try:
        assert ready.wait(60), "the doomed worker never reached its write"
        # Same user: these wait on the doomed transaction's user lock until the server drops it.
        others = [pool.submit(add_many, fresh_postgres_dsn, f"worker {w}", 5) for w in range(3)]
        time.sleep(0.5)
        assert not any(f.done() for f in others)
        assert doomed.pid is not None
        os.kill(doomed.pid, signal.SIGKILL)
        assert [f.result(timeout=60) for f in others] == [5, 5, 5]
    finally:
        doomed.kill()
        doomed.join(10)
    texts = current_texts(fresh_postgres_dsn)
    assert len(texts) == 15 and not [t for t in texts if t.startswith("doomed")]
    with PostgresDb(fresh_postgres_dsn) as db:
        assert db.sql("SELECT count(*) FROM memory_events") == [(15,)]
