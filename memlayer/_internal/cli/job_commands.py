"""``memlayer jobs list | retry | drop`` and ``memlayer worker``: the background extraction queue from the shell."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from ..db import jobs as job_sql
from ..errors import ConfigError
from ..memory.background import JobSettings
from .app import (
    ApiBaseOpt,
    DbOpt,
    JsonOpt,
    ModelOpt,
    app,
    existing_manager,
    model_ready,
    open_manager,
    out,
    plural,
    print_json,
    table,
)

jobs_app = typer.Typer(help="The queue of background extractions: list, retry or drop parked jobs.")
app.add_typer(jobs_app, name="jobs")

JobIdArg = Annotated[str, typer.Argument(help="the job's id (as `memlayer jobs list` shows it)")]


@jobs_app.command(name="list")
def list_(
    status: Annotated[str | None, typer.Option(help="pending, running, done or dead (parked)")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user's jobs")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 50,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The newest jobs with their state, attempts and last error, and how many are in each state."""
    with existing_manager(db, None) as manager, manager.db.reading() as conn:
        rows = job_sql.list_jobs(conn, status, user, limit)
        counts = job_sql.job_counts(conn, user)
    if as_json:
        print_json({"counts": counts, "jobs": [vars(row) for row in rows]})
        return
    shown = [(r.job_id, r.user_id, r.status, r.attempts, r.last_error, r.created_at) for r in rows]
    out.print(table("memory jobs", ["job", "user", "status", "attempts", "last error", "queued (UTC)"], shown))
    out.print(", ".join(f"{n} {state}" for state, n in counts.items()), style="dim")


@jobs_app.command()
def retry(job_id: JobIdArg, db: DbOpt = None) -> None:
    """Queue a parked job again (its attempts start over); a worker applies it."""
    with existing_manager(db, None) as manager, manager.db.transaction() as conn:
        job_sql.retry_job(conn, job_id, job_sql.utc_now())
    out.print(f"queued {job_id} again")


@jobs_app.command()
def drop(job_id: JobIdArg, db: DbOpt = None) -> None:
    """Delete a parked job for good (its messages stay in the session's history)."""
    with existing_manager(db, None) as manager, manager.db.transaction() as conn:
        job_sql.drop_job(conn, job_id)
    out.print(f"dropped {job_id}")


@app.command()
def worker(
    db: DbOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    once: Annotated[bool, typer.Option("--once", help="apply every ready job, then exit")] = False,
    lease: Annotated[float, typer.Option(min=1, help="seconds a claimed job is this worker's")] = 300.0,
    poll: Annotated[float, typer.Option(min=0.05, help="seconds between looks for new jobs")] = 1.0,
    attempts: Annotated[int, typer.Option(min=1, help="attempts before a job is parked")] = 5,
) -> None:
    """Apply queued memory jobs: the same loop as the in-process worker. On PostgreSQL, run several at once."""
    if not model:
        raise ConfigError("worker needs the extraction model: give --model provider:model or set MEMLAYER_MODEL")
    model_ready(model, api_base=api_base)
    settings = JobSettings(lease=lease, poll=poll, max_attempts=attempts)
    with open_manager(db, model, api_base, jobs=settings) as manager:
        if once:
            taken = manager.run_memory_jobs()
            out.print(f"applied or retried {plural(taken, 'job')}; none is ready now")
            return
        job_worker = manager.job_worker
        signal.signal(signal.SIGTERM, lambda *_: job_worker.stop(0))
        out.print(f"working on {manager.db!r}; Ctrl-C to stop")
        try:
            job_worker.serve()
        except KeyboardInterrupt:
            out.print("stopped")
