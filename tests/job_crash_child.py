"""A process that queues one memory job, works on it, and kills itself (SIGKILL) at a chosen point.

``python tests/job_crash_child.py DB POINT JOB_ID USER``: DB is a DuckDB file or a postgresql:// dsn.
POINT is where it dies: ``queued`` (the job is committed, no worker took it), ``claimed`` (taken, before
the model call), ``calling`` (inside the model call), ``replied`` (the model answered, inside the
transaction that applies the changes, before its commit) or ``committed`` (right after that commit).
Used by tests/test_background_memory.py and benchmarks/background_kills.py; the model is scripted since
the model is irrelevant to durability.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from memlayer import DuckDb, JobSettings, MemoryManager, Message, PostgresDb, Store
from memlayer._internal.db import jobs
from memlayer._internal.db.jobs import NewJob
from memlayer._internal.memory.background import JobWorker
from memlayer.testing import scripted_model

POINTS = ("queued", "claimed", "calling", "replied", "committed")
LEASE = 1.0  # seconds: a job the dead child claimed is taken again after this (Postgres)


def extraction(job_id: str) -> dict[str, Any]:
    """The reply for ``job_id``'s extraction: one memory, its text unique to the job."""
    return {"operations": [{"op": "add", "memory": f"Fact of job {job_id}", "topics": ["test"], "reason": "said"}]}


def open_store(where: str) -> Store:
    return PostgresDb(where, max_size=2) if where.startswith("postgresql") else DuckDb(where)


def manager_on(db: Store) -> MemoryManager:
    return MemoryManager(
        model="openai:gpt-4o-mini", db=db, mode="json_schema", embedder="lexical", provider_retries=0,
        jobs=JobSettings(lease=LEASE, retry_delay=0.05),
    )  # fmt: skip


def die(*_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(where: str, point: str, job_id: str, user: str) -> None:
    assert point in POINTS, point
    db = open_store(where)
    with db.transaction() as conn:
        jobs.enqueue(conn, NewJob(job_id, user, [Message(content=f"remember job {job_id}")]), jobs.utc_now())
    if point == "queued":
        die()
    manager = manager_on(db)

    def reply(_: dict[str, Any]) -> Any:
        if point == "calling":
            die()
        return extraction(job_id)

    worker = JobWorker(
        db, manager._apply_job, manager.job_settings, probe=lambda step: die() if step == point else None
    )
    with scripted_model(reply):
        worker.drain()
    sys.exit(f"reached the end without dying at {point!r}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
