"""Kill -9 at every point of a memory job, many times, on DuckDB and PostgreSQL: 0 jobs lost, 0 applied twice.

Run: ``uv run python benchmarks/background_kills.py [--rounds 3]``

Each kill is a child process (``tests/job_crash_child.py``'s ``main``, forked from this one so that
it inherits LiteLLM's import) that queues one job, works on it with a scripted model, and SIGKILLs
itself at one point: ``queued``, ``claimed``, ``calling`` (inside the model call), ``replied`` (the model
answered; the applying transaction is open) or ``committed``. A fresh worker then drains the store
(on PostgreSQL after the dead child's lease passes). Per store and in total it prints the kills, the
jobs done, the jobs lost (not done), and the jobs applied twice (more than one committed extraction).
The suite runs one kill per point on DuckDB (tests/test_background_memory.py).
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from job_crash_child import LEASE, POINTS, extraction, main, manager_on, open_store

from memlayer.testing import scripted_model
from memlayer.testing.postgres import PostgresServer

FORK = multiprocessing.get_context("fork")


def kill_and_recover(where: str, point: str, job_id: str, user: str) -> tuple[bool, int]:
    """One kill; returns (the child died by SIGKILL, how many times the job's extraction was applied)."""
    child = FORK.Process(target=main, args=(where, point, job_id, user))
    child.start()
    child.join(120)
    killed = child.exitcode == -signal.SIGKILL
    with open_store(where) as db:
        deadline = time.monotonic() + 10 * LEASE
        with scripted_model(*[extraction(job_id)] * 3):
            mgr = manager_on(db)
            while time.monotonic() < deadline:
                mgr.run_memory_jobs()
                if db.sql("SELECT status FROM memory_jobs WHERE job_id = ?", [job_id]) == [("done",)]:
                    break
                time.sleep(0.1)  # a claim of the dead child's: taken again once its lease passes
        applied = db.sql(
            "SELECT count(*) FROM memory_events WHERE user_id = ? AND new_memory = ?",
            [user, f"Fact of job {job_id}"],
        )[0][0]
    return killed, int(applied)


def main_loop(rounds: int) -> None:
    totals = {"kills": 0, "done": 0, "lost": 0, "applied_twice": 0}
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as server:
        dsn = server.create_database("kills")
        for store in ("duckdb", "postgres"):
            counts = {"kills": 0, "done": 0, "lost": 0, "applied_twice": 0}
            for r in range(rounds):
                for point in POINTS:
                    where = dsn if store == "postgres" else str(Path(tmp) / f"{r}-{point}.duckdb")
                    killed, applied = kill_and_recover(where, point, f"{store}-{r}-{point}", f"user-{r}-{point}")
                    counts["kills"] += killed
                    counts["done"] += applied >= 1
                    counts["lost"] += applied == 0
                    counts["applied_twice"] += applied > 1
            print(f"{store:<9} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            for key, value in counts.items():
                totals[key] += value
    print("total     " + ", ".join(f"{k} {v}" for k, v in totals.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="kills per point and store")
    main_loop(parser.parse_args().rounds)
