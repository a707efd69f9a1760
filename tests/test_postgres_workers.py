"""Three worker processes of one app on one PostgreSQL store, through the public API only: what a web
server with several workers does. Nothing is lost, nothing is stored twice, and each worker's search
sees what the others wrote (its loaded index notices their writes by the user's revision).

Each worker is a spawned process with its own `PostgresDb` and `MemoryManager`, as separate programs
on separate hosts would have.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from memlayer import MemoryManager, PostgresDb

WORKERS = 3
FACTS_EACH = 20
USERS = ("ana", "ben")


def worker(dsn: str, number: int, barrier: object) -> list[str]:
    """Adds its facts for both users, searching after each write; returns what its searches missed."""
    missed = []
    with PostgresDb(dsn, max_size=2) as db:
        manager = MemoryManager(db=db, embedder="lexical")
        for user in USERS:  # load each user's index before the others write
            manager.search_user_memories("anything", user)
        barrier.wait(60)  # type: ignore[attr-defined]
        for i in range(FACTS_EACH):
            for user in USERS:
                manager.add_user_memory(f"Fact {i} from worker {number}", user)
                manager.add_user_memory("Shared fact every worker adds", user)  # the same fact, at once
        barrier.wait(60)  # type: ignore[attr-defined]
        # Every worker has finished: a search must now see every other worker's facts too.
        for user in USERS:
            found = {m.memory for m in manager.search_user_memories("fact worker", user_id=user, limit=1000)}
            wanted = {f"Fact {i} from worker {w}" for i in range(FACTS_EACH) for w in range(WORKERS)}
            missed += sorted(wanted - found)
    return missed


def test_three_workers_lose_nothing_and_see_each_other(fresh_postgres_dsn: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as sync, ProcessPoolExecutor(WORKERS, mp_context=spawn) as pool:
        barrier = sync.Barrier(WORKERS)
        futures = [pool.submit(worker, fresh_postgres_dsn, n, barrier) for n in range(WORKERS)]
        missed = [f.result(timeout=120) for f in futures]
    assert missed == [[], [], []]
    with PostgresDb(fresh_postgres_dsn) as db:
        manager = MemoryManager(db=db, embedder="lexical")
        for user in USERS:
            texts = [m.memory for m in manager.get_user_memories(user)]
            assert len(texts) == WORKERS * FACTS_EACH + 1  # every fact, the shared one once
            assert texts.count("Shared fact every worker adds") == 1
            events = manager.get_user_events(user)
            assert [e.operation for e in events] == ["add"] * len(texts)  # no write half-done or repeated
