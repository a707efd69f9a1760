"""Background memory benchmark: what always-on memory adds to a run, and how fast the queue drains.

Run: ``uv run python benchmarks/background.py [--runs 10] [--extraction 2.0] [--jobs 1000]``

The model is memlayer's scripted model (`memlayer.testing.scripted_model`; LiteLLM's ``mock_response``,
no network): a chat answer comes back at once, an extraction reply after ``--extraction`` seconds, as a
slow local model would. Prints:

1. ``agent.run()`` wall time, p50 / p95 over ``--runs`` runs (each a new user, on a DuckDB file): without
   memory, with always-on memory in the background (the default), and in the foreground (today's way);
2. the delay from ``run()`` returning to that run's memories being readable (p50 / p95), with the
   extraction's own latency set to 0 so the number is the queue's: wake-up, plan, commit;
3. jobs per second through one and through three worker processes on PostgreSQL (an embedded server,
   ``--jobs`` queued jobs, a zero-latency model), and how many jobs were applied twice (must be 0).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from memlayer import Agent, DuckDb, JobSettings, MemoryManager, Message, PostgresDb
from memlayer._internal.db import jobs
from memlayer._internal.db.jobs import NewJob
from memlayer.testing import scripted_model
from memlayer.testing.postgres import PostgresServer

MODEL = "openai:gpt-4o-mini"  # never dialled
SPAWN = multiprocessing.get_context("spawn")


def reply_after(seconds: float) -> Any:
    """A scripted reply: chat calls answer at once, extraction calls (JSON-schema mode) after ``seconds``."""

    def answer(request: dict[str, Any]) -> Any:
        if "response_format" not in request:
            return "Noted."
        time.sleep(seconds)
        said = request["messages"][-1]["content"].rsplit("user: ", 1)[-1].split("\n")[0]
        return {"operations": [{"op": "add", "memory": said, "topics": ["bench"], "reason": "said"}]}

    return answer


def manager(db: Any, **settings: Any) -> MemoryManager:
    # Keyword search only: the offline embedder's time would hide the queue's (benchmarks/extraction.py measures it).
    return MemoryManager(
        model=MODEL, db=db, mode="json_schema", provider_retries=0, embedder="lexical", jobs=JobSettings(**settings)
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_times(mode: str, runs: int, extraction: float) -> list[float]:
    """Seconds each ``agent.run`` took, each for a new user (so no run waits for an earlier one's memories)."""
    with tempfile.TemporaryDirectory() as tmp, DuckDb(Path(tmp) / "bench.duckdb") as db:
        mgr = manager(db, drain_timeout=(runs + 1) * extraction + 30)
        agent = Agent(model=MODEL, db=db, memory_manager=mgr, update_memory_on_run=mode != "off",
                      memory_mode="foreground" if mode == "foreground" else "background")  # fmt: skip
        times = []
        with scripted_model(*[reply_after(extraction)] * (2 * runs + 2)):
            agent.run("I like tea", user_id="warm-up")  # LiteLLM's first call, the worker thread started
            agent.wait_for_memories("warm-up")
            for i in range(runs):
                started = time.perf_counter()
                agent.run(f"I collect stamps number {i}", user_id=f"user-{i}")
                times.append(time.perf_counter() - started)
            mgr.job_worker.stop()  # the extractions still queued finish inside the script's block
    return times


def readable_delays(runs: int) -> list[float]:
    """Seconds from ``run()`` returning to its memory being readable, with a zero-latency extraction."""
    with tempfile.TemporaryDirectory() as tmp, DuckDb(Path(tmp) / "bench.duckdb") as db:
        agent = Agent(model=MODEL, db=db, memory_manager=manager(db), update_memory_on_run=True)
        delays = []
        with scripted_model(*[reply_after(0.0)] * (2 * runs)):
            for i in range(runs):
                response = agent.run(f"I collect stamps number {i}", user_id=f"user-{i}")
                ended = time.perf_counter()
                assert response.memory_job is not None and response.memory_job.wait(30)
                delays.append(time.perf_counter() - ended)
                assert agent.get_user_memories(user_id=f"user-{i}"), "the memory is readable"
    return delays


def work(dsn: str, barrier: Any) -> tuple[float, float, int]:
    """One worker process: warm up (LiteLLM's import, a first call), wait for the others, drain the queue."""
    with PostgresDb(dsn, max_size=2) as db, scripted_model(*[reply_after(0.0)] * 100_000):
        mgr = manager(db, poll=0.05)
        mgr.create_user_memories("warm-up: I like tea", "warm-up")
        barrier.wait(300)
        started = time.perf_counter()
        taken = mgr.run_memory_jobs()
        return started, time.perf_counter(), taken


def throughput(server: PostgresServer, name: str, workers: int, count: int) -> dict[str, float]:
    dsn = server.create_database(name)
    with PostgresDb(dsn) as db:
        with db.transaction() as conn:
            for i in range(count):
                job = NewJob(f"job-{i:05d}", f"user-{i % 50}", [Message(content=f"I collect stamps number {i}")])
                jobs.enqueue(conn, job, jobs.utc_now())
        with SPAWN.Manager() as sync, SPAWN.Pool(workers) as pool:
            barrier = sync.Barrier(workers)
            results = pool.starmap(work, [(dsn, barrier)] * workers)
        first, last = min(r[0] for r in results), max(r[1] for r in results)
        done = db.sql("SELECT count(*) FROM memory_jobs WHERE status = 'done'")[0][0]
        # Each application commits one usage row and one event with the job's done mark: more rows than
        # jobs would be a job applied twice.
        applied = db.sql("SELECT count(*) FROM llm_calls WHERE purpose = 'extraction' AND status = 'ok'"
                         " AND user_id <> 'warm-up'")[0][0]  # fmt: skip
        events = db.sql("SELECT count(*) FROM memory_events WHERE user_id <> 'warm-up'")[0][0]
    return {"jobs": count, "done": done, "applications": applied, "events": events,
            "applied_twice": max(0, applied - count), "jobs_per_s": count / (last - first),
            "seconds": last - first}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--extraction", type=float, default=2.0, help="seconds an extraction reply takes")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--durable", action="store_true", help="fsync on every commit (off by default, as in tests)")
    parser.add_argument("--skip-runs", action="store_true", help="only the PostgreSQL throughput")
    args = parser.parse_args()

    if not args.skip_runs:
        agent_numbers(args)
    with PostgresServer(durable=args.durable) as server:
        for workers in (1, 3):
            numbers = throughput(server, f"bench_{workers}", workers, args.jobs)
            shown = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items())
            print(f"PostgreSQL, {workers} worker process(es): {shown}", flush=True)


def agent_numbers(args: argparse.Namespace) -> None:
    print(f"agent.run() wall time, {args.runs} runs, extraction reply after {args.extraction} s (ms):")
    base = None
    for mode in ("off", "background", "foreground"):
        times = run_times(mode, args.runs, args.extraction)
        p50, p95 = pct(times, 0.5) * 1000, pct(times, 0.95) * 1000
        base = p50 if base is None else base
        print(f"  memory {mode:<10}  p50 {p50:8.1f}  p95 {p95:8.1f}  ({p50 - base:+.1f} ms over off, p50)", flush=True)
    delays = readable_delays(max(args.runs, 20))
    print(f"run end -> memories readable, zero-latency extraction (ms): p50 {pct(delays, 0.5) * 1000:.1f}"
          f"  p95 {pct(delays, 0.95) * 1000:.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
