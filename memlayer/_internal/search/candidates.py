"""A large user's search over candidate rows only: its cost grows with the candidates, not the memories.

The exact fusion (`UserIndex.fuse`) scores every row: a 100k-memory user's search took 30 ms, and
most of it was not the vector product but BM25, the word feedback and the fusion's arrays over all
rows. When the user's vectors have a graph (`ann`, on from `ann.min_rows` rows), a search here scores

- the `NEAREST` rows the graph finds nearest the query, in the memories' vectors and in the inputs',
- the rows holding a word of the query, in their text or their input (from BM25's postings); a word in
  more than `COMMON` of the rows brings only its `COMMON_BEST` rows where it weighs most, since BM25
  weighs it low and gathering its rows would cost more than the scan this replaces,
- the rows holding a feedback word (the rarest words of the first pass's best rows), and
- an evenly spread `SAMPLE` of rows, so the lowest similarity among the candidates stands for the
  lowest of all rows (the vector shares are min-max scaled, as in the exact fusion),

and computes every signal exactly on them, normalised as the exact fusion does: BM25 and the names'
scores are exact for every candidate (word statistics come from the postings), the best BM25 is the
best over the rows holding a rare query word (all candidates), and recency is scaled over all rows.
A row that is not a candidate is neither near the query nor holds a rare query word: its fused score
is at most its share of very common words. ``benchmarks/ann_search.py`` measures how many of the
exact top 10 this keeps (docs/embedders.md).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import ann
from .bm25 import BM25Index, query_names, tokenize
from .filters import SearchFilters
from .index import DEPTH, FEEDBACK_DOCS, FEEDBACK_MIN_ROWS, WEIGHTS, Fusion, UserIndex, Weights

__all__ = ["COMMON", "NEAREST", "SAMPLE", "fuse"]

NEAREST = 300  # rows asked of each graph
COMMON = 0.02  # a word in more than this share of the rows brings only its best rows as candidates
COMMON_BEST = 300
SAMPLE = 512  # evenly spread rows: the lowest similarity among them stands for the lowest of all
MIN_KEPT = 0.25  # a filter keeping fewer rows than this share: the graph's nearest may all be filtered out


def fuse(
    index: UserIndex,
    query: str,
    query_vector: npt.NDArray[np.float32] | None,
    filters: SearchFilters,
    limit: int,
    *,
    use_bm25: bool = True,
    use_recency: bool = True,
    min_score: float | None = None,
    weights: Weights = WEIGHTS,
) -> Fusion:
    """`UserIndex.fuse`, over candidate rows when the user's vectors have a ready graph, else exactly."""
    graphs = _graphs(index, query_vector)
    mask = index._mask(filters) if graphs else None
    if not graphs or query_vector is None or mask is None or int(mask.sum()) < MIN_KEPT * len(index):
        return index.fuse(
            query, query_vector, filters, limit,
            use_bm25=use_bm25, use_recency=use_recency, min_score=min_score, weights=weights,
        )  # fmt: skip
    terms = tokenize(query, index._text_words.language) if use_bm25 else []
    rows = _candidates(index, graphs, query_vector, terms, mask)
    parts = _signals(index, rows, query, query_vector, terms, [], mask, weights, use_bm25)
    if use_bm25 and FEEDBACK_DOCS and terms and int(mask.sum()) >= FEEDBACK_MIN_ROWS:
        extra = _feedback(index, rows, parts, mask, terms)
        if extra:
            more = [_rows_holding(words, extra, len(index)) for words in (index._text_words, index._input_words)]
            rows = np.union1d(rows, np.concatenate(more))
            rows = rows[mask[rows]]
            parts = _signals(index, rows, query, query_vector, terms, extra, mask, weights, use_bm25)
    if use_recency:
        stamps = index._columns()[1]
        low, high = float(stamps[mask].min()), float(stamps[mask].max())
        if high > low:
            parts["recency"] = weights.recency * (stamps[rows] - low) / (high - low)
    return _ranked(index, rows, parts, limit, use_recency, min_score)


def _graphs(index: UserIndex, query_vector: npt.NDArray[np.float32] | None) -> list[ann.NearestRows]:
    """The ready graphs of the user's two vector columns (none: search exactly)."""
    if query_vector is None:
        return []
    found: list[ann.NearestRows | None] = []
    _alive, _stamps, has_vector, _agents, has_input = index._columns()
    for column, has in ((index._vectors, has_vector), (index._input_vectors, has_input)):
        if column.dim == query_vector.shape[0] and has.any():
            found.append(ann.ready_graph(column, len(index)))  # starts each column's build
    # A column still building: exact until both are ready, so results do not change twice.
    return [graph for graph in found if graph is not None] if found and all(found) else []


def _candidates(
    index: UserIndex,
    graphs: list[ann.NearestRows],
    query_vector: npt.NDArray[np.float32],
    terms: list[str],
    mask: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int64]:
    rows = len(index)
    parts = [graph.nearest(query_vector, NEAREST) for graph in graphs]
    parts.append(np.arange(0, rows, max(1, rows // SAMPLE), dtype=np.int64))
    for words in (index._text_words, index._input_words):
        parts.append(_rows_holding(words, terms, rows))
    picked = np.unique(np.concatenate(parts))
    picked = picked[(picked >= 0) & (picked < rows)]
    return picked[mask[picked]]


def _rows_holding(words: BM25Index, terms: list[str], rows: int) -> npt.NDArray[np.int64]:
    """The rows holding one of ``terms``; of a word in more than `COMMON` of the rows, its best rows."""
    found = [np.zeros(0, dtype=np.int64)]
    for token in dict.fromkeys(terms):
        holding = words.term_rows(token)
        if holding is None:
            continue
        found.append(holding if holding.size <= COMMON * rows else words.best_rows(token, COMMON_BEST))
    return np.concatenate(found)


def _signals(
    index: UserIndex,
    rows: npt.NDArray[np.int64],
    query: str,
    query_vector: npt.NDArray[np.float32],
    terms: list[str],
    extra: list[str],
    mask: npt.NDArray[np.bool_],
    weights: Weights,
    use_bm25: bool,
) -> dict[str, npt.NDArray[np.float64]]:
    """Each signal's weighted share for ``rows`` (arrays as long as ``rows``), as `UserIndex.fuse` computes them."""
    parts = _vector_shares(index, rows, query_vector, weights)
    if not use_bm25:
        return parts
    for name, words, weight in (
        ("keywords", index._text_words, weights.keywords),
        ("input", index._input_words, weights.input),
    ):
        scores = words.scores_at(terms, rows, mask).astype(np.float64)
        if extra:
            scores += weights.feedback * words.scores_at(extra, rows, mask)
        best = float(scores.max()) if scores.size else 0.0
        parts[name] = weight * scores / best if best > 0 else np.zeros(len(rows))
    names = index._text_words.holding_at(query_names(query, index._text_words.language), rows)
    if names is not None:
        parts["names"] = weights.names * names
    return parts


def _vector_shares(
    index: UserIndex, rows: npt.NDArray[np.int64], query_vector: npt.NDArray[np.float32], weights: Weights
) -> dict[str, npt.NDArray[np.float64]]:
    """The text's and the input's similarity, scaled together over the lowest and highest of either."""
    found = {}
    _alive, _stamps, has_vector, _agents, has_input = index._columns()
    for name, column, has, weight in (
        ("vector", index._vectors, has_vector, weights.vector),
        ("input_vector", index._input_vectors, has_input, weights.input_vector),
    ):
        held = has[rows]
        if not weight or column.dim != query_vector.shape[0] or not held.any():
            continue
        values = (column.matrix[rows] @ query_vector).astype(np.float64)
        found[name] = (held, values, weight)
    if not found:
        return {}
    low = min(float(values[held].min()) for held, values, _ in found.values())
    spread = max(float(values[held].max()) for held, values, _ in found.values()) - low
    return {
        name: np.where(held, weight * (values - low) / spread, 0.0) if spread > 0 else np.zeros(len(rows))
        for name, (held, values, weight) in found.items()
    }


def _feedback(
    index: UserIndex,
    rows: npt.NDArray[np.int64],
    parts: dict[str, npt.NDArray[np.float64]],
    mask: npt.NDArray[np.bool_],
    terms: list[str],
) -> list[str]:
    """The feedback words the exact fusion would add, from the first pass over the candidates."""
    first = np.zeros(len(index), dtype=np.float64)
    first[rows] = sum((share for name, share in parts.items() if name != "names"), np.zeros(len(rows)))
    return index._feedback_terms(first, mask, set(terms))


def _ranked(
    index: UserIndex,
    rows: npt.NDArray[np.int64],
    parts: dict[str, npt.NDArray[np.float64]],
    limit: int,
    use_recency: bool,
    min_score: float | None,
) -> Fusion:
    """The best ``limit`` of ``rows``, as `UserIndex.fuse` orders them, in a `Fusion` over all rows."""
    fused = np.zeros(len(rows), dtype=np.float64)
    for share in parts.values():
        fused += share
    keep = np.ones(len(rows), dtype=bool) if use_recency else fused > 0
    if min_score is not None:
        keep &= fused >= min_score
    picked, scores = rows[keep], fused[keep]
    if picked.size > max(limit, DEPTH):  # only the best are sorted in full, as in the exact fusion
        best = np.argpartition(-scores, max(limit, DEPTH) - 1)[: max(limit, DEPTH)]
        picked, scores = picked[best], scores[best]
    order = np.lexsort((*index._ties(picked), -scores))[:limit]
    full = np.zeros(len(index), dtype=np.float64)
    full[rows] = fused
    spread = {}
    for name, share in parts.items():
        spread[name] = np.zeros(len(index), dtype=np.float64)
        spread[name][rows] = share
    return Fusion([int(r) for r in picked[order]], full, spread)
