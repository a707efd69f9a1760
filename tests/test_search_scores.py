"""Search scores: each hit's fused score is the sum of its signals, orders the results, and filters them.

On real stores (a DuckDB file, then PostgreSQL, through ``any_db``) and through the CLI. The
embedder is `WordEmbedder` from test_search (a bag of hashed words), so the vector signal is
deterministic; keyword-only managers use ``embedder="lexical"``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from memlayer import ConfigError, DuckDb, MemoryManager, Store
from memlayer._internal.records import SearchHit
from memlayer._internal.search.fusion import weights_for

from .test_cli import fails, ok
from .test_search import WordEmbedder

ANA = "ana@example.com"
FACTS = ("Likes tea", "Drinks green tea every morning", "Lives in Lisbon", "Has a dog named Rex")
SIGNAL_NAMES = ["vector", "input_vector", "keywords", "input", "names", "recency", "time"]
# WordEmbedder is no embedder memlayer knows: it gets the weights of a strong one (memlayer._internal.search.fusion).
KEYWORDS = weights_for(WordEmbedder().name).keywords


@pytest.fixture
def db(any_db: Store) -> Store:
    return any_db


@pytest.fixture
def manager(db: Store) -> MemoryManager:
    manager = MemoryManager(db=db, embedder=WordEmbedder())
    for fact in FACTS:
        manager.add_user_memory(fact, user_id=ANA)
    return manager


def test_a_score_is_the_sum_of_its_signals_and_orders_the_results(manager: MemoryManager) -> None:
    hits = manager.search_user_memories_with_scores("tea", ANA)
    assert [h.memory.memory for h in hits[:2]] == ["Likes tea", "Drinks green tea every morning"]
    for hit in hits:
        assert list(hit.signals) == SIGNAL_NAMES
        assert math.isclose(hit.score, sum(hit.signals.values()), abs_tol=1e-12)
        assert all(0.0 <= value <= 1.0 for value in hit.signals.values())
        assert hit.signals["recency"] <= 0.001
        assert hit.signals["time"] == 0.0  # the query names no time
        assert hit.signals["input"] == 0.0  # added directly: no input to match
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # The best keyword match scores the keyword weight (each BM25 is divided by its best); the shorter
    # text wins on length.
    assert hits[0].signals["keywords"] == KEYWORDS and 0 < hits[1].signals["keywords"] < KEYWORDS
    # Min-max over the user's rows: the nearest vector is 1, the farthest 0.
    assert max(h.signals["vector"] for h in hits) == 1.0 and min(h.signals["vector"] for h in hits) == 0.0
    assert {h.memory.memory for h in hits if h.signals["keywords"] == 0} == {"Lives in Lisbon", "Has a dog named Rex"}


def test_the_plain_search_returns_the_same_memories_unchanged(manager: MemoryManager) -> None:
    for query in ("tea", "where does she live", "dog", "coffee"):
        hits = manager.search_user_memories_with_scores(query, ANA, limit=3)
        plain = manager.search_user_memories(query, user_id=ANA, limit=3)
        assert [h.memory for h in hits] == plain  # Memory equality is untouched: no score on it
        assert plain == [manager.get_user_memory(m.memory_id, ANA) for m in plain]


def test_min_score_drops_weak_matches(db: Store) -> None:
    manager = MemoryManager(db=db, embedder="lexical")
    for fact in FACTS:
        manager.add_user_memory(fact, user_id=ANA)
    # No word in common and no vectors: only recency (at most 0.001) is left, for every memory.
    coffee = manager.search_user_memories_with_scores("coffee", ANA)
    assert len(coffee) == 4 and all(h.score <= 0.001 and h.signals["keywords"] == 0 for h in coffee)
    assert manager.search_user_memories("coffee", ANA, min_score=0.1) == []
    assert manager.search_user_memories_with_scores("coffee", ANA, min_score=0.1) == []
    tea = manager.search_user_memories_with_scores("tea", ANA, min_score=0.1)
    assert [h.memory.memory for h in tea] == ["Likes tea", "Drinks green tea every morning"]
    assert [m.memory for m in manager.search_user_memories("tea", ANA, min_score=1.0)] == ["Likes tea"]
    # The threshold is inclusive and applies before the limit.
    best = tea[0].score
    assert [h.score for h in manager.search_user_memories_with_scores("tea", ANA, min_score=best)] == [best]
    assert len(manager.search_user_memories("tea", user_id=ANA, limit=1, min_score=0.1)) == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.5", True, [1]], ids=repr)
def test_a_bad_min_score_is_the_callers_error(manager: MemoryManager, bad: object) -> None:
    with pytest.raises(ConfigError, match="min_score must be a finite number"):
        manager.search_user_memories("tea", ANA, min_score=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="min_score must be a finite number"):
        manager.search_user_memories_with_scores("tea", ANA, min_score=bad)  # type: ignore[arg-type]


async def test_the_async_twin_gives_the_same_hits(manager: MemoryManager) -> None:
    sync = manager.search_user_memories_with_scores("green tea", ANA, min_score=0.5)
    assert await manager.asearch_user_memories_with_scores("green tea", ANA, min_score=0.5) == sync
    assert await manager.asearch_user_memories("green tea", ANA, min_score=0.5) == [h.memory for h in sync]
    assert sync and all(isinstance(h, SearchHit) and h.score >= 0.5 for h in sync)


def test_scores_of_the_past(manager: MemoryManager) -> None:
    before = manager.get_user_memories(ANA, order="newest")[0].updated_at
    tea = next(m for m in manager.get_user_memories(ANA, order="newest") if m.memory == "Likes tea")
    manager.replace_user_memory(tea.memory_id, "Likes coffee", ANA)
    then = manager.search_user_memories_with_scores("tea", ANA, as_of=before, min_score=0.5)
    assert [h.memory.memory for h in then] == ["Likes tea", "Drinks green tea every morning"]
    now = manager.search_user_memories_with_scores("tea", ANA, min_score=0.5)
    assert [h.memory.memory for h in now] == ["Drinks green tea every morning"]
    assert now[0].signals["keywords"] == KEYWORDS  # the best match of this query, now that "Likes tea" is gone


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def dbfile(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.duckdb")
    with DuckDb(path) as store:
        manager = MemoryManager(db=store, embedder="lexical")
        for fact in FACTS:
            manager.add_user_memory(fact, user_id=ANA)
    return path


def test_cli_search_prints_scores_and_explains_them(dbfile: str) -> None:
    env = {"MEMLAYER_EMBEDDER": "lexical"}
    plain = ok("search", "tea", "--user", ANA, "--limit", "2", "--db", dbfile, env=env)
    header = next(line for line in plain.splitlines() if "memory_id" in line)
    assert re.findall(r"\w+", header)[:3] == ["score", "memory_id", "memory"]
    assert re.search(r"│ 1\.00[01] +│ [0-9a-f-]+ +│ Likes tea ", plain), plain
    assert "Lives in Lisbon" not in plain and "keywords" not in plain

    explained = ok("search", "tea", "--user", ANA, "--limit", "1", "--explain", "--db", dbfile, env=env)
    header = next(line for line in explained.splitlines() if "memory_id" in line)
    assert re.findall(r"\w+", header)[:9] == [
        "score", "vector", "input_vector", "keywords", "input", "names", "recency", "time", "memory_id"
    ]  # fmt: skip
    # No vectors (lexical): vector 0; "Likes tea" is the best keyword match and the newest of the two.
    row = r"│ 1\.00[01] +│ 0\.000 +│ 0\.000 +│ 1\.000 +│ 0\.000 +│ 0\.000 +│ 0\.00[01] +│ 0\.000 +│"
    assert re.search(row, explained), explained

    none = ok("search", "coffee", "--user", ANA, "--min-score", "0.1", "--db", dbfile, env=env)
    assert "no memory matches with a score of 0.1 or more" in none and "Likes tea" not in none


def test_cli_search_json(dbfile: str) -> None:
    env = {"MEMLAYER_EMBEDDER": "lexical"}
    printed = json.loads(ok("search", "tea", "--user", ANA, "--json", "--min-score", "0.1", "--db", dbfile, env=env))
    assert [(hit["memory"]["memory"], list(hit["signals"])) for hit in printed] == [
        ("Likes tea", SIGNAL_NAMES),
        ("Drinks green tea every morning", SIGNAL_NAMES),
    ]
    for hit in printed:
        assert math.isclose(hit["score"], sum(hit["signals"].values()), abs_tol=1e-12)
        assert hit["memory"]["user_id"] == ANA and hit["memory"]["version"] == 1
    assert json.loads(ok("search", "coffee", "--user", ANA, "--json", "--min-score", "0.1", "--db", dbfile)) == []
    assert "min_score must be a finite number" in fails(
        "search", "tea", "--user", ANA, "--min-score", "nan", "--db", dbfile
    )
