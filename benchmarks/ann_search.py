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
from memlayer._internal.search.fusion import weights_for
from memlayer._internal.search.index import WEIGHTS, UserIndex, Weights

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


Queries = list[tuple[str, np.ndarray]]


def ranked(index: UserIndex, queries: Queries, weights: Weights) -> tuple[float, list[list[int]]]:
    for text, vector in queries:  # untimed first: BM25 turns a word's postings into arrays on first use
        candidates.fuse(index, text, vector, SearchFilters(), 10, weights=weights)
    ms, found = [], []
    for text, vector in queries:
        started = time.perf_counter()
        found.append(candidates.fuse(index, text, vector, SearchFilters(), 10, weights=weights).rows)
        ms.append((time.perf_counter() - started) * 1000)
    return float(np.median(ms)), found


def real_index(rows: int, folder: Path, data: Path, rng: np.random.Generator) -> tuple[UserIndex, Queries]:
    """``rows`` memories made from LoCoMo's real turns and their cached vectors: row i is turn i mod n,
    its vectors moved a random 0-30 % of the way towards another turn's (so every row is a real
    embedding's neighbour, not a copy); queries are 100 real questions with their cached vectors."""
    sys.path.insert(0, str(Path(__file__).parent))
    from ann_recall import loaded_rows, locomo

    texts, inputs, vectors, input_vectors, asked = locomo(folder, data)
    base, partner = np.arange(rows) % len(texts), rng.integers(0, len(texts), rows)
    share = rng.uniform(0.0, 0.3, rows)

    def blend(column: list[np.ndarray | None]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for i, j, t in zip(base, partner, share, strict=True):
            a, b = column[i], column[j]
            v = None if a is None else a if b is None else (1 - t) * a + t * b
            out.append(None if v is None else (v / np.linalg.norm(v)).astype(np.float32))
        return out

    loaded = loaded_rows([texts[i] for i in base], [inputs[i] for i in base], blend(vectors), blend(input_vectors))
    picked = rng.choice(len(asked), 100, replace=False)
    return UserIndex("big", loaded), [asked[i] for i in picked]


def restore(index: UserIndex, folder: Path) -> None:
    """Give the index the graphs a previous run built and saved (a build takes minutes at 100k rows)."""
    from usearch.index import Index

    for name, column in (("vectors", index._vectors), ("inputs", index._input_vectors)):
        path = folder / f"{name}.usearch"
        if path.exists():
            nearest = ann.NearestRows(column.dim)
            nearest._graph = Index.restore(str(path))
            has = np.flatnonzero(np.asarray(column.has[: len(index)], dtype=bool))
            nearest._least = ann.LeastSimilar(column.matrix[: len(index)], has)
            nearest.covered = len(index)
            nearest.build_seconds = float(path.with_suffix(".seconds").read_text())
            nearest.ready.set()
            column.nearest = nearest


def save(index: UserIndex, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, column in (("vectors", index._vectors), ("inputs", index._input_vectors)):
        path = folder / f"{name}.usearch"
        if column.nearest is not None and not path.exists():
            column.nearest._graph.save(str(path))
            path.with_suffix(".seconds").write_text(f"{column.nearest.build_seconds}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--graph", type=Path, help="keep the built graphs in this folder and reuse them (same data)")
    parser.add_argument("--real", type=Path, help="one embedder's cached vectors (benchmarks/locomo.py --cache)")
    parser.add_argument("--data", type=Path, help="LoCoMo's dev file, with --real: memories from its turns")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    if args.real is not None:
        index, queries = real_index(args.rows, args.real, args.data, rng)
        weights = weights_for(args.real.name)
    else:
        index, queries = user_index(args.rows, rng), []
        near = index._vectors.matrix[rng.integers(0, args.rows, 100)] + 0.7 * rng.standard_normal((100, DIM))
        near = (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)
        queries = [(" ".join(words), vector) for words, vector in zip(zipf_words(rng, (100, 3)), near, strict=True)]
        weights = WEIGHTS
    threshold, ann.ANN_MIN_ROWS = ann.ANN_MIN_ROWS, 0  # off: the exact search
    exact_ms, exact = ranked(index, queries, weights)
    ann.ANN_MIN_ROWS = threshold or min(args.rows, ann.DEFAULT_MIN_ROWS)  # on for this run
    if args.graph is not None:
        restore(index, args.graph)
    candidates.fuse(index, *queries[0], SearchFilters(), 10)  # starts the builds in the background
    graphs = [c.nearest for c in (index._vectors, index._input_vectors) if c.nearest is not None]
    if not graphs:
        raise SystemExit(f"no graph: {args.rows} rows is under ANN_MIN_ROWS ({ann.ANN_MIN_ROWS}) or usearch is missing")
    for graph in graphs:
        graph.ready.wait()
    if args.graph is not None:
        save(index, args.graph)
    built = ", ".join(f"{g.build_seconds:.1f} s and {g.memory_bytes / 2**20:.0f} MB" for g in graphs)
    print(f"{args.rows:,} memories: {len(graphs)} graph(s) (text, input) built in {built} (one thread each)")
    graph_ms, found = ranked(index, queries, weights)
    kept = [len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)]
    print(
        f"search p50: exact {exact_ms:.1f} ms, over candidates {graph_ms:.1f} ms; fused top 10 kept "
        f"{np.mean(kept):.3f} of the exact top 10 ({np.mean(np.array(kept) == 1.0):.2f} of the queries all 10)"
    )


if __name__ == "__main__":
    sys.exit(main())
