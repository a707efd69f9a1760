"""The two stores side by side: DuckDB (one file) and PostgreSQL (one server), through memlayer's own write path.

    uv run python benchmarks/store.py            # a durable embedded server (fsync on), 100k bulk rows
    uv run python benchmarks/store.py --quick    # fewer commits and 10k bulk rows, for a smoke run
    uv run python benchmarks/store.py --dsn postgresql://...   # an existing server (a database of its own)

Every write is a `ChangeSet` add plus its 384-d float32 vector, in one transaction, as
`MemoryManager.add_user_memory` writes it. Rows:
- single commit: median and p95 of one such transaction, one process;
- direct add: median and p95 of `MemoryManager.add_user_memory` itself (keyword search only);
- writes/s: commits per second from 1 process, and from 8 processes at once on distinct users
  (Postgres only: a DuckDB file takes one writing process; a second gets DatabaseLockedError);
- bulk load: 100k memories with vectors, 1,000 per transaction;
- user_revisions bump: what the revision's upsert costs a write, measured alone (Postgres writes it;
  DuckDB skips it, and this is why: memlayer._internal.db.revisions);
- search: `MemoryManager.search_user_memories` (vectors + BM25 + recency) for a user of 1,000 memories
  and one of 100,000 (10,000 with --quick): the first search loads the user; on Postgres every
  search also reads the user's revision, to notice other processes' writes.
The embedded server runs with fsync on, so a Postgres commit waits for its WAL flush as a real one
does; DuckDB's file is on the same disk.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memlayer import MemoryManager
from memlayer._internal.clock import now as utcnow
from memlayer._internal.db import DuckDb, PostgresDb, Store, vectors
from memlayer._internal.db.changes import ChangeSet, Provenance
from memlayer.testing.postgres import PostgresServer

DIM = 384
# The statement of memlayer._internal.db.revisions.touch_user, run here on both stores to show what it costs.
BUMP = (
    "INSERT INTO user_revisions (user_id, revision) VALUES (?, nextval('user_revisions_seq'))"
    " ON CONFLICT (user_id) DO UPDATE SET revision = excluded.revision"
)
Row = dict[str, str]


def commit_one(db: Store, user: str, text: str, vector: np.ndarray) -> None:
    changes = ChangeSet(Provenance(user, "api", utcnow()))
    memory = changes.add(text, ["bench"])
    with db.transaction() as conn:
        changes.write(conn)
        vectors.write_vectors(conn, user, "bench-embedder", [(memory.memory_id, 1)], vector[None, :])


def single_commits(db: Store, count: int) -> list[float]:
    vector = np.random.default_rng(0).random(DIM, dtype=np.float32)
    ms = []
    for i in range(count):
        start = time.perf_counter()
        commit_one(db, f"single{i % 10}", f"single fact {i}", vector)
        ms.append((time.perf_counter() - start) * 1000)
    return ms


def _writer(dsn: str, worker: int, count: int, start: object) -> None:
    with PostgresDb(dsn, max_size=1) as db:
        vector = np.random.default_rng(worker).random(DIM, dtype=np.float32)
        start.wait()  # type: ignore[attr-defined]
        for i in range(count):
            commit_one(db, f"proc{worker}", f"worker {worker} fact {i}", vector)


def parallel_rate(dsn: str, processes: int, per_process: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_writer, args=(dsn, w, per_process, start)) for w in range(processes)]
    for w in workers:
        w.start()
    time.sleep(1.5 + 0.3 * processes)  # let every process import and connect before the clock starts
    began = time.perf_counter()
    start.set()
    for w in workers:
        w.join()
    if any(w.exitcode != 0 for w in workers):
        raise RuntimeError("a writer process failed")
    return processes * per_process / (time.perf_counter() - began)


def bulk_load(db: Store, rows: int, batch: int = 1_000) -> float:
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for first in range(0, rows, batch):
        user = f"bulk{first // batch % 100}"
        changes = ChangeSet(Provenance(user, "import", utcnow()))
        made = [changes.add(f"bulk fact {i}", ["bench"]) for i in range(first, min(rows, first + batch))]
        vecs = rng.random((len(made), DIM), dtype=np.float32)
        with db.transaction() as conn:
            changes.write(conn)
            vectors.write_vectors(conn, user, "bench-embedder", [(m.memory_id, 1) for m in made], vecs)
    return time.perf_counter() - start


def revision_bump_ms(db: Store, count: int = 200) -> float:
    ms = []
    with db.transaction() as conn:
        for i in range(count):
            start = time.perf_counter()
            conn.execute(BUMP, [f"rev{i % 10}"])
            ms.append((time.perf_counter() - start) * 1000)
    return statistics.median(ms)


class BenchEmbedder:
    """Random unit vectors under the bulk rows' embedder name: search then ranks by vector as well as
    by keywords, as with a real embedder, at no embedding cost (only the search is timed)."""

    name, local = "bench-embedder", True

    def __init__(self) -> None:
        self.rng = np.random.default_rng(7)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.rng.random((len(texts), DIM), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def big_user(db: Store, rows: int, batch: int = 1_000) -> str:
    """One user holding ``rows`` memories with vectors."""
    rng = np.random.default_rng(2)
    for first in range(0, rows, batch):
        changes = ChangeSet(Provenance("big", "import", utcnow()))
        made = [changes.add(f"big user fact {i} about topic {i % 97}", ["bench"]) for i in range(first, first + batch)]
        with db.transaction() as conn:
            changes.write(conn)
            vecs = rng.random((len(made), DIM), dtype=np.float32)
            vectors.write_vectors(conn, "big", "bench-embedder", [(m.memory_id, 1) for m in made], vecs)
    return "big"


def search_latency(db: Store, user: str, searches: int) -> tuple[float, list[float]]:
    """The first search of ``user`` (it loads their rows), then ``searches`` more: ms each."""
    manager = MemoryManager(db=db, embedder=BenchEmbedder())  # type: ignore[arg-type]
    start = time.perf_counter()
    manager.search_user_memories("fact about topic 42", user)
    first = (time.perf_counter() - start) * 1000
    ms = []
    for i in range(searches):
        start = time.perf_counter()
        manager.search_user_memories(f"fact about topic {i % 97}", user)
        ms.append((time.perf_counter() - start) * 1000)
    return first, ms


def percentiles(ms: list[float]) -> str:
    qs = statistics.quantiles(ms, n=20)
    return f"{statistics.median(ms):.2f} / {qs[18]:.2f} ms"


def direct_adds(db: Store, count: int) -> list[float]:
    """``MemoryManager.add_user_memory`` of a new text, keyword search only (no embedding to take out): ms each."""
    manager = MemoryManager(db=db, embedder="lexical")
    ms = []
    for i in range(count):
        start = time.perf_counter()
        manager.add_user_memory(f"direct fact {i}", user_id=f"direct{i % 10}")
        ms.append((time.perf_counter() - start) * 1000)
    return ms


def measure(name: str, db: Store, dsn: str | None, args: argparse.Namespace) -> Row:
    print(f"measuring {name} ...", flush=True)
    row: Row = {"single commit, median / p95": percentiles(single_commits(db, args.commits))}
    row["direct add (add_user_memory), median / p95"] = percentiles(direct_adds(db, args.commits))
    start = time.perf_counter()
    single_commits(db, args.commits)
    row["writes/s, 1 process"] = f"{args.commits / (time.perf_counter() - start):,.0f}"
    if dsn is None:
        row["writes/s, 8 processes"] = "n/a: one writing process per file"
    else:
        row["writes/s, 8 processes"] = f"{parallel_rate(dsn, 8, args.commits // 2):,.0f}"
    row[f"bulk load {args.bulk:,} rows (1k a commit)"] = f"{bulk_load(db, args.bulk):.1f} s"
    row["user_revisions bump (DuckDB skips it)"] = f"{revision_bump_ms(db):.3f} ms"
    first, ms = search_latency(db, "bulk1", 200)  # a user of the bulk load: 1,000 memories
    row["search, 1k-memory user: first (loads it)"] = f"{first:.1f} ms"
    row["search, 1k-memory user: p50 / p95"] = percentiles(ms)
    first, ms = search_latency(db, big_user(db, args.big), 50)
    row[f"search, {args.big // 1000}k-memory user: first (loads it)"] = f"{first:.0f} ms"
    row[f"search, {args.big // 1000}k-memory user: p50 / p95"] = percentiles(ms)
    return row


def print_table(columns: dict[str, Row]) -> None:
    names = list(next(iter(columns.values())))
    width = max(len(n) for n in names)
    cells = {c: max(len(c), *(len(r[n]) for n in names)) for c, r in columns.items()}
    print(f"{'':{width}}  " + "  ".join(f"{c:>{cells[c]}}" for c in columns))
    for n in names:
        print(f"{n:{width}}  " + "  ".join(f"{r[n]:>{cells[c]}}" for c, r in columns.items()))


def run(args: argparse.Namespace, folder: Path, pg_dsn: Callable[[], str]) -> None:
    columns: dict[str, Row] = {}
    with DuckDb(folder / "bench.duckdb") as duck:
        columns["DuckDB (file)"] = measure("DuckDB", duck, None, args)
    dsn = pg_dsn()
    with PostgresDb(dsn) as pg:
        columns["PostgreSQL 18"] = measure("PostgreSQL", pg, dsn, args)
    print_table(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer commits and a 10k bulk load")
    parser.add_argument("--dsn", help="an existing Postgres database to use (its memlayer tables get rows)")
    args = parser.parse_args()
    args.commits = 200 if args.quick else 1_000
    args.bulk = 10_000 if args.quick else 100_000
    args.big = 10_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory(prefix="memlayer-bench-") as tmp:
        if args.dsn:
            run(args, Path(tmp), lambda: args.dsn)
            return
        with PostgresServer(durable=True) as server:
            run(args, Path(tmp), lambda: server.create_database("bench"))


if __name__ == "__main__":
    main()
