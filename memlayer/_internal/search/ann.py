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
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError

__all__ = ["ANN_MIN_ROWS", "DEFAULT_MIN_ROWS", "NearestRows", "ann_available", "min_rows", "ready_graph"]

_log = logging.getLogger("memlayer")

# Measured at 100k memories of LoCoMo-derived real vectors: 6.9 ms p50 over candidates against 17.8 ms
# exact, keeping 0.991 of the exact fused top 10 (benchmarks/ann_search.py, docs/embedders.md). At 50k:
# 6.1 against 8.7 ms; at 30k even (5.7 against 5.2); at 20k slower (4.9 against 3.1). So from 50k: below,
# the exact search is as fast, and a graph costs memory (about 2.7 KB a row per column).
DEFAULT_MIN_ROWS = 50_000
ANN_MIN_ROWS: int | None = None  # overrides the environment (tests, benchmarks); 0 is off
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
