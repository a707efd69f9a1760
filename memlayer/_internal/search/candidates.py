"""A large user's search over candidate rows only: its cost grows with the candidates, not the memories.

The exact fusion (`UserIndex.fuse`) scores every row: a 100k-memory user's search took 11-30 ms, and
most of it was not the vector product but BM25, the word feedback and the fusion's arrays over all
rows. When the user's vectors have graphs (`ann`, from `ann.min_rows` memories), a search here scores

- the `NEAREST` rows each graph (the memories' vectors, the inputs') finds nearest the query,
- the `FARTHEST` rows each finds nearest the query's opposite: the vector shares are min-max scaled,
  and the lowest similarity of all rows is among them (an even sample's lowest was not: it cost 0.02
  of the exact top 10 on LoCoMo; beside the farthest rows, a sample of 256 added nothing),
- the `KEYWORD_BEST` rows of the best BM25, over the text and over the input, for the query's words in
  at most `COMMON` of the rows (a word in more weighs little, and its rows are many), then likewise
  for the feedback words, and the rows a named time favours most,

and computes every signal on them as the exact fusion does: BM25 with the word statistics of all rows,
the names, the time shares, the similarities scaled over the candidates, recency over all rows.
``benchmarks/ann_search.py`` and ``benchmarks/ann_recall.py`` measure how many of the exact top 10 it
keeps (docs/embedders.md): at 100k memories of LoCoMo-derived real vectors, 0.991 (e5-small) and
0.990 (nomic-embed).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import numpy as np
import numpy.typing as npt

from . import ann
from .bm25 import BM25Index, Statistics, query_names, tokenize
from .filters import SearchFilters
from .fusion import WEIGHTS, Fusion, Weights
from .index import FEEDBACK_DOCS, FEEDBACK_MIN_ROWS, UserIndex

__all__ = ["COMMON", "NEAREST", "fuse"]

NEAREST = 100  # rows asked of each graph
FARTHEST = 10  # rows asked of each graph for the query's opposite
COMMON = 0.1  # a word in more than this share of the rows brings no candidates
KEYWORD_BEST = 150  # rows of the best BM25 (of the words in fewer rows), per field; 100 kept 0.976
# of the exact top 10 with nomic-embed at 100k rows (the first pass's best rows differed, and so the
# feedback words), 150 kept 0.990
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
    time: npt.NDArray[np.float64] | None = None,
) -> Fusion:
    """`UserIndex.fuse`, over candidate rows when the user's vectors have a ready graph, else exactly;
    ``time`` is each row's share for the time the query names, as `UserIndex.fuse` takes it."""
    graphs = _graphs(index, query_vector)
    mask = index._mask(filters) if graphs else None
    if not graphs or query_vector is None or mask is None or np.count_nonzero(mask) < MIN_KEPT * len(index):
        return index.fuse(
            query, query_vector, filters, limit,
            use_bm25=use_bm25, use_recency=use_recency, min_score=min_score, weights=weights, time=time,
        )  # fmt: skip
    # Each graph's nearest rows, and the rows farthest from the query (the nearest to its opposite: the
    # lowest similarity of all rows, which the vector shares are scaled from, is among them), searched
    # on other threads while the keyword work goes on here.
    asked = [(query_vector, NEAREST), *([(-query_vector, FARTHEST)] if FARTHEST else [])]
    searches = [ann.in_background(graph, asked) for graph in graphs]
    # And the rows among which the least similar to the query almost always is (`ann.LeastSimilar`).
    least = [graph.least_similar() for graph in graphs]
    terms = tokenize(query, index._text_words.language) if use_bm25 else []
    names = query_names(query, index._text_words.language) if use_bm25 else []
    stats = {words: words.statistics(mask) for words in (index._text_words, index._input_words)}
    rows = _candidates(index, searches, least, terms, mask, stats, time)
    raw = _raw(index, rows, query_vector, terms, names, mask, stats, weights)
    parts = _shares(raw, {}, weights)
    if use_bm25 and FEEDBACK_DOCS and terms and stats[index._text_words].rows >= FEEDBACK_MIN_ROWS:
        extra = _feedback(index, rows, parts, stats[index._text_words].rows, terms)
        if extra:
            held = [_best_matches(words, extra, mask, stats[words]) for words in stats]
            new = np.setdiff1d(np.concatenate(held), rows)
            new = new[mask[new]]
            rows = np.concatenate([rows, new])  # rows need not be sorted, only distinct
            more = _raw(index, new, query_vector, terms, names, mask, stats, weights)
            raw = {
                name: tuple(np.concatenate(pair) for pair in zip(raw[name], more[name], strict=True)) for name in raw
            }
            feedback = {
                name: weights.feedback * words.scores_at(extra, rows, mask, stats[words])
                for name, words in (("keywords", index._text_words), ("input", index._input_words))
            }
            parts = _shares(raw, feedback, weights)
    if time is not None:
        parts["time"] = time[rows]
    if use_recency:
        stamps = index._columns()[1]
        kept = stamps[mask]
        low, high = float(kept.min()), float(kept.max())
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
    searches: list[Future[list[npt.NDArray[np.int64]]]],
    known: list[npt.NDArray[np.int64]],
    terms: list[str],
    mask: npt.NDArray[np.bool_],
    stats: FieldStatistics,
    time: npt.NDArray[np.float64] | None,
) -> npt.NDArray[np.int64]:
    """The rows a search scores: those the graph ``searches`` (still running) find, the ``known`` ones,
    the best keyword matches, and the rows a named time favours most."""
    rows = len(index)
    parts = list(known)
    for words in (index._text_words, index._input_words):
        parts.append(_best_matches(words, terms, mask, stats[words]))
    if time is not None:  # the rows the named time favours most
        parts.append(_best(time, KEYWORD_BEST))
    parts += [found for search in searches for found in search.result()]
    picked = np.unique(np.concatenate(parts))
    picked = picked[(picked >= 0) & (picked < rows)]
    return picked[mask[picked]]


def _best_matches(
    words: BM25Index, terms: list[str], mask: npt.NDArray[np.bool_], stats: Statistics
) -> npt.NDArray[np.int64]:
    """The `KEYWORD_BEST` rows of the best BM25 for ``terms`` (all the rows holding one, when fewer);
    a word in more than `COMMON` of the rows is left out (its weight is low, and its rows many)."""
    rare = [token for token in dict.fromkeys(terms) if 0 < words.document_count(token) <= COMMON * mask.size]
    if not rare:
        return np.zeros(0, dtype=np.int64)
    return words.best(rare, stats, KEYWORD_BEST)  # over these words' postings, not every row


def _best(scores: npt.NDArray[Any], count: int) -> npt.NDArray[np.int64]:
    """The rows of the ``count`` highest positive ``scores`` (one value per row), in no order."""
    best = np.argpartition(-scores, count - 1)[:count] if scores.size > count else np.arange(scores.size)
    return best[scores[best] > 0].astype(np.int64)


FieldStatistics = dict[BM25Index, Statistics]  # each field's `BM25Index.statistics`, once per search
Raw = dict[str, tuple[npt.NDArray[Any], ...]]  # each signal's unscaled arrays, as long as the rows


def _raw(
    index: UserIndex,
    rows: npt.NDArray[np.int64],
    query_vector: npt.NDArray[np.float32],
    terms: list[str],
    names: list[str],
    mask: npt.NDArray[np.bool_],
    stats: FieldStatistics,
    weights: Weights,
) -> Raw:
    """Each signal of ``rows`` before scaling: similarities (with whether the row has the vector), BM25
    over the text and over the input, and the share of the query's names the text holds."""
    raw: Raw = dict(_similarities(index, rows, query_vector, weights))
    if terms:
        raw["keywords"] = (index._text_words.scores_at(terms, rows, mask, stats[index._text_words]),)
        raw["input"] = (index._input_words.scores_at(terms, rows, mask, stats[index._input_words]),)
    share = index._text_words.holding_at(names, rows) if weights.names else None  # 0: nothing to add
    if share is not None:
        raw["names"] = (share,)
    return raw


def _shares(
    raw: Raw, feedback: dict[str, npt.NDArray[np.float32]], weights: Weights
) -> dict[str, npt.NDArray[np.float64]]:
    """Each signal's weighted share, scaled as `UserIndex.fuse` scales it (over the candidate rows),
    in the order of `SIGNALS`; ``feedback`` holds the feedback words' weighted BM25 per field."""
    similar: dict[str, tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]] = {
        name: (raw[name][0], raw[name][1]) for name in ("vector", "input_vector") if name in raw
    }
    parts = _vector_shares(similar, weights)
    for name, weight in (("keywords", weights.keywords), ("input", weights.input)):
        if name in raw:
            scores = raw[name][0].astype(np.float64) + feedback.get(name, 0.0)
            best = float(scores.max()) if scores.size else 0.0
            parts[name] = weight * scores / best if best > 0 else np.zeros(len(scores))
    if "names" in raw:
        parts["names"] = weights.names * raw["names"][0]
    return parts


def _similarities(
    index: UserIndex, rows: npt.NDArray[np.int64], query_vector: npt.NDArray[np.float32], weights: Weights
) -> dict[str, tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]]:
    """Whether each of ``rows`` has a text vector, and an input vector, and their similarity to the query."""
    found = {}
    _alive, _stamps, has_vector, _agents, has_input = index._columns()
    for name, column, has, weight in (
        ("vector", index._vectors, has_vector, weights.vector),
        ("input_vector", index._input_vectors, has_input, weights.input_vector),
    ):
        if weight and column.dim == query_vector.shape[0] and has.any():
            found[name] = (has[rows], (column.matrix[rows] @ query_vector).astype(np.float64))
    return found


def _vector_shares(
    similar: dict[str, tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]], weights: Weights
) -> dict[str, npt.NDArray[np.float64]]:
    """The text's and the input's similarity, scaled together over the lowest and highest of either."""
    found = {name: (held, values) for name, (held, values) in similar.items() if held.any()}
    if not found:
        return {}
    low = min(float(values[held].min()) for held, values in found.values())
    spread = max(float(values[held].max()) for held, values in found.values()) - low
    weight = {"vector": weights.vector, "input_vector": weights.input_vector}
    return {
        name: np.where(held, weight[name] * (values - low) / spread, 0.0) if spread > 0 else np.zeros(len(held))
        for name, (held, values) in found.items()
    }


def _feedback(
    index: UserIndex,
    rows: npt.NDArray[np.int64],
    parts: dict[str, npt.NDArray[np.float64]],
    kept: int,
    terms: list[str],
) -> list[str]:
    """The feedback words the exact fusion would add, from the first pass over the candidates."""
    first = sum((share for name, share in parts.items() if name != "names"), np.zeros(len(rows)))
    return index._feedback_terms(rows, first, kept, set(terms))


def _ranked(
    index: UserIndex,
    rows: npt.NDArray[np.int64],
    parts: dict[str, npt.NDArray[np.float64]],
    limit: int,
    use_recency: bool,
    min_score: float | None,
) -> Fusion:
    """The best ``limit`` of ``rows``, as `UserIndex.fuse` orders them."""
    fused = np.zeros(len(rows), dtype=np.float64)
    for share in parts.values():
        fused += share
    keep = np.ones(len(rows), dtype=bool) if use_recency else fused > 0
    if min_score is not None:
        keep &= fused >= min_score
    at = np.flatnonzero(keep)  # positions in ``rows``
    at = at[index._best_first(rows[at], fused[at], limit)]
    return Fusion([int(r) for r in rows[at]], fused[at], {name: share[at] for name, share in parts.items()})
