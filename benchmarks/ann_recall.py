"""Recall of the approximate index (`memlayer._internal.search.ann`) on real embeddings, against an exact scan.

    uv run python benchmarks/ann_recall.py --cache /tmp/locomo-cache/openai_nomic-embed
    uv run python benchmarks/ann_recall.py --cache /tmp/locomo-cache/openai_nomic-embed --data locomo-dev.json

Reads the vectors `benchmarks/locomo.py --cache` kept (a real embedder's vectors of LoCoMo's turns and
their inputs, and of its questions: nothing is copied into the repository), builds the HNSW graph
memlayer builds for a large user, and asks every question. Prints recall@10 (the share of the exact
top 10 among the graph's top 10), the share of the exact top 10 among the `CANDIDATES` rows memlayer
rescores exactly, the build time and the graph's memory.

With ``--data`` (LoCoMo's dev file, read in place), every dev turn becomes a memory of one user (its
text, the two turns before it as its input, both vectors from the cache) and every question is
searched twice: exactly (`UserIndex.fuse`) and over candidate rows through the graphs
(`memlayer._internal.search.candidates`), with the embedder's fusion weights. Prints how many of the
exact fused top 10 the candidate search keeps, and each search's p50.
``--no-farthest`` leaves out the rows farthest from the query (an ablation: the vector scaling then
rests on the other candidates' lowest similarity).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from memlayer._internal.db.vectors import LoadedRows
from memlayer._internal.search import ann, candidates
from memlayer._internal.search.ann import NearestRows
from memlayer._internal.search.candidates import NEAREST as CANDIDATES
from memlayer._internal.search.filters import SearchFilters
from memlayer._internal.search.index import UserIndex

Vector = np.ndarray | None


def load(folder: Path, kind: str) -> np.ndarray:
    return np.stack([np.load(path) for path in sorted(folder.glob(f"{kind}-*.npy"))]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="one embedder's folder of .npy vectors")
    parser.add_argument("--data", type=Path, help="LoCoMo's dev file: also compare the fused top 10 (see above)")
    parser.add_argument(
        "--no-farthest", action="store_true", help="ablation: no farthest rows, the candidates' lowest similarity only"
    )
    args = parser.parse_args()
    documents, queries = load(args.cache, "doc"), load(args.cache, "query")
    print(
        f"{args.cache.name}: {len(documents):,} stored vectors of {documents.shape[1]} dims, {len(queries):,} queries"
    )
    nearest = NearestRows(documents.shape[1])
    nearest.build(documents, [True] * len(documents))
    print(
        f"build: {nearest.build_seconds:.2f} s on one thread, graph {nearest.memory_bytes / 2**20:.1f} MB "
        f"(vectors alone {documents.nbytes / 2**20:.1f} MB)"
    )
    exact = np.argsort(-(queries @ documents.T), axis=1)[:, :10]
    top10, nearest_rows, ms = [], [], []
    for query, truth in zip(queries, exact, strict=True):
        started = time.perf_counter()
        found = nearest.nearest(query, CANDIDATES)
        ms.append((time.perf_counter() - started) * 1000)
        top10.append(len(set(found[:10]) & set(truth)) / 10)
        nearest_rows.append(len(set(found) & set(truth)) / 10)
    print(
        f"recall@10 of the exact top 10: {np.mean(top10):.4f} in the graph's top 10, "
        f"{np.mean(nearest_rows):.4f} in its {CANDIDATES} candidates; graph search p50 {np.median(ms):.2f} ms"
    )
    if args.no_farthest:
        candidates.FARTHEST = 0
    if args.data is not None:
        fused(args.cache, args.data)


def locomo(
    folder: Path, data: Path
) -> tuple[list[str], list[str], list[Vector], list[Vector], list[tuple[str, Vector]]]:
    """Every dev turn (its text, the two turns before it as its input, both cached vectors) and every
    question with its cached vector."""
    sys.path.insert(0, str(Path(__file__).parent))
    from locomo import CONTEXT_TURNS, asked, memory_of, sessions, turn_text

    from memlayer._internal.search.retrieval import INPUT_CHARS

    def vector(kind: str, text: str) -> Vector:  # None: not in the cache (nomic lacks some inputs)
        path = folder / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:24]}.npy"
        return np.load(path).astype(np.float32) if path.exists() else None

    texts, inputs, questions = [], [], []
    for sample in json.loads(data.read_text()):
        for session in sessions(sample["conversation"]):
            window: list[str] = []
            for turn in session:
                window = [*window[-CONTEXT_TURNS:], turn_text(turn)]
                texts.append(memory_of(window[-1]))
                inputs.append("\n".join(window))
        questions += [qa["question"] for qa, _ in asked(sample)]
    asked_vectors = [(q, v) for q in questions if (v := vector("query", q)) is not None]
    vectors = [vector("doc", t) for t in texts]
    return texts, inputs, vectors, [vector("doc", i[:INPUT_CHARS].strip()) for i in inputs], asked_vectors


def fused(folder: Path, data: Path) -> None:
    """The fused top 10 over candidate rows against the exact one, on LoCoMo's turns and questions."""
    from memlayer._internal.search.fusion import weights_for

    texts, inputs, vectors, input_vectors, asked_vectors = locomo(folder, data)
    index = UserIndex("locomo", loaded_rows(texts, inputs, vectors, input_vectors))
    weights = weights_for(folder.name)
    ann.ANN_MIN_ROWS = 1000
    candidates.fuse(index, *asked_vectors[0], SearchFilters(), 10, weights=weights)  # starts both builds
    for column in (index._vectors, index._input_vectors):
        assert column.nearest is not None and column.nearest.ready.wait()
    for question, query in asked_vectors:  # untimed first: BM25 turns a word's postings into arrays on first use
        index.fuse(question, query, SearchFilters(), 10, weights=weights)
    kept, exact_ms, candidate_ms = [], [], []
    for question, query in asked_vectors:
        started = time.perf_counter()
        exact = index.fuse(question, query, SearchFilters(), 10, weights=weights).rows
        exact_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        found = candidates.fuse(index, question, query, SearchFilters(), 10, weights=weights).rows
        candidate_ms.append((time.perf_counter() - started) * 1000)
        kept.append(len(set(found) & set(exact)) / 10)
    print(
        f"fused top 10 of {len(asked_vectors):,} questions over {len(index):,} memories (text and input vectors): "
        f"the candidate search keeps {np.mean(kept):.4f} of the exact top 10 "
        f"({np.mean(np.array(kept) == 1.0):.3f} of the questions keep all 10); "
        f"p50 exact {np.median(exact_ms):.2f} ms, over candidates {np.median(candidate_ms):.2f} ms"
    )


def loaded_rows(
    texts: list[str], inputs: list[str], vectors: list[np.ndarray], input_vectors: list[np.ndarray]
) -> LoadedRows:
    rows = len(texts)
    times = [datetime(2025, 1, 1) + timedelta(minutes=i) for i in range(rows)]
    return LoadedRows(
        [f"m{i}" for i in range(rows)], [1] * rows, texts, [[] for _ in range(rows)], [None] * rows,
        [None] * rows, list(inputs), times, times, [None] * rows,
        [blob(v) for v in vectors], [blob(v) for v in input_vectors], [(None,) * 5] * rows,
    )  # fmt: skip


def blob(vector: Vector) -> bytes | None:
    return None if vector is None else vector.tobytes()


if __name__ == "__main__":
    sys.exit(main())
