"""Extraction against a real model, replayed from cassettes recorded with ../shared/tools/local-llm.

The recorded model is qwen1.5b (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M) on llama.cpp: small, and it writes
sensible memories. Each test asserts the facts its cassette holds: what was added, which stored memory
an update replaced, what a "forget" removed, and what stayed untouched.
Re-record: start the server (``../shared/tools/local-llm start``), then
``uv run pytest --memlayer-record=rewrite tests/test_extraction_cassettes.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from memlayer import MemoryManager, Message

pytestmark = pytest.mark.memlayer_cassette

USER = "alice@example.com"
MONDAY = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.timezone.utc)


def _seed(manager: MemoryManager) -> tuple[str, str]:
    lisbon = manager.add_user_memory("Lives in Lisbon", user_id=USER, topics=["home"])
    vegetarian = manager.add_user_memory("Is vegetarian", user_id=USER, topics=["food"])
    return lisbon.memory_id, vegetarian.memory_id


def test_add_from_conversation(local_manager: MemoryManager) -> None:
    said = "Hi! I work as a nurse in Leeds, and my husband Tom and I have two cats."
    conversation = [
        Message(role="user", content=said, created_at=MONDAY),
        Message(role="assistant", content="Nice to meet you! Cats are great company.", created_at=MONDAY),
    ]
    result = local_manager.create_user_memories(conversation, user_id=USER)
    assert [(c.operation, c.memory) for c in result.changes] == EXPECTED["add.changes"]
    stored = local_manager.get_user_memories(user_id=USER)
    assert sorted(m.memory for m in stored) == sorted(m for _, m in EXPECTED["add.changes"])
    assert all(m.input == f"user: {said}\nassistant: Nice to meet you! Cats are great company." for m in stored)
    assert result.usage is not None and result.usage.attempts == 1
    tokens = (result.usage.input_tokens, result.usage.output_tokens)
    assert tokens == EXPECTED["add.tokens"]
    calls = local_manager.db.sql("SELECT purpose, model, input_tokens, output_tokens, status FROM llm_calls")
    assert calls == [("extraction", "openai:qwen1.5b", *tokens, "ok")]
    events = local_manager.get_user_events(user_id=USER)
    assert {e.call_id for e in events} == {result.usage.call_id}


def test_a_move_updates_the_city(local_manager: MemoryManager) -> None:
    lisbon, vegetarian = _seed(local_manager)
    result = local_manager.create_user_memories(
        [Message(role="user", content="Big news: I moved to Porto last month!", created_at=MONDAY)], user_id=USER
    )
    # The city is updated; "last month" became the month. The model also added the move itself, and
    # wrote "Big news: ..." ten times: the nine repeats are skipped, not stored.
    assert [(c.operation, c.old_memory, c.memory) for c in result.changes] == [
        ("update", "Lives in Lisbon", "Lives in Porto"),
        ("add", None, "Moved to Porto in 2026-02"),
        ("add", None, "Big news: I moved to Porto in 2026-02"),
    ]
    assert result.changes[0].memory_id == lisbon
    assert result.skipped == ["add: already stored: Big news: I moved to Porto in 2026-02"] * 9
    # The unrelated fact is untouched; the old city is a closed version, not destroyed.
    assert local_manager.get_user_memory(vegetarian, user_id=USER) is not None
    versions = local_manager.db.sql(
        "SELECT version, memory, valid_to IS NULL FROM memories WHERE memory_id = ? ORDER BY version", [lisbon]
    )
    assert versions == [(1, "Lives in Lisbon", False), (2, "Lives in Porto", True)]


def test_a_retraction_replaces_only_that_fact(local_manager: MemoryManager) -> None:
    lisbon, vegetarian = _seed(local_manager)
    result = local_manager.update_memory_task("Forget that I am vegetarian, I eat everything now.", user_id=USER)
    # The model rewrote the diet (fair: the user said what they eat now), then also deleted m2, the
    # city, which the user never mentioned: that delete is refused, and the city stays.
    assert [(c.operation, c.memory_id, c.memory) for c in result.changes] == [
        ("update", vegetarian, "Eats everything now")
    ]
    assert result.skipped == ["delete m2: the user did not mention it: Lives in Lisbon"]
    assert sorted(m.memory for m in local_manager.get_user_memories(user_id=USER)) == [
        "Eats everything now",
        "Lives in Lisbon",
    ]
    assert local_manager.get_user_memory(lisbon, user_id=USER) is not None
    history = local_manager.get_memory_history(vegetarian, user_id=USER)
    assert [(e.operation, e.old_memory, e.new_memory, e.source) for e in history] == [
        ("add", None, "Is vegetarian", "api"),
        ("update", "Is vegetarian", "Eats everything now", "task"),
    ]


def test_small_talk_changes_nothing(local_manager: MemoryManager) -> None:
    _seed(local_manager)
    before = local_manager.get_user_memories(user_id=USER)
    result = local_manager.create_user_memories(["thanks, that's all for today! bye"], user_id=USER)
    assert result.changes == [] and result.skipped == EXPECTED["bye.skipped"]
    assert local_manager.get_user_memories(user_id=USER) == before


async def test_async_extraction(local_manager: MemoryManager) -> None:
    result = await local_manager.acreate_user_memories("My name is Ana and I am allergic to peanuts.", user_id=USER)
    assert [(c.operation, c.memory) for c in result.changes] == EXPECTED["async.changes"]
    stored = await local_manager.aget_user_memories(user_id=USER)
    assert sorted(m.memory for m in stored) == sorted(m for _, m in EXPECTED["async.changes"])


# What qwen1.5b did, read off the cassettes.
EXPECTED: dict[str, object] = {
    "add.changes": [("add", "Works as a nurse in Leeds"), ("add", "Has two cats"), ("add", "My husband Tom and I")],
    "add.tokens": (710, 82),
    "bye.skipped": [],
    "async.changes": [("add", "Name: Ana"), ("add", "Allergy to peanuts")],
}
