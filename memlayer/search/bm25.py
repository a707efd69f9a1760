"""Keyword search: the tokenizer, and a BM25 index over one text field of a user's memories.

The index is appended to as memories arrive (no rebuild), and scores every row of a user with numpy.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["BM25_B", "BM25_K1", "BM25Index", "tokenize"]

BM25_K1 = 1.2
BM25_B = 0.75

_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    "a an the and or but if of at by for with about to from in on into onto up down out over under is am are was "
    "were be been being have has had do does did doing i me my mine myself you your yours we us our they them "
    "their he him his she her hers it its this that these those there here what which who whom whose when where "
    "why how all any both each few more most other some such no nor not only own same so than too very can will "
    "just should would could may might must shall s t d ll m re ve don didn doesn isn wasn aren weren won "
    "user assistant system tool".split()
)


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    # A light suffix strip, enough for "paintings"/"painted"/"painting" to meet "paint".
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed content words (digits kept: years and dates are worth matching)."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())]


class BM25Index:
    """A BM25 index over one text field of the rows, appended to as rows are added."""

    def __init__(self, max_tokens: int | None = None) -> None:
        self.max_tokens = max_tokens
        self.lengths: list[int] = []
        self.postings: dict[str, list[tuple[int, int]]] = {}
        self._arrays: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = {}
        self._length_array: npt.NDArray[np.float32] | None = None

    def add(self, row: int, text: str | None) -> None:
        self._length_array = None
        if not text:
            self.lengths.append(0)
            return
        tokens = tokenize(text)[: self.max_tokens]
        self.lengths.append(len(tokens))
        counts: dict[str, int] = {}
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        postings, cached = self.postings, self._arrays
        for token, tf in counts.items():
            if token in postings:
                postings[token].append((row, tf))
            else:
                postings[token] = [(row, tf)]
            if cached:
                cached.pop(token, None)

    def _term(self, token: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]] | None:
        arrays = self._arrays.get(token)
        if arrays is None:
            postings = self.postings.get(token)
            if not postings:
                return None
            pairs = np.array(postings, dtype=np.int64)
            arrays = (pairs[:, 0], pairs[:, 1].astype(np.float32))
            self._arrays[token] = arrays
        return arrays

    def scores(self, terms: Sequence[str], mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
        """BM25 of every row (0 where no term matches or ``mask`` is False)."""
        if self._length_array is None:
            self._length_array = np.array(self.lengths, dtype=np.float32)
        lengths = self._length_array
        scores = np.zeros(len(self.lengths), dtype=np.float32)
        n = int(mask.sum())
        if not n or not terms:
            return scores
        avg = float(lengths[mask].mean()) or 1.0
        for token in dict.fromkeys(terms):
            arrays = self._term(token)
            if arrays is None:
                continue
            rows, tf = arrays
            live = mask[rows]
            df = int(live.sum())
            if not df:
                continue
            rows, tf = rows[live], tf[live]
            idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            norm = BM25_K1 * (1.0 - BM25_B + BM25_B * lengths[rows] / avg)
            scores[rows] += idf * tf * (BM25_K1 + 1.0) / (tf + norm)
        return scores
