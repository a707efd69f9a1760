"""Memory jobs: the durable queue of extractions that run after the answer, in the store itself.

A job is written in the transaction that stores its run, so a run that was answered always has its
extraction queued. A worker claims a job with a lease (``claim``): the job turns ``running``, its
``attempts`` grows by one, and a fresh ``claim`` token is written. The extraction's changes commit in
the same transaction as the job's ``done`` mark (``complete``), which checks the token: a worker whose
lease expired and whose job was taken again cannot also apply it, so each job is applied exactly once.
A job claimed by a worker that died is taken again once its lease has passed.

Jobs of one user are taken in order (``seq``): a job waits while an earlier job of its user is still
``pending`` or ``running``, so a later turn never lands before an earlier one. A ``dead`` (parked) job
does not hold the user's later jobs back; it waits, with its error, for ``memlayer jobs retry``.

On PostgreSQL several processes claim at once: ``FOR UPDATE SKIP LOCKED`` gives each job to one of
them. DuckDB has one writing process per file, and the store's lock serialises its threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import ConfigError, StorageError
from ..records import Message
from .store import Connection, changed_rows, dialect

__all__ = [
    "JOB_STATES",
    "ClaimedJob",
    "JobRow",
    "NewJob",
    "claim",
    "complete",
    "create_jobs_table",
    "drop_job",
    "enqueue",
    "fail",
    "job_counts",
    "job_states",
    "list_jobs",
    "release_running",
    "retry_job",
    "utc_now",
]

JOB_STATES = ("pending", "running", "done", "dead")
_COLUMNS = "job_id, user_id, agent_id, session_id, run_id, status, attempts, last_error, created_at, finished_at"


def create_jobs_table(conn: Connection) -> None:
    """The body of migration m010 (`memlayer._internal.db.migrations`), in SQL both stores accept."""
    conn.execute("CREATE SEQUENCE memory_jobs_seq")
    conn.execute(
        """
        CREATE TABLE memory_jobs (
            job_id      VARCHAR   PRIMARY KEY,
            seq         BIGINT    NOT NULL DEFAULT nextval('memory_jobs_seq'), -- per-user order
            user_id     VARCHAR   NOT NULL,
            agent_id    VARCHAR,
            session_id  VARCHAR,
            run_id      VARCHAR,  -- the run whose messages it extracts from, when a run queued it
            messages    VARCHAR   NOT NULL, -- JSON list of {role, content, created_at}
            status      VARCHAR   NOT NULL CHECK (status IN ('pending', 'running', 'done', 'dead')),
            attempts    INTEGER   NOT NULL DEFAULT 0,
            not_before  TIMESTAMP NOT NULL, -- a retry's backoff: not taken before then
            lease_until TIMESTAMP,          -- a running job whose lease passed is taken again
            claim       VARCHAR,            -- the token of the claim that may complete it
            last_error  VARCHAR,
            created_at  TIMESTAMP NOT NULL,
            finished_at TIMESTAMP
        )
        """
    )
    conn.execute("CREATE INDEX memory_jobs_status_idx ON memory_jobs (status, user_id, seq)")
    # What needs a person: jobs parked after their last attempt, with the error that stopped them.
    conn.execute(
        "CREATE VIEW parked_jobs AS SELECT job_id, user_id, agent_id, session_id, run_id, attempts, last_error,"
        " created_at, finished_at AS parked_at FROM memory_jobs WHERE status = 'dead'"
    )


@dataclass(frozen=True)
class NewJob:
    job_id: str
    user_id: str
    messages: list[Message]
    agent_id: str | None = None
    session_id: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class ClaimedJob(NewJob):
    claim: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class JobRow:
    """A job as `memlayer jobs` lists it."""

    job_id: str
    user_id: str
    agent_id: str | None
    session_id: str | None
    run_id: str | None
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


def utc_now() -> datetime:
    """Wall-clock UTC, naive as stored. Leases and backoff need real time, not the pinnable `clock`."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def enqueue(conn: Connection, job: NewJob, now: datetime) -> None:
    """Queue ``job`` inside the caller's transaction (the one that stores its run)."""
    conn.execute(
        "INSERT INTO memory_jobs (job_id, user_id, agent_id, session_id, run_id, messages, status, not_before,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        [job.job_id, job.user_id, job.agent_id, job.session_id, job.run_id, _dump(job.messages), now, now],
    )


# A job is ready when it is pending and due, or running with a lease that passed; and no earlier job
# of its user is still pending or running (the per-user order).
_READY = """
    SELECT job_id FROM memory_jobs j
    WHERE ((j.status = 'pending' AND j.not_before <= ?) OR (j.status = 'running' AND j.lease_until < ?))
      AND NOT EXISTS (
        SELECT 1 FROM memory_jobs e
        WHERE e.user_id = j.user_id AND e.seq < j.seq AND e.status IN ('pending', 'running'))
    ORDER BY j.seq LIMIT 1
"""


def claim(conn: Connection, token: str, lease: timedelta, now: datetime) -> ClaimedJob | None:
    """Take the next ready job for ``lease``, inside the caller's transaction; None when none is ready."""
    # Postgres: a job another worker is claiming right now is skipped, not waited for.
    query = _READY + (" FOR UPDATE SKIP LOCKED" if dialect(conn) == "postgres" else "")
    row = conn.execute(query, [now, now]).fetchone()
    if row is None:
        return None
    conn.execute(
        "UPDATE memory_jobs SET status = 'running', attempts = attempts + 1, claim = ?, lease_until = ?"
        " WHERE job_id = ?",
        [token, now + lease, row[0]],
    )
    found = conn.execute(
        "SELECT job_id, user_id, agent_id, session_id, run_id, messages, attempts FROM memory_jobs WHERE job_id = ?",
        [row[0]],
    ).fetchone()
    assert found is not None, "the row was just updated in this transaction"
    job_id, user_id, agent_id, session_id, run_id, messages, attempts = found
    return ClaimedJob(job_id, user_id, _load(messages), agent_id, session_id, run_id, token, int(attempts))


def complete(conn: Connection, job: ClaimedJob, now: datetime) -> None:
    """Mark ``job`` done inside the transaction that applies its changes; refused if its claim was lost."""
    marked = changed_rows(
        conn,
        "UPDATE memory_jobs SET status = 'done', finished_at = ?, lease_until = NULL, last_error = NULL"
        " WHERE job_id = ? AND claim = ? AND status = 'running'",
        [now, job.job_id, job.claim],
    )
    if marked != 1:
        # Raised inside the transaction, so the changes roll back with it: the job's new holder applies them.
        raise StorageError(f"memory job {job.job_id} was taken by another worker after its lease passed")


def fail(conn: Connection, job: ClaimedJob, error: str, retry_at: datetime | None, now: datetime) -> bool:
    """Record a failed attempt: retried at ``retry_at``, or parked (``dead``) when None. False if the claim was lost."""
    status = "pending" if retry_at is not None else "dead"
    marked = changed_rows(
        conn,
        "UPDATE memory_jobs SET status = ?, last_error = ?, not_before = ?, lease_until = NULL, claim = NULL,"
        " finished_at = ? WHERE job_id = ? AND claim = ? AND status = 'running'",
        [status, error[:2000], retry_at or now, None if retry_at else now, job.job_id, job.claim],
    )
    return marked == 1


def release_running(conn: Connection) -> int:
    """Make every running job pending again: on DuckDB, the only writer opening a file holds no claim,
    so a running job there was left by a process that died, and need not wait for its lease."""
    return changed_rows(
        conn, "UPDATE memory_jobs SET status = 'pending', claim = NULL, lease_until = NULL WHERE status = 'running'", []
    )


def job_states(conn: Connection, job_ids: list[str]) -> dict[str, tuple[str, int, str | None]]:
    """Status, attempts and last error of each of ``job_ids`` that exists."""
    if not job_ids:
        return {}
    marks = ", ".join("?" for _ in job_ids)
    rows = conn.execute(
        f"SELECT job_id, status, attempts, last_error FROM memory_jobs WHERE job_id IN ({marks})", job_ids
    ).fetchall()
    return {str(r[0]): (str(r[1]), int(r[2]), r[3]) for r in rows}


def list_jobs(conn: Connection, status: str | None = None, user_id: str | None = None, limit: int = 50) -> list[JobRow]:
    """The newest jobs first, optionally of one status and one user."""
    if status is not None and status not in JOB_STATES:
        raise ConfigError(f"unknown job status {status!r}; one of {', '.join(JOB_STATES)}")
    where, params = _filters(status, user_id)
    rows = conn.execute(f"SELECT {_COLUMNS} FROM memory_jobs{where} ORDER BY seq DESC LIMIT ?", [*params, limit])
    return [JobRow(*row) for row in rows.fetchall()]


def job_counts(conn: Connection, user_id: str | None = None) -> dict[str, int]:
    """How many jobs are in each state (every state listed, zero included)."""
    where, params = _filters(None, user_id)
    rows = conn.execute(f"SELECT status, count(*) FROM memory_jobs{where} GROUP BY status", params).fetchall()
    found = {str(r[0]): int(r[1]) for r in rows}
    return {state: found.get(state, 0) for state in JOB_STATES}


def retry_job(conn: Connection, job_id: str, now: datetime) -> None:
    """Queue a parked job again, with its attempts reset."""
    _require_dead(conn, job_id)
    conn.execute(
        "UPDATE memory_jobs SET status = 'pending', attempts = 0, not_before = ?, finished_at = NULL WHERE job_id = ?",
        [now, job_id],
    )


def drop_job(conn: Connection, job_id: str) -> None:
    """Delete a parked job for good (its messages stay in the session's history)."""
    _require_dead(conn, job_id)
    conn.execute("DELETE FROM memory_jobs WHERE job_id = ?", [job_id])


def _require_dead(conn: Connection, job_id: str) -> None:
    row = conn.execute("SELECT status FROM memory_jobs WHERE job_id = ?", [job_id]).fetchone()
    if row is None:
        raise ConfigError(f"no memory job {job_id!r}")
    if row[0] != "dead":
        raise ConfigError(f"memory job {job_id!r} is {row[0]}; only a parked (dead) job can be retried or dropped")


def _filters(status: str | None, user_id: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if user_id is not None:
        clauses.append("user_id = ?")
        params.append(user_id)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _dump(messages: list[Message]) -> str:
    return json.dumps([m.model_dump(mode="json") for m in messages], ensure_ascii=False)


def _load(text: str) -> list[Message]:
    return [Message.model_validate(m) for m in json.loads(text)]
