"""Recall of the approximate index (`memlayer._internal.search.ann`) on real embeddings, against an exact scan.

    uv run python benchmarks/ann_recall.py --cache /tmp/locomo-cache/openai_nomic-embed

Reads the vectors `benchmarks/locomo.py --cache` kept (a real embedder's vectors of LoCoMo's turns and
their inputs, and of its questions: nothing is copied into the repository), builds the HNSW graph
memlayer builds for a large user, and asks every question. Prints recall@10 (the share of the exact
top 10 among the graph's top 10), the share of the exact top 10 among the `CANDIDATES` rows memlayer
rescores exactly (what search uses), the build time and the graph's memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from memlayer._internal.search.ann import CANDIDATES, NearestRows


def load(folder: Path, kind: str) -> np.ndarray:
    return np.stack([np.load(path) for path in sorted(folder.glob(f"{kind}-*.npy"))]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="one embedder's folder of .npy vectors")
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
    top10, candidates, ms = [], [], []
    for query, truth in zip(queries, exact, strict=True):
        started = time.perf_counter()
        found = nearest.nearest(query, CANDIDATES)
        ms.append((time.perf_counter() - started) * 1000)
        top10.append(len(set(found[:10]) & set(truth)) / 10)
        candidates.append(len(set(found) & set(truth)) / 10)
    print(
        f"recall@10 of the exact top 10: {np.mean(top10):.4f} in the graph's top 10, "
        f"{np.mean(candidates):.4f} in its {CANDIDATES} candidates; graph search p50 {np.median(ms):.2f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
