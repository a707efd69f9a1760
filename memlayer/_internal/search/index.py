"""Hybrid retrieval: vector similarity + BM25 keywords (`bm25`) + recency, fused by normalised score.

Why an in-process index per user, and not DuckDB's ``vss``/``fts``: those extensions do not load
in DuckDB 2.0, the HNSW index returns nothing for small users under a ``WHERE user_id`` filter, and
the fts index does not see inserts. A plain scan of one user's rows costs 50-100 ms in a file where
1.1M rows of 1k users are interleaved, 9 ms where they are stored by user. So the first search of a
user loads their current rows (texts, vectors, metadata) in one query; later searches rank them in
numpy (under 1 ms for 1k rows). Every write through `MemoryManager` updates the loaded index in the
same lock as its commit, so a search never sees a stale index.

Fusion: a weighted sum of normalised scores over six signals (`Weights`): the similarity of the
memory's text and of its input to the query (min-max scaled together, so the best of either is 1),
BM25 over the memory's text and over the start of its input (each divided by its best score, so a
non-match stays 0), names (the share of the names in the query that the memory's text holds: in one
person's memories a friend's name is a common word, so BM25 gives it little weight, yet a question
naming someone is about them), and recency (min-max scaled). Unlike reciprocal rank fusion, this
keeps how far apart the scores are: a strong keyword match is not pulled level with the vector
ranking's 1st place by a weak one. Recency has a tiny weight: it only orders near-equal matches, and
a memory with no match at all is returned newest first. For users of `FEEDBACK_MIN_ROWS` memories or
more, the BM25 query is widened by pseudo-relevance feedback: the rarest words of the best
first-pass results are added at a lower weight. The weights are measured on LoCoMo by leaving one
conversation out (``benchmarks/locomo.py --cv``): chosen on the others, scored on it.

The fused score (`Fusion`, a `SearchHit`'s ``score``) is that sum: 0 to a little over 4 with the
default weights (each signal at most its weight). It compares the results of one query, not two
queries: each signal is scaled over this query's scores, so the nearest vector is always 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import clock
from ..db.vectors import LoadedRows
from ..records import Memory
from .bm25 import BM25Index, query_names, tokenize
from .filters import SearchFilters
from .fusion import SIGNALS, WEIGHTS, Fusion, Weights
from .vector_column import VectorColumn, from_blobs

__all__ = ["SIGNALS", "WEIGHTS", "Fusion", "UserIndex", "Weights"]

DEPTH = 200  # how many of the best fused rows are sorted in full
INPUT_TOKENS = 128  # BM25 over the first INPUT_TOKENS words of the input a memory came from
FEEDBACK_DOCS = 3  # pseudo-relevance feedback: how many first-pass results lend words to the query
FEEDBACK_TERMS = 5  # how many of their words (the rarest) are added; 10 was no better on LoCoMo and slower
FEEDBACK_MIN_ROWS = 100  # below this, word rarity means little and a few results are half the memories


def _epoch(ts: datetime) -> float:
    return clock.naive(ts).replace(tzinfo=timezone.utc).timestamp()


class UserIndex:
    """One user's memories, loaded once, then kept current by `apply`. Rows are never reordered."""

    def __init__(self, user_id: str, rows: LoadedRows) -> None:
        self.user_id = user_id
        self.ids: list[str] = []
        self.versions: list[int] = []
        self.texts: list[str] = []
        self.topics: list[list[str]] = []
        self.agents: list[str | None] = []
        self.sessions: list[str | None] = []
        self.inputs: list[str | None] = []
        self.created: list[datetime] = []
        self.updated: list[datetime] = []
        self.recorded_until: list[datetime | None] = []
        self.facts: list[tuple[Any, ...]] = []  # subject, attribute, held_from, held_until, learned_at
        self.row_of: dict[str, int] = {}
        self._alive: list[bool] = []
        self._stamps: list[float] = []
        self._text_words = BM25Index()
        self._input_words = BM25Index(INPUT_TOKENS)
        self._vectors = VectorColumn()  # of the memories' texts
        self._input_vectors = VectorColumn()  # of the inputs they came from
        self._arrays: tuple[npt.NDArray[Any], ...] | None = None
        self._append_many(rows, from_blobs(rows.vectors), from_blobs(rows.input_vectors))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def alive_count(self) -> int:
        return sum(self._alive)

    # -- building --------------------------------------------------------------------------------

    def _append_many(
        self,
        rows: LoadedRows,
        vectors: Sequence[npt.NDArray[np.float32] | None],
        input_vectors: Sequence[npt.NDArray[np.float32] | None],
    ) -> None:
        start = len(self.ids)
        for i, memory_id in enumerate(rows.memory_ids):
            row = start + i
            self.row_of[memory_id] = row
            self._text_words.add(row, rows.texts[i])
            self._input_words.add(row, rows.inputs[i])
        # Stored times are naive UTC: epoch seconds in one numpy conversion.
        stamps = np.array(rows.updated, dtype="datetime64[us]").astype(np.int64) / 1e6
        self._stamps += stamps.tolist()
        self._alive += [True] * len(rows.memory_ids)
        self.ids += rows.memory_ids
        self.versions += rows.versions
        self.texts += rows.texts
        self.topics += rows.topics
        self.agents += rows.agent_ids
        self.sessions += rows.session_ids
        self.inputs += rows.inputs
        self.created += rows.created
        self.updated += rows.updated
        self.recorded_until += rows.recorded_until
        self.facts += rows.facts
        self._vectors.extend(vectors)
        self._input_vectors.extend(input_vectors)
        self._arrays = None

    def apply(
        self,
        touched: Sequence[str],
        current: Sequence[Memory],
        vectors: dict[tuple[str, int], Any],
        input_vectors: dict[tuple[str, int], Any] | None = None,
    ) -> None:
        """Retire every row of the ``touched`` memory ids, then add their ``current`` versions."""
        for memory_id in touched:
            row = self.row_of.pop(memory_id, None)
            if row is not None:
                self._alive[row] = False
        if current:
            rows = LoadedRows(
                [m.memory_id for m in current],
                [m.version for m in current],
                [m.memory for m in current],
                [list(m.topics) for m in current],
                [m.agent_id for m in current],
                [m.session_id for m in current],
                [m.input for m in current],
                [clock.naive(m.created_at) for m in current],
                [clock.naive(m.updated_at) for m in current],
                [None for _ in current],
                [None for _ in current],
                [None for _ in current],
                [
                    (m.subject, m.attribute, *map(clock.naive_or_none, (m.held_from, m.held_until, m.learned_at)))
                    for m in current
                ],
            )
            keys = [(m.memory_id, m.version) for m in current]
            sources = input_vectors or {}
            self._append_many(rows, [vectors.get(k) for k in keys], [sources.get(k) for k in keys])
        self._arrays = None

    # -- ranking ---------------------------------------------------------------------------------

    def _columns(self) -> tuple[npt.NDArray[Any], ...]:
        if self._arrays is None:
            self._arrays = (
                np.array(self._alive, dtype=bool),
                np.array(self._stamps, dtype=np.float64),
                np.array(self._vectors.has, dtype=bool),
                np.array(self.agents, dtype=object),
                np.array(self._input_vectors.has, dtype=bool),
            )
        return self._arrays

    def _mask(self, filters: SearchFilters) -> npt.NDArray[np.bool_]:
        alive, stamps, _has_vec, agents, _has_input = self._columns()
        mask = alive.copy()
        if filters.agent_id is not None:
            mask &= agents == filters.agent_id
        if filters.since is not None:
            mask &= stamps >= _epoch(filters.since)
        if filters.until is not None:
            mask &= stamps < _epoch(filters.until)
        if filters.topics:
            wanted = set(filters.topics)
            for row in np.flatnonzero(mask):
                if wanted.isdisjoint(self.topics[row]):
                    mask[row] = False
        return mask

    def fuse(
        self,
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
        """The rows to return, best first, with the fused score and each signal's share of it; ``time``:
        each row's share for the time the query names (`memlayer._internal.search.time`)."""
        mask = self._mask(filters)
        if not mask.any():
            return Fusion([], np.zeros(0), {})
        _alive, stamps, has_vec, _agents, has_input = self._columns()
        # Each signal's weighted share, one array over all rows: the fused score is their sum, added
        # in the order of `SIGNALS`, so the ranking is the same as summing in place.
        parts: dict[str, npt.NDArray[np.float64]] = {}
        fused = np.zeros(len(self.ids), dtype=np.float64)
        if query_vector is not None:
            for name, share in self._vector_parts(query_vector, mask, (has_vec, has_input), weights).items():
                parts[name] = share
                fused += share
        if use_bm25:
            for name, scores in self._keyword_parts(query, mask, fused, weights).items():
                parts[name] = scores
                fused += scores
        if time is not None:
            parts["time"] = time
            fused += time
        if use_recency:
            rows = np.flatnonzero(mask)
            parts["recency"] = np.zeros(len(self.ids), dtype=np.float64)
            parts["recency"][rows] = weights.recency * _min_max(stamps[rows])
            fused += parts["recency"]
        else:
            rows = np.flatnonzero(mask & (fused > 0))
        if min_score is not None:
            rows = rows[fused[rows] >= min_score]
        rows = rows[self._best_first(rows, fused[rows], limit)]
        return Fusion([int(r) for r in rows], fused[rows], {name: share[rows] for name, share in parts.items()})

    def _vector_parts(
        self,
        query: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_],
        has: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]],
        weights: Weights,
    ) -> dict[str, npt.NDArray[np.float64]]:
        """The weighted shares of the text's and the input's similarity to the query.

        Both are cosines in one space against one query, so they are scaled together, over the lowest
        and highest of either: the only memory with an input still scores high on a close input, where
        scaling its one similarity alone would give it 0.
        """
        found: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], float]] = {}
        for name, column, held, weight in (
            ("vector", self._vectors, has[0], weights.vector),
            ("input_vector", self._input_vectors, has[1], weights.input_vector),
        ):
            rows = np.flatnonzero(mask & held)
            similarity = column.similarity(query, len(self.ids)) if rows.size and weight else None
            if similarity is not None:
                found[name] = (rows, similarity[rows], weight)
        if not found:
            return {}
        low = min(float(values.min()) for _, values, _ in found.values())
        spread = max(float(values.max()) for _, values, _ in found.values()) - low
        shares = {}
        for name, (rows, values, weight) in found.items():
            share = np.zeros(len(self.ids), dtype=np.float64)
            if spread > 0:
                share[rows] = weight * (values.astype(np.float64) - low) / spread
            shares[name] = share
        return shares

    def _keyword_parts(
        self, query: str, mask: npt.NDArray[np.bool_], fused: npt.NDArray[np.float64], weights: Weights
    ) -> dict[str, npt.NDArray[np.float64]]:
        """The weighted shares of BM25 over the text and over the input, and of the names; ``fused``
        holds the vector share."""
        terms = tokenize(query, self._text_words.language)
        fields = {"keywords": (self._text_words, weights.keywords), "input": (self._input_words, weights.input)}
        keyword_scores = [words.scores(terms, mask) for words, _ in fields.values()]
        if FEEDBACK_DOCS and terms and np.count_nonzero(mask) >= FEEDBACK_MIN_ROWS:
            # Pseudo-relevance feedback: the rarest words of the best first-pass matches join the query.
            first = fused.copy()
            for scores, (_, weight) in zip(keyword_scores, fields.values(), strict=True):
                first += weight * _relative_to_best(scores)
            rows = np.flatnonzero(mask & (first > 0))
            extra = self._feedback_terms(rows, first[rows], int(np.count_nonzero(mask)), set(terms))
            if extra:
                keyword_scores = [
                    scores + weights.feedback * words.scores(extra, mask)
                    for scores, (words, _) in zip(keyword_scores, fields.values(), strict=True)
                ]
        shares = {
            name: weight * _relative_to_best(scores)
            for scores, (name, (_, weight)) in zip(keyword_scores, fields.items(), strict=True)
        }
        names = self._text_words.holding(query_names(query, self._text_words.language), mask) if weights.names else None
        if names is not None:
            shares["names"] = weights.names * names
        return shares

    def _feedback_terms(
        self, rows: npt.NDArray[np.int64], scores: npt.NDArray[np.float64], kept: int, seen: set[str]
    ) -> list[str]:
        """The `FEEDBACK_TERMS` words of the `FEEDBACK_DOCS` best of ``rows`` (by their first-pass
        ``scores``) that are rarest among the user's ``kept`` memories."""
        positive = scores > 0
        rows, scores = rows[positive], scores[positive]
        if not rows.size:
            return []
        if rows.size > FEEDBACK_DOCS:
            rows = rows[np.argpartition(-scores, FEEDBACK_DOCS - 1)[:FEEDBACK_DOCS]]
        counts: dict[str, int] = {}
        for row in rows:
            for token in set(tokenize(self.texts[row], self._text_words.language)):
                if token not in seen:
                    counts[token] = counts.get(token, 0) + 1
        n, postings = kept, self._text_words.postings
        weighted = sorted(
            (-count * math.log(1.0 + n / (len(postings.get(token, ())) + 1.0)), token)
            for token, count in counts.items()
        )
        return [token for _, token in weighted[:FEEDBACK_TERMS]]

    def _best_first(self, rows: npt.NDArray[np.int64], scores: npt.NDArray[np.float64], limit: int) -> npt.NDArray[Any]:
        """The positions of ``rows`` with the ``limit`` highest ``scores``, best first; equal scores are
        broken as every ranking breaks them (`_ties`), among the rows that can be in the first ``limit``
        only (at most `DEPTH`: reading a row's text for the ties costs)."""
        at = np.arange(scores.size)
        if scores.size > limit > 0:
            at = np.flatnonzero(scores >= np.partition(scores, scores.size - limit)[scores.size - limit])
            if at.size > max(limit, DEPTH):
                at = np.argpartition(-scores, max(limit, DEPTH) - 1)[: max(limit, DEPTH)]
        return at[np.lexsort((*self._ties(rows[at]), -scores[at]))[:limit]]

    def _ties(self, rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Sort keys for equal scores: the newer change first, then (one extraction's adds share an
        instant) the text, so the order is the same whether the index was loaded or updated."""
        stamps = self._columns()[1]
        return np.array([self.texts[r] for r in rows]), -stamps[rows]

    def memory(self, row: int) -> Memory:
        created, updated = clock.aware(self.created[row]), clock.aware(self.updated[row])
        assert created is not None and updated is not None
        subject, attribute, held_from, held_until, learned_at = self.facts[row]
        return Memory(
            memory_id=self.ids[row],
            memory=self.texts[row],
            topics=list(self.topics[row]),
            user_id=self.user_id,
            agent_id=self.agents[row],
            session_id=self.sessions[row],
            input=self.inputs[row],
            version=self.versions[row],
            created_at=created,
            updated_at=updated,
            recorded_until=clock.aware(self.recorded_until[row]),
            subject=subject or "user",
            attribute=attribute or "other",
            held_from=clock.aware(held_from),
            held_until=clock.aware(held_until),
            learned_at=clock.aware(learned_at),
        )


def _relative_to_best(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """``scores`` divided by the best of them (all 0 when none is positive), so a non-match stays 0."""
    best = float(scores.max()) if scores.size else 0.0
    return scores.astype(np.float64) / best if best > 0 else np.zeros(scores.shape, dtype=np.float64)


def _min_max(scores: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """``scores`` scaled to [0, 1]: the worst is 0, the best 1 (all 0 when they are equal)."""
    values = scores.astype(np.float64)
    low = float(values.min())
    spread = float(values.max()) - low
    return (values - low) / spread if spread > 0 else np.zeros_like(values)
