"""Extraction against a real model, replayed from cassettes recorded with ../shared/tools/local-llm.

The recorded model is SmolLM2-135M on llama.cpp: tiny, so what it extracts is not what a capable model
would, but the traffic is real. Each test asserts the facts its cassette holds; the semantics a capable
model would produce are covered with a scripted model in test_extraction_scripted.py.
Re-record: start the server (``../shared/tools/local-llm start``), then
``uv run pytest --memlayer-record=rewrite tests/test_extraction_cassettes.py``.
"""

from __future__ import annotations

import pytest

from memlayer import MemoryManager

pytestmark = pytest.mark.memlayer_cassette

USER = "alice@example.com"


def _seed(manager: MemoryManager) -> tuple[str, str]:
    lisbon = manager.add_user_memory("Lives in Lisbon", user_id=USER, topics=["home"])
    python = manager.add_user_memory("Prefers Python over JavaScript", user_id=USER, topics=["programming"])
    return lisbon.memory_id, python.memory_id


def test_add_from_conversation(local_manager: MemoryManager) -> None:
    result = local_manager.create_user_memories(
        [{"role": "user", "content": "Remember that I am vegetarian and I work as a nurse."}], user_id=USER
    )
    assert [(c.operation, c.memory) for c in result.changes] == [("add", "I am vegetarian and I work as a nurse.")]
    stored = local_manager.get_user_memories(user_id=USER)
    assert [(m.memory, m.topics) for m in stored] == [
        ("I am vegetarian and I work as a nurse.", ["food", "work", "programming", "vegetarian"])
    ]
    assert stored[0].input == "user: Remember that I am vegetarian and I work as a nurse."
    # The model repeated the same add; the repeat is skipped, not stored twice.
    assert result.skipped == ["add: already stored: I am vegetarian and I work as a nurse."]
    assert result.usage is not None and result.usage.attempts == 1
    assert (result.usage.input_tokens, result.usage.output_tokens) == (306, 124)
    calls = local_manager.db.sql("SELECT purpose, model, input_tokens, output_tokens, status FROM llm_calls")
    assert calls == [("extraction", "openai:smollm2", 306, 124, "ok")]
    events = local_manager.get_user_events(user_id=USER)
    assert [(e.operation, e.new_memory, e.call_id) for e in events] == [
        ("add", "I am vegetarian and I work as a nurse.", result.usage.call_id)
    ]


def test_update_by_task(local_manager: MemoryManager) -> None:
    lisbon, python = _seed(local_manager)
    result = local_manager.update_memory_task("Replace the text of memory m1 with 'Lives in Porto'.", user_id=USER)
    # m1 was "Lives in Lisbon" (it shares the word "lives" with the task); the tiny model also
    # deleted m2, and that is what the recording holds.
    assert [(c.operation, c.memory_id, c.old_memory, c.memory) for c in result.changes] == [
        ("update", lisbon, "Lives in Lisbon", "Lives in Porto"),
        ("delete", python, "Prefers Python over JavaScript", None),
    ]
    assert [m.memory for m in local_manager.get_user_memories(user_id=USER)] == ["Lives in Porto"]
    current = local_manager.get_user_memory(lisbon, user_id=USER)
    assert current is not None and (current.version, current.topics) == (2, ["home"])
    history = local_manager.get_memory_history(lisbon, user_id=USER)
    assert [(e.operation, e.old_memory, e.new_memory, e.source) for e in history] == [
        ("add", None, "Lives in Lisbon", "api"),
        ("update", "Lives in Lisbon", "Lives in Porto", "task"),
    ]
    # The old version is closed, not destroyed.
    versions = local_manager.db.sql(
        "SELECT version, memory, valid_to IS NULL FROM memories WHERE memory_id = ? ORDER BY version", [lisbon]
    )
    assert versions == [(1, "Lives in Lisbon", False), (2, "Lives in Porto", True)]


def test_delete_by_task(local_manager: MemoryManager) -> None:
    lisbon, python = _seed(local_manager)
    result = local_manager.update_memory_task("Delete memory m1: the user no longer lives in Lisbon.", user_id=USER)
    assert [(c.operation, c.memory_id) for c in result.changes] == [("delete", lisbon), ("delete", python)]
    assert local_manager.get_user_memories(user_id=USER) == []
    assert local_manager.get_user_memory(lisbon, user_id=USER) is None
    history = local_manager.get_memory_history(lisbon, user_id=USER)
    assert [(e.operation, e.old_memory) for e in history] == [("add", None), ("delete", "Lives in Lisbon")]


async def test_async_extraction(local_manager: MemoryManager) -> None:
    result = await local_manager.acreate_user_memories("My name is Ana and I am a nurse.", user_id=USER)
    assert [(c.operation, c.memory) for c in result.changes] == [("add", "My name is Ana and I am a nurse.")]
    stored = await local_manager.aget_user_memories(user_id=USER)
    assert [m.memory for m in stored] == ["My name is Ana and I am a nurse."]
