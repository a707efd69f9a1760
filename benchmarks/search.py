"""Search at scale: 1M memories over 1k users in one DuckDB file, plus one user with 100k.

    uv run python benchmarks/search.py                 # the full size (about 2 GB on disk, in a temp dir)
    uv run python benchmarks/search.py --quick         # 100 users x 1k + one of 10k, for a smoke run

Memories are synthetic: six words drawn from a small vocabulary, and a random unit vector of 384
floats (the offline embedder's size) stored as the real schema stores it. Embedding 1.1M texts
with the offline embedder would take hours on this machine and says nothing about search. The
bulk import writes the rows with DuckDB from numpy columns, one user's rows together (``--layout
by-user``, as an import sorted by user_id leaves them; ids are zero-padded so that order is the
string order DuckDB's zone maps prune by) or round-robin over users (``--layout interleaved``, as live
traffic leaves them).

Searches go through ``MemoryManager.search_user_memories`` with an embedder that returns a
precomputed random query vector, so the embedding is excluded and everything else is measured: the
first search of a user (it loads the user's rows), then repeated searches (the loaded index).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from memlayer import DuckDb, MemoryManager

WORDS = (
    "apple banana coffee python rust travel lisbon porto dog cat guitar piano running yoga sushi pizza wine tea "
    "book movie hiking skiing chess garden nurse teacher doctor painting music football tennis swimming cooking "
    "vegan spicy morning evening sister brother mother father daughter son birthday wedding holiday beach "
    "mountain city village car bicycle train flight hotel camping kayak jazz rock opera poetry novel history"
).split()
MODEL = "synthetic:random-384"


class PrecomputedEmbedder:
    """Hands out random unit vectors at no cost: search is timed without the embedding call."""

    name = MODEL
    local = True

    def __init__(self, dim: int, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.dim = dim
        self.stored: dict[str, npt.NDArray[np.float32]] = {}  # a text embedded as a memory, as a real embedder

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = self.rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        normalised: npt.NDArray[np.float32] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        self.stored.update(zip(texts, normalised, strict=True))
        return normalised

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """A random vector; a memory's own text gets the memory's vector (a real embedder's nearest)."""
        known = self.stored.get(text)
        return known if known is not None else self.embed_documents([text])[0]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def owners(users: int, per_user: int, big: int, layout: str) -> npt.NDArray[np.int64]:
    """User number of each row: the big user is number ``users``."""
    small = np.repeat(np.arange(users), per_user)
    if layout == "interleaved":
        small = np.tile(np.arange(users), per_user)
    return np.concatenate([small, np.full(big, users)])


def bulk_import(db: DuckDb, owner: npt.NDArray[np.int64], dim: int, chunk: int = 100_000) -> tuple[float, float]:
    """Write every row through the real schema. Returns (seconds generating data, seconds writing)."""
    rng = np.random.default_rng(0)
    words = np.array(WORDS)
    base = np.datetime64("2025-01-01T00:00:00", "us")
    generating = writing = 0.0
    with db.transaction() as conn:
        conn.execute("INSERT INTO embedders VALUES (?, ?, now()::TIMESTAMP)", [MODEL, dim])
        for start in range(0, owner.size, chunk):
            t0 = time.perf_counter()
            rows = np.arange(start, min(owner.size, start + chunk))
            picked = words[rng.integers(0, len(words), (rows.size, 6))]
            texts = np.array([" ".join(r) for r in picked], dtype=object)
            vectors = rng.standard_normal((rows.size, dim), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            columns = {
                "memory_id": np.char.add("m", rows.astype(str)).astype(object),
                "user_id": np.char.add("user", np.char.zfill(owner[rows].astype(str), 5)).astype(object),
                "memory": texts,
                "ts": base + (rows * 1000).astype("timedelta64[ms]"),
                "embedding": np.array([v.tobytes() for v in vectors], dtype=object),
            }
            t1 = time.perf_counter()
            conn.register("batch", columns)
            conn.execute(
                "INSERT INTO memories (memory_id, version, user_id, memory, memory_key, topics, created_at,"
                " recorded_from)"
                " SELECT memory_id, 1, user_id, memory, lower(memory), []::VARCHAR[], ts, ts FROM batch"
            )
            conn.execute(
                "INSERT INTO memory_embeddings (memory_id, version, user_id, model, embedding)"
                f" SELECT memory_id, 1, user_id, '{MODEL}', embedding FROM batch"
            )  # named columns: the input's vector (a later column) stays empty, as for a memory without input
            conn.unregister("batch")
            generating += t1 - t0
            writing += time.perf_counter() - t1
        t2 = time.perf_counter()
    writing += time.perf_counter() - t2  # the commit
    return generating, writing


def percentiles(ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered):6.2f} ms  p95 {p95:6.2f} ms  (n={len(ordered)})"


def timed_searches(
    manager: MemoryManager, users: list[str], repeats: int, rng: random.Random
) -> tuple[list[float], list[float]]:
    cold: list[float] = []
    warm: list[float] = []
    for user in users:
        for i in range(repeats):
            query = " ".join(rng.sample(WORDS, 3))
            t0 = time.perf_counter()
            found = manager.search_user_memories(query, user_id=user, limit=10)
            (cold if i == 0 else warm).append((time.perf_counter() - t0) * 1000)
            assert len(found) == 10 and all(m.user_id == user for m in found)
    return cold, warm


def wait_for_graphs(db: DuckDb, user: str) -> bool:
    """Wait for the big user's approximate index (built in the background on its first search); print
    its build time and memory. False when it is not built (usearch missing, or a small user)."""
    from memlayer._internal.search.ann import ann_available
    from memlayer._internal.search.indexes import index_for

    with db.reading() as conn:
        index = index_for(db, MODEL).user(conn, user)
    nearest = index._vectors.nearest  # the memories' vectors (the inputs have none here)
    if nearest is None or not ann_available():
        print("approximate index: not built (pip install 'memlayer-ai[ann]', and 30k memories or more)")
        return False
    before = rss_mb()
    nearest.ready.wait()
    print(
        f"approximate index: built in {nearest.build_seconds:.1f} s in the background (one thread), "
        f"graph {nearest.memory_bytes / 2**20:.0f} MB (RSS now {before:.0f} MB)"
    )
    return nearest.failed is None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=1000)
    parser.add_argument("--big", type=int, default=100_000, help="memories of the one big user")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--layout", choices=("by-user", "interleaved"), default="by-user")
    parser.add_argument("--searched-users", type=int, default=200, help="users searched, each --repeats times")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="100 users x 1k + one of 10k")
    args = parser.parse_args()
    if args.quick:
        args.users, args.big, args.searched_users = 100, 10_000, 50
    owner = owners(args.users, args.per_user, args.big, args.layout)
    print(f"{owner.size:,} memories: {args.users} users x {args.per_user} + one user x {args.big:,}, "
          f"dim {args.dim}, layout {args.layout}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "search.duckdb"
        with DuckDb(path) as db:
            with db.reading() as conn:
                conn.execute("SET enable_progress_bar = false")
            generating, writing = bulk_import(db, owner, args.dim)
        size = path.stat().st_size / 2**30
        print(f"bulk import: {writing:.1f} s writing (+ {generating:.1f} s making synthetic data), file {size:.2f} GB")
        start_rss = rss_mb()
        with DuckDb(path) as db:  # a fresh open: nothing loaded
            manager = MemoryManager(db=db, embedder=PrecomputedEmbedder(args.dim))
            rng = random.Random(7)
            users = [f"user{u:05d}" for u in rng.sample(range(args.users), args.searched_users)]
            cold, warm = timed_searches(manager, users, args.repeats, rng)
            print(f"search, first of a user (loads its {args.per_user} rows): {percentiles(cold)}")
            print(f"search, user already loaded:                      {percentiles(warm)}")
            big = f"user{args.users:05d}"
            big_cold, big_warm = timed_searches(manager, [big], 50, rng)
            print(f"search, big user, first (loads {args.big:,} rows): {big_cold[0]:.0f} ms")
            print(f"search, big user, loaded, exact scan:             {percentiles(big_warm)}")
            graphs = wait_for_graphs(db, big)
            if graphs:
                _, big_graph = timed_searches(manager, [big], 200, rng)
                print(f"search, big user, loaded, approximate index:      {percentiles(big_graph)}")
            # A write between searches is applied to the loaded index, not reloaded.
            t0 = time.perf_counter()
            # Words no synthetic memory uses, so only a stale index could miss the new one.
            manager.add_user_memory("adopted a quokka named zebulon", user_id=users[0])
            write_ms = (time.perf_counter() - t0) * 1000
            found = manager.search_user_memories("adopted a quokka named zebulon", user_id=users[0], limit=1)
            assert [m.memory for m in found] == ["adopted a quokka named zebulon"], found
            print(f"add then search, loaded user: add {write_ms:.1f} ms, and the search finds it")
            print(f"memory: RSS {rss_mb():.0f} MB ({rss_mb() - start_rss:+.0f} MB for "
                  f"{len(users) * args.per_user + args.big:,} loaded rows); peak "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
