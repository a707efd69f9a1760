"""A large user's search over candidate rows (`memlayer._internal.search.candidates`) through the graphs
`memlayer._internal.search.ann` builds in the background: the exact search's results.

Pure ranking logic on one user's in-process index (a real `UserIndex`, real usearch graphs): no model
and no database are involved, so there is nothing to record (the rows are
built in memory as a load would give them). The vectors are clustered pseudo-random ones, made here;
recall on real embeddings is measured by ``benchmarks/ann_recall.py`` (see docs/embedders.md).
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta
from typing import Any

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


def _exact(
    index: UserIndex, monkeypatch: pytest.MonkeyPatch, query: str, vector: np.ndarray, **options: Any
) -> list[int]:
    with monkeypatch.context() as exact:
        exact.setattr(ann, "ANN_MIN_ROWS", 0)
        return index.fuse(query, vector, SearchFilters(), 10, **options).rows


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _built(monkeypatch: pytest.MonkeyPatch, seed: int) -> UserIndex:
    """A user of `ROWS` memories whose two vector columns have their graphs (built here, in the background)."""
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 2000)
    index = UserIndex("u", _rows(np.random.default_rng(seed)))
    assert candidates.fuse(index, "tea", index._vectors.matrix[0], SearchFilters(), 10).rows  # starts both builds
    for column in (index._vectors, index._input_vectors):  # both vectors of a memory get a graph
        assert column.nearest is not None and column.nearest.ready.wait(60) and column.nearest.failed is None
        assert column.nearest.covered == ROWS
    return index


def test_the_candidate_search_returns_the_exact_top_10(monkeypatch: pytest.MonkeyPatch) -> None:
    index = _built(monkeypatch, 7)
    rng = np.random.default_rng(70)
    queries = [(" ".join(rng.choice(WORDS, 2)), index._vectors.matrix[rng.integers(ROWS)]) for _ in range(30)]
    # A rare word (one memory's note number) with an unrelated vector: the keyword's candidates matter.
    far = [(f"tea note{row}", _unit(rng.standard_normal(DIM))) for row in rng.integers(0, ROWS, 10)]
    kept = []
    for text, vector in queries + far:
        found = candidates.fuse(index, text, vector, SearchFilters(), 10).rows
        kept.append(len(set(found) & set(_exact(index, monkeypatch, text, vector))) / 10)
    assert np.mean(kept) >= 0.98, kept


def test_the_least_similar_row_to_a_query_is_among_the_few_kept() -> None:
    """The vector shares are scaled from the lowest similarity of all rows: the candidates must hold it.
    An embedder's vectors lie in a narrow cone (on LoCoMo every similarity of e5-small and nomic-embed is
    between about 0.6 and 0.9), where a graph search for the query's opposite misses it; so here."""
    rng = np.random.default_rng(11)
    centre = rng.standard_normal(DIM).astype(np.float32)
    noise = 0.4 * np.linalg.norm(centre) / np.sqrt(DIM)
    matrix = np.stack([_unit(centre + noise * rng.standard_normal(DIM).astype(np.float32)) for _ in range(ROWS)])
    least = ann.LeastSimilar(matrix, np.arange(ROWS))
    assert 0 < least.rows.size <= ann.DIRECTIONS
    found, missed_by = 0, []
    for row in rng.integers(0, ROWS, 50):  # queries like the memories: near one of them
        query = _unit(matrix[row] + 0.05 * rng.standard_normal(DIM).astype(np.float32))
        similarity = matrix @ query  # here between about 0.65 and 0.95
        found += int(similarity.argmin() in set(least.rows.tolist()))
        missed_by.append(similarity[least.rows].min() - similarity.min())
    # Often the very row; otherwise one nearly as dissimilar (a random row would miss by about 0.2).
    assert found >= 25 and np.mean(missed_by) < 0.01 and max(missed_by) < 0.05, (found, missed_by)
    # A row added later that is least similar to every direction is kept at once.
    grown = np.vstack([matrix, _unit(-centre)[None, :]])
    least.add(grown, np.array([ROWS]))
    assert ROWS in least.rows.tolist()


def test_a_graph_keeps_its_least_similar_rows_current_as_memories_arrive(monkeypatch: pytest.MonkeyPatch) -> None:
    index = _built(monkeypatch, 11)
    graph = index._vectors.nearest
    assert graph is not None and 0 < graph.least_similar().size <= ann.DIRECTIONS
    opposite = _unit(-index._vectors.matrix[:ROWS].mean(axis=0))
    when = datetime(2026, 1, 1)
    memory = Memory(memory_id="odd", memory="an odd one", user_id="u", created_at=when, updated_at=when)
    index.apply([], [memory], {("odd", 1): opposite}, {})
    candidates.fuse(index, "", index._vectors.matrix[0], SearchFilters(), 1)  # the graph catches up on a search
    assert ROWS in graph.least_similar().tolist()


def test_bm25_over_candidate_rows_is_bm25_over_all_rows() -> None:
    index = UserIndex("u", _rows(np.random.default_rng(5)))
    mask = np.ones(ROWS, dtype=bool)
    mask[::7] = False  # some memories retired: the word statistics count the live ones only
    rows = np.array(sorted(np.random.default_rng(6).choice(ROWS, 500, replace=False)))
    rows = rows[mask[rows]]
    terms = ["tea", "cello", "note17", "note18", "nowhere"]
    full = index._text_words.scores(terms, mask)
    assert np.allclose(index._text_words.scores_at(terms, rows, mask), full[rows])
    assert full[rows].max() > 0
    assert np.array_equal(
        index._text_words.holding_at(["tea", "cat"], rows), index._text_words.holding(["tea", "cat"], mask)[rows]
    )


def test_the_best_keyword_rows_are_the_top_of_bm25_over_all_rows() -> None:
    index = UserIndex("u", _rows(np.random.default_rng(7)))
    words = index._text_words
    mask = np.ones(ROWS, dtype=bool)
    mask[::5] = False
    stats = words.statistics(mask)
    full = words.scores(["cello", "note42", "nowhere"], mask, stats)
    best = words.best(["cello", "note42", "nowhere"], stats, 30)
    assert best.size == 30 and mask[best].all()
    assert full[best].min() >= np.sort(full)[-30]  # none left out scores higher
    few = words.best(["note42", "note43"], stats, 30)  # fewer rows hold them than asked: all of them
    assert sorted(few.tolist()) == sorted(np.flatnonzero(words.scores(["note42", "note43"], mask)).tolist())
    # One statistics object serves every call of a search: the same numbers as computing it afresh.
    shared = words.scores_at(["cello", "tea"], best, mask, stats)
    assert np.allclose(shared, words.scores_at(["cello", "tea"], best, mask))


def test_filters_and_a_named_time_give_the_exact_results(monkeypatch: pytest.MonkeyPatch) -> None:
    index = _built(monkeypatch, 9)
    vector = index._vectors.matrix[11]
    # The shares a named time gives (memlayer._internal.search.time): here, the 50 newest memories.
    time = np.zeros(ROWS)
    time[-50:] = 0.5
    exact = _exact(index, monkeypatch, "cello", vector, time=time)
    assert candidates.fuse(index, "cello", vector, SearchFilters(), 10, time=time).rows == exact
    assert set(exact) & set(range(ROWS - 50, ROWS))
    since = datetime(2025, 1, 1) + timedelta(minutes=ROWS - 300)  # keeps 10 %: the graph's nearest may all be older
    filtered = SearchFilters(since=since)
    found = candidates.fuse(index, "cello", vector, filtered, 10).rows
    assert found == index.fuse("cello", vector, filtered, 10).rows and min(found) >= ROWS - 300


def test_memories_written_after_the_build_are_found_and_retired_ones_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    index = _built(monkeypatch, 8)
    rng = np.random.default_rng(80)
    probe = index._vectors.matrix[5].copy()
    assert candidates.fuse(index, "", probe, SearchFilters(), 1).rows == [5]
    new = rng.standard_normal(DIM).astype(np.float32)
    new /= np.linalg.norm(new)
    when = datetime(2026, 1, 1)
    memory = Memory(memory_id="fresh", memory="adopted a quokka", user_id="u", created_at=when, updated_at=when)
    index.apply(["m5"], [memory], {("fresh", 1): new}, {("fresh", 1): new})
    assert [index.ids[r] for r in candidates.fuse(index, "", new, SearchFilters(), 1).rows] == ["fresh"]
    assert index._vectors.nearest is not None and index._vectors.nearest.covered == ROWS + 1
    assert "m5" not in [index.ids[r] for r in candidates.fuse(index, "", probe, SearchFilters(), 10).rows]


def test_the_graph_is_on_from_30k_memories_and_a_bad_setting_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMLAYER_ANN_MIN_ROWS", raising=False)
    assert ann.min_rows() == ann.DEFAULT_MIN_ROWS == 30_000
    index = UserIndex("u", _rows(np.random.default_rng(9)))
    candidates.fuse(index, "tea", index._vectors.matrix[0], SearchFilters(), 10)
    assert index._vectors.nearest is None  # 3,000 memories: no graph, no thread, the exact scan
    monkeypatch.setenv("MEMLAYER_ANN_MIN_ROWS", "2000")
    assert ann.min_rows() == 2000
    monkeypatch.setenv("MEMLAYER_ANN_MIN_ROWS", "0")
    assert ann.min_rows() is None
    candidates.fuse(index, "tea", index._vectors.matrix[0], SearchFilters(), 10)
    assert index._vectors.nearest is None
    monkeypatch.setenv("MEMLAYER_ANN_MIN_ROWS", "lots")
    with pytest.raises(ConfigError, match="MEMLAYER_ANN_MIN_ROWS"):
        ann.min_rows()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_forked_worker_searches_through_the_graph_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that forks its workers after a search (gunicorn's preload): the child's searches
    must not wait on the parent's search threads, which a fork does not copy."""
    index = _built(monkeypatch, 13)
    vector = index._vectors.matrix[3]
    expected = candidates.fuse(index, "tea", vector, SearchFilters(), 5).rows  # the parent's threads exist
    child = os.fork()
    if child == 0:  # the child: exit 0 only if its search finishes with the same rows
        code = 1
        try:
            found = candidates.fuse(index, "tea", vector, SearchFilters(), 5).rows
            code = 0 if found == expected else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    pytest.fail("the forked child's search never finished")


def test_vectors_an_embedder_did_not_normalise_get_a_32_bit_graph() -> None:
    """8 bits hold [-1, 1]: a graph of larger values would be clipped (the protocol asks for unit vectors,
    a custom embedder may not deliver them)."""
    rng = np.random.default_rng(17)
    unit = np.stack([_unit(rng.standard_normal(DIM).astype(np.float32)) for _ in range(500)])
    for matrix, dtype in ((unit, "i8"), (3.0 * unit, "f32")):
        graph = ann.NearestRows(DIM)
        graph.build(matrix, [True] * len(matrix))
        assert graph.failed is None and str(graph._graph.dtype).lower().endswith(dtype)
        assert 42 in graph.nearest(matrix[42], 5).tolist()
