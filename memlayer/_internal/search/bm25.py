"""Keyword search: the tokenizer, and a BM25 index over one text field of a user's memories.

Memories are kept in the language the user writes in, so each text is read in its own: its language
is the one whose stop words it uses most (the classic lists of the ``stop-words`` package), and its
words are stemmed by that language's Snowball stemmer (``snowballstemmer``): "Krankenschwestern" meets
"Krankenschwester", "paintings" meets "painted". The index is appended to as memories arrive (no
rebuild), and scores every row of a user with numpy.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "BM25_B",
    "BM25_K1",
    "DEFAULT_LANGUAGE",
    "BM25Index",
    "Statistics",
    "analyse",
    "detect_language",
    "query_names",
    "read_words",
    "tokenize",
]

BM25_K1 = 1.2
BM25_B = 0.75

_WORD = re.compile(r"\w+")
# Words of the conversation's frame, not of its content (the input a memory came from holds them).
_ROLE_WORDS = frozenset({"user", "assistant", "system", "tool"})
DEFAULT_LANGUAGE = "english"


# Which of two languages a short text is in when their stop words tie ("in", "als" are Dutch and
# German): the fallback (the index's most common language) first, then the most spoken.
_TIE_ORDER = ("english", "spanish", "french", "german", "portuguese", "italian", "russian", "dutch")


@functools.cache
def _languages() -> tuple[str, ...]:
    """The languages with both a Snowball stemmer and a stop-word list, in `_TIE_ORDER`, then by name."""
    import snowballstemmer
    import stop_words

    both = set(snowballstemmer.algorithms()) & set(stop_words.AVAILABLE_LANGUAGES)
    return (*(lang for lang in _TIE_ORDER if lang in both), *sorted(both - set(_TIE_ORDER)))


@functools.cache
def _stop_words(language: str) -> frozenset[str]:
    import stop_words

    words = {w.lower() for w in stop_words.get_stop_words(language)}
    # The tokenizer splits "don't" into "don" and "t": their pieces are stop words too.
    return frozenset({part for w in words for part in _WORD.findall(w)} | _ROLE_WORDS)


@functools.cache
def _language_of_word() -> dict[str, tuple[str, ...]]:
    """Each stop word, and the languages it is a stop word of: one lookup per word detects a language."""
    found: dict[str, list[str]] = {}
    for language in _languages():
        for word in _stop_words(language) - _ROLE_WORDS:
            found.setdefault(word, []).append(language)
    return {word: tuple(languages) for word, languages in found.items()}


@functools.cache
def _reader(language: str) -> Callable[[str], str]:
    """The word's token in ``language``: its Snowball stem, or "" for a stop word or a lone letter.

    Memoised in a plain dict: a user's vocabulary repeats, and loading a user tokenizes every memory.
    """
    import snowballstemmer

    stem, stops = snowballstemmer.stemmer(language).stemWord, _stop_words(language)
    seen: dict[str, str] = {}

    def read(word: str) -> str:
        token = seen.get(word)
        if token is None:
            if word.isdigit():
                return word  # years and dates are worth matching, and have nothing to stem
            token = "" if word in stops or len(word) < 2 else stem(word)
            if len(seen) < 200_000:
                seen[word] = token
        return token

    return read


def detect_language(words: Sequence[str], prefer: str = DEFAULT_LANGUAGE) -> str | None:
    """The language whose stop words the text uses most (``prefer`` on a tie), or None when it uses
    none (a bare phrase)."""
    votes: dict[str, int] = {}
    table = _language_of_word()
    for languages in filter(None, map(table.get, words)):
        for language in languages:
            votes[language] = votes.get(language, 0) + 1
    if not votes:
        return None
    order = _languages()
    return max(votes, key=lambda lang: (votes[lang], lang == prefer, -order.index(lang)))


def analyse(text: str, fallback: str = DEFAULT_LANGUAGE) -> tuple[str | None, list[str]]:
    """The text's language (None if it shows none) and its stemmed content words in that language.

    A text with no stop word (``"Vegetarian"``) is stemmed as ``fallback``: the index passes its
    users' most common language, so a one-word query meets the memories it was written like.
    Digits are kept: years and dates are worth matching.
    """
    words = _WORD.findall(text.lower())
    language = detect_language(words, fallback)
    read = _reader(language or fallback)
    return language, [token for token in map(read, words) if token]


def read_words(words: Sequence[str], language: str) -> list[str]:
    """The tokens of ``words`` read in ``language`` (stop words dropped), as `analyse` reads a text in it."""
    read = _reader(language)
    return [token for token in (read(word.lower()) for word in words) if token]


def tokenize(text: str, fallback: str = DEFAULT_LANGUAGE) -> list[str]:
    """Lower-cased content words, stemmed by the Snowball stemmer of the text's language."""
    return analyse(text, fallback)[1]


_NAME = re.compile(r"[^\W\d_][\w'\u2019-]*")
_SENTENCE_END = frozenset(".!?:;")


def query_names(query: str, language: str) -> list[str]:
    """The stemmed names a query mentions: words written with a capital that does not start a sentence.

    ``"What did Caroline tell Melanie?"`` -> the stems of Caroline and Melanie. A name is a stronger
    clue than its BM25 weight says: in one person's memories the people they talk about are common
    words, so their inverse document frequency is low, yet a question naming someone is about them.
    """
    names: list[str] = []
    start = True
    for match in _NAME.finditer(query):
        word = match.group()
        if not start and word[0].isupper() and not word.isupper():
            names.append(word)
        tail = query[match.end() : match.end() + 2].strip()
        start = bool(tail) and tail[0] in _SENTENCE_END
    # Read as the query's other words are: a name may be a stop word elsewhere (Polish "sam").
    return list(dict.fromkeys(read_words(names, analyse(query, language)[0] or language))) if names else []


class BM25Index:
    """A BM25 index over one text field of the rows, appended to as rows are added."""

    def __init__(self, max_tokens: int | None = None) -> None:
        self.max_tokens = max_tokens
        self.lengths: list[int] = []
        self.postings: dict[str, list[tuple[int, int]]] = {}
        self._arrays: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = {}
        self._languages: dict[str, int] = {}
        self._length_array: npt.NDArray[np.float32] | None = None

    def add(self, row: int, text: str | None) -> None:
        self._length_array = None
        if not text:
            self.lengths.append(0)
            return
        language, tokens = analyse(text, self.language)
        if language is not None:
            self._languages[language] = self._languages.get(language, 0) + 1
        tokens = tokens[: self.max_tokens]
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

    @property
    def language(self) -> str:
        """The language most of the rows are in: how a text that shows none is stemmed (a query)."""
        if not self._languages:
            return DEFAULT_LANGUAGE
        return max(self._languages, key=self._languages.__getitem__)

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

    def term_rows(self, token: str) -> npt.NDArray[np.int64] | None:
        """The rows holding ``token`` (None when none does), from the arrays `scores` keeps."""
        arrays = self._term(token)
        return None if arrays is None else arrays[0]

    def statistics(self, mask: npt.NDArray[np.bool_]) -> Statistics:
        """What BM25 weighs a term and a row by over the rows ``mask`` keeps (one pass over the rows;
        a search that scores several times computes them once)."""
        return Statistics(mask, self._lengths())

    def _weighted(self, token: str, stats: Statistics) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]] | None:
        """The rows inside the mask holding ``token``, ascending, and its BM25 share in each."""
        arrays = self._term(token)
        if arrays is None:
            return None
        rows, tf = arrays
        live = stats.mask[rows]
        df = stats.frequency(token, rows, live)
        if not df:
            return None
        rows, tf = rows[live], tf[live]
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * self._lengths()[rows] / stats.average)
        shares = (stats.idf(df) * (BM25_K1 + 1.0)) * tf / (tf + norm)  # as `scores_at` computes it
        return rows, shares.astype(np.float32, copy=False)

    def scores(
        self, terms: Sequence[str], mask: npt.NDArray[np.bool_], stats: Statistics | None = None
    ) -> npt.NDArray[np.float32]:
        """BM25 of every row (0 where no term matches or ``mask`` is False); ``stats``: `statistics`."""
        scores = np.zeros(len(self.lengths), dtype=np.float32)
        stats = stats or self.statistics(mask)
        if not stats.rows:
            return scores
        for token in dict.fromkeys(terms):
            weighted = self._weighted(token, stats)
            if weighted is not None:
                scores[weighted[0]] += weighted[1]
        return scores

    def best(self, terms: Sequence[str], stats: Statistics, count: int) -> npt.NDArray[np.int64]:
        """The rows of the ``count`` highest BM25 for ``terms`` inside the mask (every row holding one,
        when fewer), in no order. One dense pass: summing over the postings alone (np.unique over their
        rows) measured slower at 100k rows."""
        scores = self.scores(terms, stats.mask, stats)
        held = np.flatnonzero(scores > 0)
        if held.size > count:
            held = held[np.argpartition(-scores[held], count - 1)[:count]]
        return held

    def scores_at(
        self,
        terms: Sequence[str],
        rows: npt.NDArray[np.int64],
        mask: npt.NDArray[np.bool_],
        stats: Statistics | None = None,
    ) -> npt.NDArray[np.float32]:
        """`scores` of ``rows`` only (inside ``mask``): the same numbers, in O(rows + postings)."""
        scores = np.zeros(len(rows), dtype=np.float32)
        stats = stats or self.statistics(mask)
        if not stats.rows or not rows.size:
            return scores
        norm = None  # each row's length norm, computed once for every term
        for token in dict.fromkeys(terms):
            arrays = self._term(token)
            if arrays is None:
                continue
            at, tf = _found_at(arrays, rows)
            df = stats.frequency(token, arrays[0]) if at.size else 0
            if not df:
                continue
            if norm is None:
                norm = BM25_K1 * (1.0 - BM25_B + BM25_B * self._lengths()[rows] / stats.average)
            scores[at] += (stats.idf(df) * (BM25_K1 + 1.0)) * tf / (tf + norm[at])
        return scores

    def holding_at(self, tokens: Sequence[str], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64] | None:
        """`holding` of ``rows`` only."""
        if not tokens:
            return None
        share = np.zeros(len(rows), dtype=np.float64)
        for token in tokens:
            arrays = self._term(token)
            if arrays is not None:
                share[_found_at(arrays, rows)[0]] += 1.0
        return share / len(tokens)

    def document_count(self, token: str) -> int:
        """How many rows hold ``token`` (retired rows too)."""
        return len(self.postings.get(token, ()))

    def _lengths(self) -> npt.NDArray[np.float32]:
        if self._length_array is None:
            self._length_array = np.array(self.lengths, dtype=np.float32)
        return self._length_array

    def holding(self, tokens: Sequence[str], mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64] | None:
        """The share of ``tokens`` each row holds, at least once (0 outside ``mask``); None without tokens."""
        if not tokens:
            return None
        share = np.zeros(len(self.lengths), dtype=np.float64)
        for token in tokens:
            arrays = self._term(token)
            if arrays is not None:
                share[arrays[0]] += 1.0
        share[~mask] = 0.0
        return share / len(tokens)


class Statistics:
    """One search's view of a field: how many rows its mask keeps, their average length, and each
    term's document frequency among them (counted once, however often the search scores)."""

    def __init__(self, mask: npt.NDArray[np.bool_], lengths: npt.NDArray[np.float32]) -> None:
        self.mask = mask
        self.rows = int(np.count_nonzero(mask))
        # A dot product, not lengths[mask]: no copy of the kept rows (a large user's search pays per row).
        self.average = (float(np.dot(lengths, mask.astype(np.float32))) / self.rows if self.rows else 0.0) or 1.0
        self._frequencies: dict[str, int] = {}

    def frequency(self, token: str, postings: npt.NDArray[np.int64], live: npt.NDArray[np.bool_] | None = None) -> int:
        """How many kept rows hold ``token`` (its ``postings``; ``live``: the mask there, when known)."""
        found = self._frequencies.get(token)
        if found is None:
            live = self.mask[postings] if live is None else live
            found = self._frequencies[token] = int(live.sum())
        return found

    def idf(self, df: int) -> float:
        """The weight of a term ``df`` of the kept rows hold."""
        return math.log(1.0 + (self.rows - df + 0.5) / (df + 0.5))


def _found_at(
    arrays: tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Where in ``rows`` (sorted) a term's posting rows (ascending: rows are appended in order) are, and
    their term frequencies there: a binary search per row, not a pass over the postings."""
    posting, tf = arrays
    place = np.minimum(np.searchsorted(posting, rows), len(posting) - 1)
    found = np.flatnonzero(posting[place] == rows)
    return found, tf[place[found]]
