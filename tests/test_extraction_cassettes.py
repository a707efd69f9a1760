"""Extraction against a real model, replayed from cassettes recorded with ../shared/tools/local-llm.

The recorded model is qwen1.5b (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M) on llama.cpp: small, and it writes
sensible memories. Each test asserts the facts a correct extraction holds (what was added, which stored
memory the move replaced, what a "forget" removed, what stayed untouched, each memory's key), read off
its cassette; where the recorded model fell short of that, the test says so in words.
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
    stored = {m.memory: m for m in local_manager.get_user_memories(user_id=USER)}
    assert [c.operation for c in result.changes] == ["add", "add"] and result.skipped == []
    assert sorted(stored) == ["Husband Tom and I have two cats", "Works as a nurse in Leeds"]
    # The model filed the job under "home"; the text says "Works as", which is the key memlayer keeps.
    job = stored["Works as a nurse in Leeds"]
    assert (job.subject, job.attribute) == ("user", "work")
    assert job.learned_at == MONDAY and job.held_from == dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    assert all(
        m.input == f"user: {said}\nassistant: Nice to meet you! Cats are great company." for m in stored.values()
    )
    assert result.usage is not None and result.usage.attempts == 1
    tokens = (result.usage.input_tokens, result.usage.output_tokens)
    assert tokens == (834, 95)  # the cassette's usage
    calls = local_manager.db.sql("SELECT purpose, model, input_tokens, output_tokens, status FROM llm_calls")
    assert calls == [("extraction", "openai:qwen1.5b", *tokens, "ok")]
    events = local_manager.get_user_events(user_id=USER)
    assert {e.call_id for e in events} == {result.usage.call_id}


def test_a_move_updates_the_city(local_manager: MemoryManager) -> None:
    lisbon, vegetarian = _seed(local_manager)
    result = local_manager.create_user_memories(
        [Message(role="user", content="Big news: I moved to Porto last month!", created_at=MONDAY)], user_id=USER
    )
    # One move, one update of the memory holding the user's home: no second city, no "moved" memory.
    assert [(c.operation, c.old_memory, c.memory) for c in result.changes] == [
        ("update", "Lives in Lisbon", "Lives in Porto")
    ]
    assert result.changes[0].memory_id == lisbon and result.skipped == []
    # The unrelated fact is untouched; the old city is a closed version, not destroyed.
    assert local_manager.get_user_memory(vegetarian, user_id=USER) is not None
    versions = local_manager.db.sql(
        "SELECT version, memory, recorded_until IS NULL, held_until, attribute FROM memories WHERE memory_id = ?"
        " ORDER BY version",
        [lisbon],
    )
    porto = local_manager.get_user_memory(lisbon, user_id=USER)
    assert porto is not None and porto.held_from is not None
    # A timeline: Lisbon held until Porto started. (The model dated the move 2026-03-01 although the
    # user said "last month" on 2 March: the start is the model's; that the two meet is memlayer's.)
    assert versions == [
        (1, "Lives in Lisbon", False, porto.held_from.replace(tzinfo=None), "home"),
        (2, "Lives in Porto", True, None, "home"),
    ]


def test_a_retraction_replaces_only_that_fact(local_manager: MemoryManager) -> None:
    lisbon, vegetarian = _seed(local_manager)
    result = local_manager.update_memory_task("Forget that I am vegetarian, I eat everything now.", user_id=USER)
    # The diet is forgotten; the city, which the user never mentioned, stays.
    assert [(c.operation, c.memory_id, c.old_memory) for c in result.changes] == [
        ("delete", vegetarian, "Is vegetarian")
    ]
    assert [m.memory for m in local_manager.get_user_memories(user_id=USER)] == ["Lives in Lisbon"]
    assert local_manager.get_user_memory(lisbon, user_id=USER) is not None
    history = local_manager.get_memory_history(vegetarian, user_id=USER)
    assert [(e.operation, e.old_memory, e.new_memory, e.source) for e in history] == [
        ("add", None, "Is vegetarian", "api"),
        ("delete", "Is vegetarian", None, "task"),
    ]


def test_small_talk_changes_nothing(local_manager: MemoryManager) -> None:
    _seed(local_manager)
    before = local_manager.get_user_memories(user_id=USER)
    result = local_manager.create_user_memories(["thanks, that's all for today! bye"], user_id=USER)
    assert result.changes == [] and result.skipped == []
    assert local_manager.get_user_memories(user_id=USER) == before


async def test_async_extraction(local_manager: MemoryManager) -> None:
    result = await local_manager.acreate_user_memories("My name is Ana and I am allergic to peanuts.", user_id=USER)
    stored = {m.memory: (m.subject, m.attribute) for m in await local_manager.aget_user_memories(user_id=USER)}
    assert [c.operation for c in result.changes] == ["add", "add"]
    # The name and the allergy, each its own memory. The model filed the allergy under "diet" (one value at a
    # time, which a later diet would replace); "Allergic to ..." is health, which memlayer keeps.
    assert stored == {"Ana": ("user", "name"), "Allergic to peanuts": ("user", "health")}
