"""Approximate nearest rows for a user with many memories: an HNSW graph (``usearch``), built in the background.

**On when ``usearch`` is installed** (``pip install 'memlayer-ai[ann]'``), for users of `DEFAULT_MIN_ROWS`
memories or more (``$MEMLAYER_ANN_MIN_ROWS`` sets another threshold; ``0`` turns it off). Such a user's
`VectorColumn` (the memories' vectors, and separately the inputs') gets a `NearestRows`, built in a
background thread on its first search; searches stay exact until it is ready. Then a search scores
candidate rows only (`memlayer._internal.search.candidates`). Rows appended since the build are added to
the graph before the next search; retired rows stay in it and the search's mask drops them.

Without ``usearch``, search stays exact at every size.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError

__all__ = [
    "ANN_MIN_ROWS",
    "DEFAULT_MIN_ROWS",
    "NearestRows",
    "ann_available",
    "in_background",
    "min_rows",
    "ready_graph",
]

_log = logging.getLogger("memlayer")

# Measured on LoCoMo-derived real e5-small vectors (benchmarks/ann_search.py, docs/embedders.md), p50
# over candidates against exact, every one keeping all of the exact fused top 10: 100k 4.3 against
# 18.3 ms, 50k 4.0 against 8.9, 30k 3.8 against 5.4, 20k 3.5 against 3.0. So from 30k: below, the
# exact search is as fast, and a graph costs memory (about 0.8 KB a row per column, in 8 bits).
DEFAULT_MIN_ROWS = 30_000
ANN_MIN_ROWS: int | None = None  # overrides the environment (tests, benchmarks); 0 is off
CONNECTIVITY = 16  # HNSW "M"
# The graph keeps its vectors in 8 bits (the candidates' similarities are computed again from the
# exact vectors): at 100k e5 rows, under a third of the memory (81 against 273 MB), a tenth of the build
# time and half the search time of 32-bit floats, and the same share of the exact top 10 kept.
DTYPE = "i8"
DIRECTIONS = 256  # `LeastSimilar`: how many of the column's vectors stand for the queries' directions
EXPANSION_ADD = 128  # HNSW "efConstruction"
EXPANSION_SEARCH = 128  # HNSW "ef": recall@10 of the exact top 10 >= 0.99 on real vectors (docs/embedders.md)


class VectorColumn(Protocol):
    """What this module reads of a `memlayer._internal.search.vector_column.VectorColumn` (which holds its graph)."""

    matrix: npt.NDArray[np.float32]
    has: list[bool]
    dim: int
    nearest: NearestRows | None

    def __len__(self) -> int: ...


def min_rows() -> int | None:
    """From how many rows a column gets a graph: `ANN_MIN_ROWS`, else ``$MEMLAYER_ANN_MIN_ROWS``, else
    `DEFAULT_MIN_ROWS`; None when set to 0 (off)."""
    if ANN_MIN_ROWS is not None:
        return ANN_MIN_ROWS or None
    configured = os.environ.get("MEMLAYER_ANN_MIN_ROWS", "").strip()
    if not configured:
        return DEFAULT_MIN_ROWS
    if not configured.isdigit():
        raise ConfigError(
            "MEMLAYER_ANN_MIN_ROWS must be a whole number of rows (0 turns the approximate index off), "
            f"got {configured!r}"
        )
    return int(configured) or None


def ann_available() -> bool:
    return importlib.util.find_spec("usearch") is not None


class LeastSimilar:
    """The rows least similar to each of `DIRECTIONS` of the column's own vectors (evenly spread over
    its rows): a query resembles the memories, so the row least similar to it, which the vector shares
    are min-max scaled from, is almost always among these few. The graph cannot find it: every vector
    of an embedder lies in a narrow cone, and the search for the query's opposite, from the far side,
    missed it by 0.01-0.02 of similarity in 8 bits, enough to reorder near-equal memories; these rows
    miss it by 0.002 on average (e5-small, 50k LoCoMo-derived rows). Kept current as rows are added."""

    def __init__(self, matrix: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]) -> None:
        spread = np.linspace(0, rows.size - 1, min(DIRECTIONS, rows.size)).astype(np.int64)
        self._directions = np.array(matrix[rows[spread]], dtype=np.float32)
        self._lowest = np.full(len(spread), np.inf, dtype=np.float32)
        self._row = np.zeros(len(spread), dtype=np.int64)
        self.rows = np.zeros(0, dtype=np.int64)
        self.add(matrix, rows)

    def add(self, matrix: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]) -> None:
        """Count ``rows`` (appended ones: a write's few new memories) among the candidates."""
        columns = np.arange(len(self._row))
        for start in range(0, rows.size, 8192):  # 8192 rows x 256 directions at a time: 8 MB
            part = rows[start : start + 8192]
            similarity = matrix[part] @ self._directions.T
            at = similarity.argmin(axis=0)
            lower = similarity[at, columns] < self._lowest
            self._lowest[lower], self._row[lower] = similarity[at, columns][lower], part[at[lower]]
        self.rows = np.unique(self._row)


class NearestRows:
    """An HNSW graph over the rows of one `VectorColumn` that have a vector; keys are row numbers."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.covered = 0  # rows 0..covered-1 are in the graph (those with a vector)
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.build_seconds = 0.0
        self._lock = threading.Lock()
        self._graph: Any = None
        self._least: LeastSimilar | None = None

    def build(self, matrix: npt.NDArray[np.float32], has: list[bool]) -> None:
        """Index ``matrix``'s rows (a snapshot: rows are never rewritten, only appended elsewhere)."""
        import time

        from usearch.index import Index

        started = time.perf_counter()
        try:
            rows = np.flatnonzero(np.asarray(has[: len(matrix)], dtype=bool))
            graph = Index(ndim=self.dim, metric="ip", dtype=_dtype_for(matrix[rows]), connectivity=CONNECTIVITY,
                          expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)  # fmt: skip
            if rows.size:
                graph.add(rows.astype(np.uint64), matrix[rows], threads=1)  # one core: searches go on
            least = LeastSimilar(matrix, rows)
            with self._lock:
                self._graph, self._least, self.covered = graph, least, len(matrix)
            self.build_seconds = time.perf_counter() - started
        except BaseException as exc:  # the search stays exact; the reason is kept and logged
            self.failed = exc
            _log.warning("the approximate index could not be built, search stays exact: %r", exc)
        finally:
            self.ready.set()

    def catch_up(self, matrix: npt.NDArray[np.float32], has: list[bool], rows: int) -> None:
        """Add the rows appended since the build (a write's few new memories)."""
        with self._lock:
            if self._graph is None or self.covered >= rows:
                return
            new = np.flatnonzero(np.asarray(has[self.covered : rows], dtype=bool)) + self.covered
            if new.size:
                self._graph.add(new.astype(np.uint64), matrix[new], threads=1)
                if self._least is not None:
                    self._least.add(matrix, new)
            self.covered = rows

    def nearest(self, query: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.int64]:
        with self._lock:
            found = self._graph.search(query, count, threads=1)
        keys: npt.NDArray[np.int64] = np.asarray(found.keys, dtype=np.int64)
        return keys

    def least_similar(self) -> npt.NDArray[np.int64]:
        """Rows among which the least similar to a query almost always is (`LeastSimilar`)."""
        return self._least.rows if self._least is not None else np.zeros(0, dtype=np.int64)

    @property
    def memory_bytes(self) -> int:
        return int(self._graph.memory_usage) if self._graph is not None else 0


def _dtype_for(vectors: npt.NDArray[np.float32]) -> str:
    """`DTYPE`, unless a value lies outside [-1, 1]: 8 bits hold [-1, 1] only, and an embedder that does
    not normalise its vectors (the `Embedder` protocol asks it to) gets a 32-bit graph instead."""
    return DTYPE if not vectors.size or float(np.abs(vectors).max()) <= 1.0 else "f32"


_searches: ThreadPoolExecutor | None = None
_searches_lock = threading.Lock()


def _forget_searches() -> None:
    """In a forked child: the parent's search threads do not exist there (an executor that believes
    they do would queue every search forever), so the child starts its own."""
    global _searches, _searches_lock
    _searches, _searches_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_searches)


def in_background(
    graph: NearestRows, queries: list[tuple[npt.NDArray[np.float32], int]]
) -> Future[list[npt.NDArray[np.int64]]]:
    """``graph.nearest(query, count)`` for each of ``queries``, on a search thread: the
    graph search releases the GIL, so a search's keyword work goes on meanwhile (and two graphs are
    searched at once)."""
    global _searches
    with _searches_lock:
        if _searches is None:
            _searches = ThreadPoolExecutor(max_workers=2, thread_name_prefix="memlayer-ann-search")
    return _searches.submit(lambda: [graph.nearest(*query) for query in queries])


def _start(column: VectorColumn) -> NearestRows:
    nearest = NearestRows(column.dim)
    rows = len(column)
    threading.Thread(
        target=nearest.build, args=(column.matrix[:rows], list(column.has[:rows])), name="memlayer-ann", daemon=True
    ).start()
    return nearest


def ready_graph(column: VectorColumn, rows: int) -> NearestRows | None:
    """The column's graph, holding its ``rows`` first rows, when the column is large enough to have one
    and it is built; starts the build (in the background) on the first call. None: search exactly."""
    threshold = min_rows()
    if threshold is None or rows < threshold or not column.dim or not ann_available():
        return None
    if column.nearest is None:
        column.nearest = _start(column)
    nearest = column.nearest
    if not nearest.ready.is_set() or nearest.failed is not None:
        return None
    nearest.catch_up(column.matrix, column.has, rows)
    return nearest
