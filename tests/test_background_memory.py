"""Background memory: always-on extraction as a durable job, applied exactly once, in order, with retries.

Why a scripted model and not cassettes: these tests are about when and how often an extraction is
applied (a reply held back until the run has returned, a provider that fails N times, a process killed
mid-call), which a recording cannot stage; the stores are real (DuckDB files, a PostgreSQL server).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import litellm
import pytest
from typer.testing import CliRunner

from memlayer import (
    Agent,
    ConfigError,
    DuckDb,
    ExtractionResult,
    JobSettings,
    MemoryManager,
    Message,
    PostgresDb,
    StorageError,
    Store,
)
from memlayer._internal.cli import app
from memlayer._internal.db import jobs
from memlayer._internal.db.jobs import NewJob
from memlayer._internal.memory.background import JobWorker
from memlayer.testing import scripted_model

from .job_crash_child import POINTS, extraction, manager_on
from .job_crash_child import main as crash_child

MODEL = "openai:gpt-4o-mini"  # never dialled: the scripted model answers
CHILD = Path(__file__).with_name("job_crash_child.py")
FAST = JobSettings(retry_delay=0.01, max_retry_delay=0.05, poll=0.02, read_wait=10)


def ops(memory: str, op: str = "add", target: str | None = None) -> dict[str, Any]:
    operation = {"op": op, "memory": memory, "topics": ["home"], "reason": "said", "target": target}
    return {"operations": [{k: v for k, v in operation.items() if v is not None}]}


def down() -> Exception:
    return litellm.ServiceUnavailableError("overloaded", llm_provider="openai", model="gpt-4o-mini")


def manager(db: Store, settings: JobSettings = FAST) -> MemoryManager:
    return MemoryManager(model=MODEL, db=db, mode="json_schema", provider_retries=0, max_retries=0, jobs=settings)


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def job_rows(db: Store) -> list[tuple[Any, ...]]:
    with db.reading() as conn:
        return conn.execute("SELECT user_id, status, attempts FROM memory_jobs ORDER BY seq").fetchall()


def test_a_run_returns_before_its_extraction_and_the_next_run_reads_it(db: DuckDb) -> None:
    agent = Agent(model=MODEL, db=db, memory_manager=manager(db), update_memory_on_run=True)
    release = threading.Event()

    def held_back(_: dict[str, Any]) -> dict[str, Any]:
        assert release.wait(10)
        return ops("Lives in Porto")

    with scripted_model("Nice, Porto!", held_back, "You live in Porto.", {"operations": []}) as model:
        first = agent.run("I moved to Porto.", user_id="ana")
        # The answer is back and stored while the extraction is still waiting for its reply.
        assert first.content == "Nice, Porto!" and first.memory_changes == [] and not first.memory_job.done
        assert db.sql("SELECT role FROM messages ORDER BY seq") == [("user",), ("assistant",)]
        assert job_rows(db) == [("ana", "running", 1)]
        release.set()
        second = agent.run("Where do I live?", user_id="ana")  # its context waits for the queued turn
        assert agent.wait_for_memories("ana", timeout=10)
    assert "Lives in Porto" in model.system_prompt(2)
    assert second.content == "You live in Porto." and first.memory_job.done
    assert [m.memory for m in agent.get_user_memories(user_id="ana")] == ["Lives in Porto"]
    assert [c.memory for c in first.memory_job.result.changes] == ["Lives in Porto"]
    assert job_rows(db) == [("ana", "done", 1), ("ana", "done", 1)]


def test_the_manager_queues_with_a_handle_sync_and_async(db: DuckDb) -> None:
    mgr = manager(db)
    with scripted_model(ops("Likes tea"), ops("Likes jazz")):
        job = mgr.create_user_memories("I like tea", "ana", background=True)
        assert job.wait(10) and [c.memory for c in job.result.changes] == ["Likes tea"]
        ajob = asyncio.run(mgr.acreate_user_memories("I like jazz", "ana", background=True))
        assert ajob.wait(10) and ajob.done
    assert sorted(m.memory for m in mgr.get_user_memories("ana")) == ["Likes jazz", "Likes tea"]
    with pytest.raises(ConfigError, match="user_id"):
        mgr.create_user_memories("x", "", background=True)
    with pytest.raises(ConfigError, match="memory_mode"):
        Agent(model=MODEL, db=db, memory_mode="later")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_attempts"):
        JobSettings(max_attempts=0)
    for bad in (-1, float("nan"), float("inf"), True, "5"):
        with pytest.raises(ConfigError, match=r"JobSettings\.poll must be a number of seconds >= 0"):
            JobSettings(poll=bad)  # type: ignore[arg-type]
    assert job_rows(db) == [("ana", "done", 1), ("ana", "done", 1)]


def test_a_provider_down_for_a_while_then_back_loses_no_turn(db: DuckDb) -> None:
    mgr = manager(db)
    outage = [down() for _ in range(4)]

    def answer(request: dict[str, Any]) -> Any:
        if outage:
            raise outage.pop()
        turn = re.findall(r"turn (\d)", request["messages"][-1]["content"])[-1]
        return ops(f"Fact number {turn}")

    with scripted_model(*[answer] * 7) as model:
        handles = [mgr.create_user_memories(f"turn {n}: fact number {n}", "ana", background=True) for n in (1, 2, 3)]
        wait_until(lambda: all(h.done for h in handles))
    assert model.calls == 7  # 4 failed attempts, then one per turn
    assert [e.new_memory for e in mgr.get_user_events("ana")] == ["Fact number 1", "Fact number 2", "Fact number 3"]
    assert [row[1] for row in job_rows(db)] == ["done", "done", "done"]
    assert db.sql("SELECT status, count(*) FROM llm_calls GROUP BY status ORDER BY status") == [("error", 4), ("ok", 3)]


def test_a_job_that_keeps_failing_is_parked_visible_and_can_be_retried_or_dropped(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.duckdb")
    with DuckDb(path) as db:
        mgr = manager(db, JobSettings(max_attempts=2, retry_delay=0.01, poll=0.02))
        with scripted_model(down(), down()):
            job = mgr.create_user_memories("I live in Porto", "ana", background=True)
            wait_until(lambda: job_rows(db) == [("ana", "dead", 2)])
        assert "the provider failed" in str(job.error) and not job.done
        parked = db.sql("SELECT user_id, attempts, last_error FROM parked_jobs")
        assert [(u, a, "the provider failed" in e) for u, a, e in parked] == [("ana", 2, True)]
        mgr.job_worker.stop()
    runner = CliRunner()
    listed = runner.invoke(app, ["jobs", "list", "--status", "dead", "--json", "--db", path])
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.stdout)
    assert report["counts"] == {"pending": 0, "running": 0, "done": 0, "dead": 1}
    assert [j["job_id"] for j in report["jobs"]] == [job.job_id]
    stats = json.loads(runner.invoke(app, ["stats", "--json", "--db", path]).stdout)
    assert (stats["jobs_queued"], stats["jobs_parked"]) == (0, 1)
    refused = runner.invoke(app, ["jobs", "drop", "no-such-job", "--db", path])
    assert refused.exit_code == 1 and "no memory job" in refused.stderr
    assert runner.invoke(app, ["jobs", "retry", job.job_id, "--db", path]).exit_code == 0
    with DuckDb(path) as db, scripted_model(ops("Lives in Porto")):
        assert job_rows(db) == [("ana", "pending", 0)]
        assert manager(db).run_memory_jobs() == 1  # what `memlayer worker --once` runs
        assert job_rows(db) == [("ana", "done", 1)]
        with pytest.raises(ConfigError, match="only a parked"), db.transaction() as conn:
            jobs.drop_job(conn, job.job_id)
    assert runner.invoke(app, ["jobs", "list", "--db", path]).exit_code == 0


def test_normal_exit_drains_the_jobs_this_process_queued(db: DuckDb) -> None:
    mgr = manager(db, JobSettings(drain_timeout=10))

    def slow(_: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.3)
        return ops("Likes tea")

    with scripted_model(slow):
        job = mgr.create_user_memories("I like tea", "ana", background=True)
        mgr.job_worker.stop()  # what the atexit hook calls
        assert job.done
    assert job_rows(db) == [("ana", "done", 1)]


def test_kill_9_at_each_point_loses_no_job_and_applies_none_twice(tmp_path: Path) -> None:
    # Forked, not spawned: a child inherits this process's LiteLLM, whose import costs seconds of CPU
    # in each fresh interpreter (benchmarks/background_kills.py spawns fresh ones, on both stores).
    fork = multiprocessing.get_context("fork")
    for point in POINTS:
        child = fork.Process(target=crash_child, args=(str(tmp_path / f"{point}.duckdb"), point, f"job-{point}", "ana"))
        child.start()
        child.join(60)
        assert child.exitcode == -signal.SIGKILL, (point, child.exitcode)
    for point in POINTS:
        with DuckDb(tmp_path / f"{point}.duckdb") as db:
            applied_before, job_id = point == "committed", f"job-{point}"
            with scripted_model(extraction(job_id)) as model:
                assert manager_on(db).run_memory_jobs() == (0 if applied_before else 1), point
            assert model.calls == (0 if applied_before else 1), point
            assert job_rows(db) == [("ana", "done", 1 if point in ("queued", "committed") else 2)], point
            assert db.sql("SELECT memory FROM current_memories") == [(f"Fact of job {job_id}",)], point
            assert db.sql("SELECT count(*) FROM memory_events") == [(1,)], point
            assert db.sql("SELECT count(*) FROM llm_calls WHERE status = 'ok'") == [(1,)], point


# -- PostgreSQL: several workers at once --------------------------------------------------------------


def test_three_workers_on_postgres_take_each_job_once_in_each_users_order(fresh_postgres_dsn: str) -> None:
    users, turns = ["ana", "bo", "cy"], 12
    with PostgresDb(fresh_postgres_dsn) as db:
        with db.transaction() as conn:
            for turn in range(turns):
                for user in users:
                    job = NewJob(f"{user}-{turn:02d}", user, [Message(content=f"I said turn {turn:02d}")])
                    jobs.enqueue(conn, job, jobs.utc_now())

        def answer(request: dict[str, Any]) -> dict[str, Any]:
            time.sleep(0.005)  # long enough for the workers to overlap
            return ops(f"Said turn {request['messages'][-1]['content'].split('turn ')[-1][:2]}")

        stores = [PostgresDb(fresh_postgres_dsn, max_size=2) for _ in range(3)]
        with scripted_model(*[answer] * (turns * len(users))):
            threads = [threading.Thread(target=manager(s).run_memory_jobs) for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        for store in stores:
            store.close()
        assert [row[1:] for row in job_rows(db)] == [("done", 1)] * (turns * len(users))
        assert db.sql("SELECT count(*) FROM llm_calls WHERE purpose = 'extraction'") == [(turns * len(users),)]
        for user in users:
            events = db.sql("SELECT new_memory FROM memory_events WHERE user_id = ? ORDER BY seq", [user])
            assert [e[0] for e in events] == [f"Said turn {t:02d}" for t in range(turns)]


def test_a_lapsed_lease_passes_the_job_on_and_the_first_worker_cannot_apply_it(fresh_postgres_dsn: str) -> None:
    with PostgresDb(fresh_postgres_dsn) as db:
        with db.transaction() as conn:
            jobs.enqueue(conn, NewJob("j1", "ana", [Message(content="I live in Porto")]), jobs.utc_now())
        short = JobSettings(lease=0.2, poll=0.02)
        slow_worker = JobWorker(db, manager(db)._apply_job, short)
        with db.transaction() as conn:
            lost = jobs.claim(conn, "first", timedelta(seconds=0.2), jobs.utc_now())
        assert lost is not None and job_rows(db) == [("ana", "running", 1)]
        time.sleep(0.3)
        with scripted_model(ops("Lives in Porto")):
            assert slow_worker.drain() == 1
        assert job_rows(db) == [("ana", "done", 2)]
        with pytest.raises(StorageError, match="taken by another worker"), db.transaction() as conn:
            jobs.complete(conn, lost, jobs.utc_now())
        assert db.sql("SELECT count(*) FROM memory_events") == [(1,)]


def test_erasing_a_user_deletes_their_queued_jobs_which_hold_their_words(db: DuckDb) -> None:
    with db.transaction() as conn:
        jobs.enqueue(conn, NewJob("j1", "ana", [Message(content="I live in Porto")]), jobs.utc_now())
        jobs.enqueue(conn, NewJob("j2", "bo", [Message(content="I live in Lyon")]), jobs.utc_now())
    assert manager(db).erase_user("ana")["memory_jobs"] == 1
    assert job_rows(db) == [("bo", "pending", 0)]


def test_a_job_the_worker_took_before_it_was_tracked_is_not_waited_for(db: DuckDb) -> None:
    mgr = manager(db)
    with db.transaction() as conn:
        jobs.enqueue(conn, NewJob("j1", "ana", [Message(content="I like tea")]), jobs.utc_now())
    with scripted_model(ops("Likes tea")):
        assert mgr.run_memory_jobs() == 1  # taken between the run's commit and the agent's `track`
    job = mgr._track_job(NewJob("j1", "ana", []))
    assert job.done and job.wait(0) and [c.memory for c in job.result.changes] == ["Likes tea"]
    assert mgr.wait_for_memories("ana", timeout=0)


def test_a_job_tracked_between_an_empty_look_and_the_sleep_is_applied_at_once(db: DuckDb) -> None:
    # The race staged exactly: the loop's look finds no job, then the job is queued and tracked before the
    # loop sleeps. With a poll of a minute, only a kept wake-up applies it within seconds.
    applied = threading.Event()

    def apply(job: Any, probe: Any) -> Any:
        with db.transaction() as conn:
            jobs.complete(conn, job, jobs.utc_now())
        applied.set()
        return ExtractionResult()

    worker = JobWorker(db, apply, JobSettings(poll=60))
    looked = worker.step
    staged = threading.Event()

    def step_then_queue() -> bool:
        worked = looked()
        if not worked and not staged.is_set():
            staged.set()
            with db.transaction() as conn:
                jobs.enqueue(conn, NewJob("j1", "ana", [Message(content="I live in Porto")]), jobs.utc_now())
            worker.track("j1", "ana")
        return worked

    worker.step = step_then_queue  # type: ignore[method-assign]
    worker.start()
    try:
        assert applied.wait(10), "the job waited for the next poll"
    finally:
        worker.stop(timeout=2)
