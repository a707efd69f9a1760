"""The approximate index of a large user (`memlayer._internal.search.ann`): built in the background, the same results.

Pure ranking logic on one user's in-process index: no model and no database are involved (the rows are
built in memory as a load would give them). The vectors are clustered pseudo-random ones, made here;
recall on real embeddings is measured by ``benchmarks/ann_recall.py`` (see docs/embedders.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from memlayer._internal.db.vectors import LoadedRows
from memlayer._internal.errors import ConfigError
from memlayer._internal.records import Memory
from memlayer._internal.search import ann, candidates
from memlayer._internal.search.filters import SearchFilters
from memlayer._internal.search.index import UserIndex

pytest.importorskip("usearch")

ROWS, DIM = 3000, 48
WORDS = "tea coffee porto lisbon guitar cello dog cat nurse teacher chess yoga".split()


def _rows(rng: np.random.Generator) -> LoadedRows:
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, ROWS)] + 0.4 * rng.standard_normal((ROWS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [" ".join(rng.choice(WORDS, 4)) + f" note{i}" for i in range(ROWS)]
    times = [datetime(2025, 1, 1) + timedelta(minutes=i) for i in range(ROWS)]
    blobs: list[bytes | None] = [v.tobytes() for v in vectors]
    return LoadedRows(
        [f"m{i}" for i in range(ROWS)],
        [1] * ROWS,
        texts,
        [[] for _ in range(ROWS)],
        [None] * ROWS,
        [None] * ROWS,
        [None] * ROWS,
        times,
        times,
        [None] * ROWS,
        blobs,
        blobs,
        [(None,) * 5] * ROWS,
    )


def _exact(index: UserIndex, monkeypatch: pytest.MonkeyPatch, query: str, vector: np.ndarray) -> list[int]:
    with monkeypatch.context() as exact:
        exact.setattr(ann, "ANN_MIN_ROWS", None)
        return index.fuse(query, vector, SearchFilters(), 10).rows


def test_a_large_user_is_ranked_through_the_graph_with_the_exact_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 2000)
    rng = np.random.default_rng(7)
    index = UserIndex("u", _rows(rng))
    queries = [(" ".join(rng.choice(WORDS, 2)), index._vectors.matrix[rng.integers(ROWS)]) for _ in range(30)]
    assert candidates.fuse(index, *queries[0], SearchFilters(), 10).rows == _exact(index, monkeypatch, *queries[0])
    for column in (index._vectors, index._input_vectors):  # both vectors of a memory get a graph
        assert column.nearest is not None and column.nearest.ready.wait(60) and column.nearest.failed is None
        assert column.nearest.covered == ROWS
    overlap = [
        len(
            set(candidates.fuse(index, text, vector, SearchFilters(), 10).rows)
            & set(_exact(index, monkeypatch, text, vector))
        )
        for text, vector in queries
    ]
    assert np.mean(overlap) / 10 >= 0.98, overlap


def test_memories_written_after_the_build_are_found_and_retired_ones_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 2000)
    rng = np.random.default_rng(8)
    index = UserIndex("u", _rows(rng))
    probe = index._vectors.matrix[5].copy()
    assert candidates.fuse(index, "", probe, SearchFilters(), 1).rows == [5]
    assert index._vectors.nearest is not None and index._vectors.nearest.ready.wait(60)
    new = rng.standard_normal(DIM).astype(np.float32)
    new /= np.linalg.norm(new)
    when = datetime(2026, 1, 1)
    memory = Memory(memory_id="fresh", memory="adopted a quokka", user_id="u", created_at=when, updated_at=when)
    index.apply(["m5"], [memory], {("fresh", 1): new}, {("fresh", 1): new})
    assert [index.ids[r] for r in candidates.fuse(index, "", new, SearchFilters(), 1).rows] == ["fresh"]
    assert index._vectors.nearest.covered == ROWS + 1
    assert "m5" not in [index.ids[r] for r in candidates.fuse(index, "", probe, SearchFilters(), 10).rows]


def test_the_graph_is_off_unless_asked_for_and_a_bad_setting_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMLAYER_ANN_MIN_ROWS", raising=False)
    assert ann.min_rows() is None
    index = UserIndex("u", _rows(np.random.default_rng(9)))
    candidates.fuse(index, "tea", index._vectors.matrix[0], SearchFilters(), 10)
    assert index._vectors.nearest is None  # no graph, no thread: the exact scan
    monkeypatch.setenv("MEMLAYER_ANN_MIN_ROWS", "20000")
    assert ann.min_rows() == 20000
    monkeypatch.setenv("MEMLAYER_ANN_MIN_ROWS", "lots")
    with pytest.raises(ConfigError, match="MEMLAYER_ANN_MIN_ROWS"):
        ann.min_rows()
