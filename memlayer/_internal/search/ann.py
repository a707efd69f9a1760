"""Approximate nearest rows for a user with many memories: an HNSW graph (``usearch``), built in the background.

**Off by default** (see `ANN_MIN_ROWS`). When on, below `ANN_MIN_ROWS` vectors a search multiplies
the user's whole matrix by the query. Above it, a `VectorColumn` (the memories' vectors, and
separately the inputs') gets a `NearestRows`, built in a background thread on its first search;
searches stay exact until it is ready. Then a query's similarity is computed exactly for

- the `CANDIDATES` rows the graph finds nearest,
- every row holding a word of the query (a keyword match ranks on its vector share too: the fused score
  adds both, so a keyword match far from the query's vector can still be in the results), and
- a fixed sample of `SAMPLE` rows, whose lowest similarity stands for the lowest of all rows,

and every other row gets that lowest value: it scales to a vector share of 0, which cannot lift it
into the results, since a row with no keyword scores its vector share alone (and recency, 0.001) and
the graph's nearest rows score more. Rows appended since the build are added to the graph before the
next search; retired rows stay in it and the search's mask drops them.

``usearch`` is an optional dependency (``pip install 'memlayer-ai[ann]'``); without it, search stays exact.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError

__all__ = ["ANN_MIN_ROWS", "NearestRows", "ann_available", "min_rows", "ready_graph"]

_log = logging.getLogger("memlayer")

# Off unless set (or $MEMLAYER_ANN_MIN_ROWS): measured at 100k memories, a search through the graph took
# 75.9 ms p50 against 30.3 ms for the exact scan (benchmarks/ann_search.py, docs/embedders.md), since
# the rows holding a query word are rescored exactly. Kept for the candidate-only fusion that needs it.
ANN_MIN_ROWS: int | None = None
CONNECTIVITY = 16  # HNSW "M"
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
    """From how many rows a column gets a graph: `ANN_MIN_ROWS`, else ``$MEMLAYER_ANN_MIN_ROWS``, else never."""
    if ANN_MIN_ROWS is not None:
        return ANN_MIN_ROWS
    configured = os.environ.get("MEMLAYER_ANN_MIN_ROWS", "").strip()
    if not configured:
        return None
    if not configured.isdigit() or int(configured) < 1:
        raise ConfigError(f"MEMLAYER_ANN_MIN_ROWS must be a whole number of rows, 1 or more, got {configured!r}")
    return int(configured)


def ann_available() -> bool:
    return importlib.util.find_spec("usearch") is not None


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

    def build(self, matrix: npt.NDArray[np.float32], has: list[bool]) -> None:
        """Index ``matrix``'s rows (a snapshot: rows are never rewritten, only appended elsewhere)."""
        import time

        from usearch.index import Index

        started = time.perf_counter()
        try:
            graph = Index(ndim=self.dim, metric="ip", dtype="f32", connectivity=CONNECTIVITY,
                          expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)  # fmt: skip
            rows = np.flatnonzero(np.asarray(has[: len(matrix)], dtype=bool))
            if rows.size:
                graph.add(rows.astype(np.uint64), matrix[rows], threads=1)  # one core: searches go on
            with self._lock:
                self._graph, self.covered = graph, len(matrix)
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
            self.covered = rows

    def nearest(self, query: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.int64]:
        with self._lock:
            found = self._graph.search(query, count, threads=1)
        keys: npt.NDArray[np.int64] = np.asarray(found.keys, dtype=np.int64)
        return keys

    @property
    def memory_bytes(self) -> int:
        return int(self._graph.memory_usage) if self._graph is not None else 0


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
