"""The names signal: a query that names someone ranks what is said of them first.

Pure ranking logic on a real DuckDB file, keyword-only (`embedder="lexical"`), so the facts do not
depend on a model's judgement.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memlayer import DuckDb, MemoryManager
from memlayer._internal.search.bm25 import query_names
from memlayer._internal.search.fusion import Weights

USER = "ana@example.com"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("What did Caroline tell Melanie?", ["carolin", "melani"]),
        ("Caroline went where? Melanie knows. Ask Rui", ["rui"]),  # a sentence's first word is not taken
        ("When did the LGBTQ group meet?", []),  # an acronym is not a name
        ("what does ana like", []),
        ("Wann hat Jonas angerufen?", ["jonas"]),  # read in the query's language, German
    ],
)
def test_names_are_capitalised_words_inside_a_sentence(query: str, names: list[str]) -> None:
    assert query_names(query, "english") == names


def test_a_named_person_outranks_a_better_keyword_match(tmp_path: Path) -> None:
    with DuckDb(tmp_path / "names.duckdb") as db:
        manager = MemoryManager(db=db, embedder="lexical")
        # Tom is named in most memories, so BM25 alone gives the name little weight.
        for i in range(6):
            manager.add_user_memory(f"Tom fixed bike number {i}", user_id=USER)
        manager.add_user_memory("Tom plays chess with Rui on Sundays", user_id=USER)
        manager.add_user_memory("Chess club: play chess, play more chess, every Sunday", user_id=USER)
        found = manager.search_user_memories("Who does Tom play chess with?", user_id=USER, limit=2)
        assert found[0].memory == "Tom plays chess with Rui on Sundays"
        hits = manager.search_user_memories_with_scores("Who does Tom play chess with?", USER, limit=8)
        named = "Tom plays chess with Rui on Sundays"
        club = "Chess club: play chess, play more chess, every Sunday"
        signals = {h.memory.memory: h.signals for h in hits}
        # On keywords alone the club wins; the name is what puts Tom's memory first.
        assert signals[club]["keywords"] > signals[named]["keywords"]
        assert signals[named]["names"] == pytest.approx(Weights().names)
        assert signals[club]["names"] == 0.0
        # A query naming nobody adds nothing for names.
        plain = manager.search_user_memories_with_scores("chess on sundays", USER, limit=3)
        assert all(h.signals["names"] == 0.0 for h in plain)
