"""One large user's search with and without the approximate index (`memlayer._internal.search.ann`).

    uv run python benchmarks/ann_search.py --rows 100000

One user's in-process index (`memlayer._internal.search.index.UserIndex`) of ``--rows`` memories: random unit
vectors of 384 dims (no real set that large could be embedded here; recall on real vectors is
`benchmarks/ann_recall.py`) and texts of eight words drawn from a Zipf law over 20,000 words, so a few
words are in many memories and most in few, as in real text. 100 queries (three Zipf words, and a vector
near a random memory's) are ranked exactly, then through the graph once it is built; prints the build
time, the graph's memory, the p50 of each and how many of the exact top 10 the graph's search keeps.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from memlayer._internal.db.vectors import LoadedRows
from memlayer._internal.search import ann, candidates
from memlayer._internal.search.filters import SearchFilters
from memlayer._internal.search.index import UserIndex

VOCABULARY, DIM = 20_000, 384


def zipf_words(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    vocabulary = np.array([f"word{i}" for i in range(VOCABULARY)])
    return vocabulary[np.minimum(rng.zipf(1.3, shape) - 1, VOCABULARY - 1)]


def user_index(rows: int, rng: np.random.Generator) -> UserIndex:
    vectors = rng.standard_normal((rows, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [" ".join(words) for words in zipf_words(rng, (rows, 8))]
    times = [datetime(2025, 1, 1) + timedelta(seconds=i) for i in range(rows)]
    loaded = LoadedRows(
        [f"m{i}" for i in range(rows)],
        [1] * rows,
        texts,
        [[] for _ in range(rows)],
        [None] * rows,
        [None] * rows,
        [None] * rows,
        times,
        times,
        [None] * rows,
        [v.tobytes() for v in vectors],
        [None] * rows,
        [(None,) * 5] * rows,
    )
    return UserIndex("big", loaded)


def ranked(index: UserIndex, queries: list[tuple[str, np.ndarray]]) -> tuple[float, list[list[int]]]:
    ms, found = [], []
    for text, vector in queries:
        started = time.perf_counter()
        found.append(candidates.fuse(index, text, vector, SearchFilters(), 10).rows)
        ms.append((time.perf_counter() - started) * 1000)
    return float(np.median(ms)), found


def restore(index: UserIndex, path: Path) -> None:
    """Give the index the graph a previous run built and saved (a build takes minutes at 100k rows)."""
    from usearch.index import Index

    nearest = ann.NearestRows(index._vectors.dim)
    nearest._graph = Index.restore(str(path))
    nearest.covered = len(index)
    nearest.build_seconds = float(path.with_suffix(".seconds").read_text())
    nearest.ready.set()
    index._vectors.nearest = nearest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--graph", type=Path, help="keep the built graph in this file and reuse it on the next run (same --rows)"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    index = user_index(args.rows, rng)
    near = index._vectors.matrix[rng.integers(0, args.rows, 100)] + 0.7 * rng.standard_normal((100, DIM))
    near = (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)
    queries = [(" ".join(words), vector) for words, vector in zip(zipf_words(rng, (100, 3)), near, strict=True)]
    threshold, ann.ANN_MIN_ROWS = ann.ANN_MIN_ROWS, None
    exact_ms, exact = ranked(index, queries)
    ann.ANN_MIN_ROWS = threshold or 20_000  # off by default: on from 20k rows for this run
    if args.graph is not None and args.graph.exists():
        restore(index, args.graph)
    candidates.fuse(index, *queries[0], SearchFilters(), 10)  # starts the build in the background
    nearest = index._vectors.nearest
    if nearest is None:
        raise SystemExit(f"no graph: {args.rows} rows is under ANN_MIN_ROWS ({ann.ANN_MIN_ROWS}) or usearch is missing")
    nearest.ready.wait()
    if args.graph is not None and not args.graph.exists():
        nearest._graph.save(str(args.graph))
        args.graph.with_suffix(".seconds").write_text(f"{nearest.build_seconds}")
    print(
        f"{args.rows:,} memories: graph built in {nearest.build_seconds:.1f} s (one thread), "
        f"{nearest.memory_bytes / 2**20:.0f} MB"
    )
    graph_ms, found = ranked(index, queries)
    kept = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
    print(
        f"search p50: exact {exact_ms:.1f} ms, with the graph {graph_ms:.1f} ms; "
        f"fused top 10 kept {kept:.3f} of the exact top 10"
    )


if __name__ == "__main__":
    sys.exit(main())
