"""Input vectors: a memory is also found by what the input it came from means.

`WordEmbedder` (tests/test_search.py, a bag of hashed words) is a real `Embedder`, stored and
searched like any other, so these facts do not depend on a model's judgement. Each test runs on
DuckDB and PostgreSQL (conftest.any_db).
"""

from __future__ import annotations

import numpy as np
import pytest

from memlayer import MemoryManager, Store
from memlayer._internal.search.retrieval import INPUT_CHARS

from .test_search import WordEmbedder

USER = "ana@example.com"
SHORT = "Yes, last Sunday!"  # means nothing without the turn before it


@pytest.fixture
def db(any_db: Store) -> Store:
    return any_db


def _embeddings(db: Store) -> list[tuple[str, int, bytes | None]]:
    with db.reading() as conn:
        rows = conn.execute("SELECT memory_id, version, input_embedding FROM memory_embeddings").fetchall()
    return [(r[0], r[1], None if r[2] is None else bytes(r[2])) for r in rows]


def test_a_short_memory_is_found_by_its_input(db: Store) -> None:
    manager = MemoryManager(db=db, embedder=WordEmbedder())
    manager.add_user_memory(SHORT, user_id=USER, input="Did you go kayaking on the river?\nYes, last Sunday!")
    manager.add_user_memory("Sunday lunch at the cafe", user_id=USER, input="Where did you eat on Sunday?")
    manager.add_user_memory("Bought new running shoes", user_id=USER)
    hits = {h.memory.memory: h for h in manager.search_user_memories_with_scores("kayaking river", USER, limit=3)}
    assert next(iter(hits)) == SHORT
    # Scaled with the texts' similarities, over the lowest and highest of either: the nearest 1.
    assert hits[SHORT].signals["input_vector"] == pytest.approx(1.0)
    assert hits["Sunday lunch at the cafe"].signals["input_vector"] == 0.0
    assert hits["Bought new running shoes"].signals["input_vector"] == 0.0  # no input: nothing to compare


def test_the_only_memory_with_an_input_still_scores_on_it(db: Store) -> None:
    # One input among texts: scaled alone, its one similarity would be both the best and the worst (0).
    manager = MemoryManager(db=db, embedder=WordEmbedder())
    manager.add_user_memory(SHORT, user_id=USER, input="Did you go kayaking with Rui?\nYes, last Sunday!")
    manager.add_user_memory("Rui likes green tea", user_id=USER)
    manager.add_user_memory("Works as a nurse in Lisbon", user_id=USER)
    hits = manager.search_user_memories_with_scores("when did she go kayaking with Rui", USER, limit=3)
    assert hits[0].memory.memory == SHORT
    assert hits[0].signals["input_vector"] > 0.5  # its input is the nearest of all texts and inputs


def test_input_vectors_are_stored_batched_and_remade_by_reembed(db: Store) -> None:
    words = WordEmbedder()
    manager = MemoryManager(db=db, embedder=words)
    memory = manager.add_user_memory(SHORT, user_id=USER, input="x " * INPUT_CHARS + "kayaking")
    plain = manager.add_user_memory("Bought new running shoes", user_id=USER)
    assert words.calls[0] == [SHORT, ("x " * INPUT_CHARS)[:INPUT_CHARS].strip()]  # one call, the input clipped
    stored = {(m, v): blob for m, v, blob in _embeddings(db)}
    assert stored[(plain.memory_id, 1)] is None
    first = stored[(memory.memory_id, 1)]
    assert first is not None and len(first) == 64 * 4

    # A replacement keeps the memory's input, and so its input vector.
    manager.replace_user_memory(memory.memory_id, "Went kayaking last Sunday", USER)
    stored = {(m, v): blob for m, v, blob in _embeddings(db)}
    assert stored[(memory.memory_id, 2)] == first

    # Another embedder: reembed remakes both vectors of every current memory.
    other = MemoryManager(db=db, embedder=WordEmbedder("test:other-words"))
    assert other.reembed_memories() == 2
    stored = {(m, v): blob for m, v, blob in _embeddings(db)}
    assert set(stored) == {(memory.memory_id, 2), (plain.memory_id, 1)}
    assert stored[(memory.memory_id, 2)] is not None and stored[(plain.memory_id, 1)] is None
    vector = np.frombuffer(stored[(memory.memory_id, 2)] or b"", dtype="<f4")
    assert np.isclose(np.linalg.norm(vector), 1.0)
