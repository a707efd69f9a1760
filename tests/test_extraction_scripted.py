"""Extraction semantics with a scripted model.

Why not cassettes: these tests pin what memlayer does with a *given* reply (a superseding update, a
retraction, an invented alias, a provider failure, a write that fails half way). The recorded tiny
model cannot be made to produce those replies on demand; a capable model would. The scripted model
still goes through LiteLLM (``mock_response``) and Instructor's real parsing and re-asking.
"""

from __future__ import annotations

import datetime as dt
import time

import litellm
import pytest

from memlayer import ConfigError, DuckDb, MemoryManager, Message, ModelError, StorageError, Store
from memlayer.testing import scripted_model


@pytest.fixture
def db(any_db: Store) -> Store:
    """Every test here runs on DuckDB and on PostgreSQL (conftest.any_db)."""
    return any_db


ALICE, BOB = "alice", "bob"


@pytest.fixture
def manager(db: DuckDb) -> MemoryManager:
    # JSON_SCHEMA mode: LiteLLM's mock_response is message content, which is what that mode parses.
    return MemoryManager(model="openai:gpt-4o-mini", db=db, mode="json_schema", provider_retries=0)


def add(memory: str, *topics: str) -> dict[str, object]:
    return {"op": "add", "memory": memory, "topics": list(topics), "reason": "new fact"}


def ops(*operations: dict[str, object]) -> dict[str, object]:
    return {"operations": list(operations)}


def snapshot(db: Store) -> list[tuple[object, ...]]:
    # string_agg: the SQL both stores speak.
    return db.sql(
        "SELECT (SELECT count(*) FROM memories), (SELECT count(*) FROM memory_events),"
        " (SELECT string_agg(memory, ' | ' ORDER BY memory) FROM memories WHERE recorded_until IS NULL)"
    )


def test_first_extraction_adds_with_one_call(manager: MemoryManager) -> None:
    reply = ops(add("Prefers Python over JavaScript", "programming"), add("Lives in Lisbon", "Home", "home"))
    with scripted_model(reply) as model:
        result = manager.create_user_memories("I prefer Python to JS. I live in Lisbon.", user_id=ALICE)
    assert model.calls == 1
    assert "Stored memories:\n(none)" in model.prompt()
    assert [(c.operation, c.memory, c.topics) for c in result.changes] == [
        ("add", "Prefers Python over JavaScript", ["programming"]),
        ("add", "Lives in Lisbon", ["home"]),  # topics lower-cased and de-duplicated
    ]
    assert sorted(m.memory for m in manager.get_user_memories(user_id=ALICE)) == [
        "Lives in Lisbon",
        "Prefers Python over JavaScript",
    ]
    assert manager.db.sql("SELECT count(*), sum(attempts), min(status) FROM llm_calls") == [(1, 1, "ok")]
    # LiteLLM's scripted reply reports 10 prompt + 20 completion tokens; gpt-4o-mini's listed price.
    assert result.usage is not None and (result.usage.input_tokens, result.usage.output_tokens) == (10, 20)
    assert result.usage.cost_usd == pytest.approx(10 * 0.15e-6 + 20 * 0.6e-6)


def test_changed_fact_supersedes_the_old_one(manager: MemoryManager) -> None:
    old = manager.add_user_memory("Lives in Lisbon", user_id=ALICE, topics=["home"])
    before = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.002)
    with scripted_model(ops({"op": "update", "target": "m1", "memory": "Lives in Porto", "reason": "moved"})) as m:
        result = manager.create_user_memories("I moved to Porto last month.", user_id=ALICE)
    assert "m1: Lives in Lisbon\n" in m.prompt()  # topics are not shown: they leaked into memories
    assert [(c.operation, c.memory_id, c.old_memory, c.memory) for c in result.changes] == [
        ("update", old.memory_id, "Lives in Lisbon", "Lives in Porto")
    ]
    now = manager.get_user_memories(user_id=ALICE)
    assert [(x.memory_id, x.memory, x.version, x.topics) for x in now] == [
        (old.memory_id, "Lives in Porto", 2, ["home"])
    ]
    # The superseded fact is still there for the past, and in the history with its reason.
    assert [x.memory for x in manager.get_user_memories(user_id=ALICE, as_of=before)] == ["Lives in Lisbon"]
    history = manager.get_memory_history(old.memory_id, user_id=ALICE)
    assert [(e.operation, e.old_memory, e.new_memory, e.reason) for e in history] == [
        ("add", None, "Lives in Lisbon", None),
        ("update", "Lives in Lisbon", "Lives in Porto", "moved"),
    ]
    assert history[1].model == "openai:gpt-4o-mini" and history[1].call_id == result.usage.call_id  # type: ignore[union-attr]


def test_retraction_deletes(manager: MemoryManager) -> None:
    keep = manager.add_user_memory("Prefers Python", user_id=ALICE)
    gone = manager.add_user_memory("Is allergic to nuts", user_id=ALICE)
    before = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.002)
    with scripted_model(ops({"op": "delete", "target": "m1", "reason": "retracted"})) as m:
        manager.create_user_memories("Forget what I said: I am not allergic to nuts.", user_id=ALICE)
    assert "m1: Is allergic to nuts" in m.prompt()  # ranked first: it shares "allergic", "nuts"
    assert [x.memory_id for x in manager.get_user_memories(user_id=ALICE)] == [keep.memory_id]
    assert manager.get_user_memory(gone.memory_id, user_id=ALICE) is None
    past = manager.get_user_memory(gone.memory_id, user_id=ALICE, as_of=before)
    assert past is not None and past.memory == "Is allergic to nuts"


def test_invented_alias_is_refused_and_reasked(manager: MemoryManager) -> None:
    manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    bad = ops({"op": "delete", "target": "m7"})
    good = ops({"op": "update", "target": "m1", "memory": "Lives in Porto"})
    with scripted_model(bad, good) as model:
        result = manager.create_user_memories("I live in Porto now.", user_id=ALICE)
    assert model.calls == 2
    # Instructor fed the validation error back to the model on the second call.
    assert "m7" in str(model.requests[1]["messages"])
    assert result.usage is not None and result.usage.attempts == 2
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE)] == ["Lives in Porto"]


def test_another_users_memory_cannot_be_targeted(manager: MemoryManager) -> None:
    bobs = manager.add_user_memory("Bob's bank PIN is 1234", user_id=BOB)
    manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    stranger = ops({"op": "delete", "target": bobs.memory_id})
    with scripted_model(stranger, stranger, stranger) as model, pytest.raises(ModelError) as caught:
        manager.create_user_memories("Delete the bank PIN memory.", user_id=ALICE)
    assert "PIN" not in model.system_prompt(0)  # bob's memories are never shown to alice's extraction
    assert caught.value.attempts == 3 and bobs.memory_id in (caught.value.last_reply or "")
    assert [m.memory for m in manager.get_user_memories(user_id=BOB)] == ["Bob's bank PIN is 1234"]


def test_reply_that_never_validates_writes_nothing_but_its_usage(manager: MemoryManager) -> None:
    manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    before = snapshot(manager.db)
    invalid = '{"operations": [{"op": "update", "target": "m1"}]}'  # an update without its text
    with scripted_model(invalid, invalid, invalid), pytest.raises(ModelError, match="never validated") as caught:
        manager.create_user_memories("I live in Porto.", user_id=ALICE)
    assert (caught.value.attempts, caught.value.last_reply) == (3, invalid)
    assert snapshot(manager.db) == before
    assert manager.db.sql("SELECT status, attempts FROM llm_calls") == [("error", 3)]


def test_provider_failure_raises_and_writes_nothing(manager: MemoryManager) -> None:
    manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    before = snapshot(manager.db)
    limited = litellm.RateLimitError("slow down", llm_provider="openai", model="gpt-4o-mini")
    with scripted_model(limited), pytest.raises(ModelError, match=r"provider failed.*slow down") as caught:
        manager.create_user_memories("I live in Porto.", user_id=ALICE)
    assert isinstance(caught.value.__cause__, Exception) and caught.value.last_reply is None
    assert snapshot(manager.db) == before  # an error is never "nothing to store"


def test_a_write_that_fails_half_way_leaves_nothing(manager: MemoryManager, db: DuckDb) -> None:
    lisbon = manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    other_writer = MemoryManager(db=db)

    def concurrent_edit(_request: object) -> dict[str, object]:
        # While the model "thinks", another writer changes m1; the reply below is now stale.
        other_writer.replace_user_memory(lisbon.memory_id, "Lives in Faro", user_id=ALICE)
        return ops(add("Has a cat named Rui"), {"op": "update", "target": "m1", "memory": "Lives in Porto"})

    with scripted_model(concurrent_edit), pytest.raises(StorageError, match="changed while"):
        manager.create_user_memories("I moved to Porto; my cat Rui came too.", user_id=ALICE)
    # Neither the add before the failing update nor the update was kept; the other writer's change stands.
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE)] == ["Lives in Faro"]
    assert manager.db.sql("SELECT status FROM llm_calls") == [("error",)]


def test_repeated_facts_and_empty_updates_are_skipped(manager: MemoryManager) -> None:
    manager.add_user_memory("Lives in Lisbon", user_id=ALICE, topics=["home"])
    reply = ops(
        add("lives in lisbon"),
        add("Has a cat"),
        add("Has a cat"),
        {"op": "update", "target": "m1", "memory": "Lives in Lisbon", "topics": ["home"]},
    )
    with scripted_model(reply):
        result = manager.create_user_memories("I still live in Lisbon, with my cat.", user_id=ALICE)
    assert [c.memory for c in result.changes] == ["Has a cat"]
    assert result.skipped == [
        # "lives in lisbon" states the home the update (of the same key) states: one write per fact
        "add: the same fact (user:home) as 'Lives in Lisbon' in this reply: lives in lisbon",
        # updates and deletes apply first, in order, then adds
        "update m1: no change",
        "add: already stored: Has a cat",
    ]


def test_operations_on_one_memory_apply_in_order(manager: MemoryManager) -> None:
    first = manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    # A small model says "replace" as an update and a delete of one memory: the delete is skipped.
    reply = ops({"op": "update", "target": "m1", "memory": "Lives in Porto"}, {"op": "delete", "target": "m1"})
    with scripted_model(reply):
        result = manager.create_user_memories("I left Lisbon, I live in Porto now.", user_id=ALICE)
    assert [c.operation for c in result.changes] == ["update"]
    assert result.skipped == ["delete m1: replaced by this reply's update"]
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE)] == ["Lives in Porto"]
    # A delete first: an update of the deleted memory after it is skipped.
    reply = ops({"op": "delete", "target": "m1"}, {"op": "update", "target": "m1", "memory": "Lives in Braga"})
    with scripted_model(reply):
        result = manager.create_user_memories("Forget Porto. Braga maybe, one day.", user_id=ALICE)
    assert [c.operation for c in result.changes] == ["delete"]
    assert result.skipped == ["update m1: already deleted in this reply"]
    assert manager.get_user_memories(user_id=ALICE) == []
    history = manager.get_memory_history(first.memory_id, user_id=ALICE)
    assert [(e.operation, e.old_memory, e.new_memory) for e in history] == [
        ("add", None, "Lives in Lisbon"),
        ("update", "Lives in Lisbon", "Lives in Porto"),
        ("delete", "Lives in Porto", None),
    ]


def test_prompt_carries_instructions_and_message_times(db: DuckDb) -> None:
    manager = MemoryManager(
        model="openai:gpt-4o-mini",
        db=db,
        mode="json_schema",
        additional_instructions=["Capture programming language preferences.", "Ignore small talk."],
    )
    when = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
    with scripted_model(ops()) as model:
        result = manager.create_user_memories(
            [Message(role="user", content="I start at Acme next week.", created_at=when)], user_id=ALICE
        )
    assert result.changes == []
    prompt = model.system_prompt()
    assert "- Capture programming language preferences.\n- Ignore small talk." in prompt
    user_turn = model.requests[0]["messages"][-1]["content"]
    # The message's date, and the days around it, so "next week" can become a date.
    assert "Conversation (today is Sun 2026-03-01; yesterday 2026-02-28; coming days Mon 2026-03-02," in user_turn
    assert "\nuser: I start at Acme next week.\n" in user_turn


def test_task_extraction_is_recorded_as_a_task(manager: MemoryManager) -> None:
    memory = manager.add_user_memory("Lives in Lisbon", user_id=ALICE)
    with scripted_model(ops({"op": "delete", "target": "m1", "reason": "asked"})) as model:
        manager.update_memory_task("Forget where the user lives.", user_id=ALICE)
    assert "Instruction to carry out on the stored memories:\nForget where the user lives." in model.prompt()
    assert [e.source for e in manager.get_memory_history(memory.memory_id, user_id=ALICE)] == ["api", "task"]
    assert manager.db.sql("SELECT purpose FROM llm_calls") == [("task",)]


def test_only_the_most_relevant_memories_are_shown(db: DuckDb) -> None:
    manager = MemoryManager(model="openai:gpt-4o-mini", db=db, mode="json_schema", candidate_limit=5)
    for i in range(40):
        manager.add_user_memory(f"Owns board game number {i}", user_id=ALICE)
    target = manager.add_user_memory("Drinks oolong tea every morning", user_id=ALICE)
    for i in range(40):
        manager.add_user_memory(f"Read book number {i}", user_id=ALICE)
    with scripted_model(ops({"op": "delete", "target": "m1"})) as model:
        manager.create_user_memories("I stopped drinking oolong tea.", user_id=ALICE)
    prompt = model.prompt()
    assert "m1: Drinks oolong tea every morning" in prompt and "m6:" not in prompt
    assert manager.get_user_memory(target.memory_id, user_id=ALICE) is None


@pytest.mark.parametrize("user_id", [None, "", "   ", 42])
def test_a_user_id_is_required(manager: MemoryManager, user_id: object) -> None:
    with scripted_model() as model:
        for call in (
            lambda: manager.create_user_memories("I like tea", user_id=user_id),  # type: ignore[arg-type]
            lambda: manager.update_memory_task("forget it", user_id=user_id),  # type: ignore[arg-type]
            lambda: manager.get_user_memories(user_id=user_id),  # type: ignore[arg-type]
            lambda: manager.add_user_memory("Likes tea", user_id=user_id),  # type: ignore[arg-type]
            lambda: manager.clear_user_memories(user_id=user_id),  # type: ignore[arg-type]
            lambda: manager.erase_user(user_id=user_id),  # type: ignore[arg-type]
        ):
            with pytest.raises(ConfigError, match="user_id"):
                call()
    assert model.calls == 0


def test_nothing_to_extract_makes_no_call(manager: MemoryManager) -> None:
    with scripted_model() as model:
        assert manager.create_user_memories(["", "  "], user_id=ALICE).changes == []
        with pytest.raises(ConfigError, match="messages"):
            manager.create_user_memories(user_id=ALICE)
    assert model.calls == 0


def test_extraction_needs_a_model(db: DuckDb) -> None:
    reader = MemoryManager(db=db)
    assert reader.get_user_memories(user_id=ALICE) == []
    with pytest.raises(ConfigError, match="no model"):
        reader.create_user_memories("I like tea", user_id=ALICE)


async def test_async_twins(manager: MemoryManager) -> None:
    with scripted_model(ops(add("Likes tea")), ops({"op": "update", "target": "m1", "memory": "Likes green tea"})):
        first = await manager.acreate_user_memories("I like tea", user_id=ALICE)
        second = await manager.aupdate_memory_task("Make it green tea.", user_id=ALICE)
    assert [c.operation for c in first.changes + second.changes] == ["add", "update"]
    memories = await manager.aget_user_memories(user_id=ALICE)
    assert [m.memory for m in memories] == ["Likes green tea"]
    history = await manager.aget_memory_history(memories[0].memory_id, user_id=ALICE)
    assert [e.operation for e in history] == ["add", "update"]


def test_a_failure_to_log_a_failed_call_does_not_hide_it(manager: MemoryManager, db: DuckDb) -> None:
    limited = litellm.RateLimitError("slow down", llm_provider="openai", model="gpt-4o-mini")

    def close_store(_request: object) -> BaseException:
        db.close()  # the usage row cannot be written now
        return limited

    with scripted_model(close_store), pytest.raises(ModelError, match="slow down"):
        manager.create_user_memories("I like tea.", user_id=ALICE)


def test_memories_the_user_never_said_are_skipped(manager: MemoryManager) -> None:
    # What small models do: copy the prompt's example, or store what only the assistant said.
    reply = ops(add("Works as a maths teacher"), add("Paella originated in Valencia"), add("Has a cat named Rui"))
    conversation = [
        {"role": "user", "content": "My cat Rui knocked my coffee over again. Any paella tips?"},
        {"role": "assistant", "content": "Paella originated in Valencia; use bomba rice."},
    ]
    with scripted_model(reply):
        result = manager.create_user_memories(conversation, user_id=ALICE)
    assert [c.memory for c in result.changes] == ["Has a cat named Rui"]
    assert result.skipped == [
        "add: not said by the user: Works as a maths teacher",
        "add: not said by the user: Paella originated in Valencia",
    ]


def test_an_add_a_shown_memory_already_holds_is_skipped(manager: MemoryManager) -> None:
    manager.add_user_memory("Lives in Lisbon with partner Ana", user_id=ALICE)
    with scripted_model(ops(add("Lives in Lisbon"))):
        result = manager.create_user_memories("Still living in Lisbon, with Ana.", user_id=ALICE)
    assert result.changes == [] and result.skipped == ["add: already stored: Lives in Lisbon"]


def test_an_update_into_another_stored_memory_merges_them(manager: MemoryManager) -> None:
    first = manager.add_user_memory("Passed the driving test on Friday", user_id=ALICE)
    manager.add_user_memory("Passed the driving test on Monday", user_id=ALICE)
    reply = ops({"op": "update", "target": "m2", "memory": "Passed the driving test on Monday"})
    with scripted_model(reply) as model:
        result = manager.create_user_memories("Sorry, I passed the driving test on Monday, not Friday.", user_id=ALICE)
    assert "m2: Passed the driving test on Friday" in model.prompt()
    assert [(c.operation, c.memory_id) for c in result.changes] == [("delete", first.memory_id)]
    assert [m.memory for m in manager.get_user_memories(user_id=ALICE)] == ["Passed the driving test on Monday"]


def test_relative_dates_become_dates_from_the_message_time(manager: MemoryManager) -> None:
    sunday = dt.datetime(2026, 3, 8, 19, 30, tzinfo=dt.timezone.utc)
    said = Message(role="user", content="Dentist appointment next Friday at 10!", created_at=sunday)
    with scripted_model(ops(add("Dentist appointment next Friday at 10", "health"))):
        result = manager.create_user_memories([said], user_id=ALICE)
    assert [c.memory for c in result.changes] == ["Dentist appointment on 2026-03-13 at 10"]


def test_a_delete_of_a_memory_the_user_never_mentioned_is_refused(manager: MemoryManager) -> None:
    # "bye" deleting the user's job: the most damaging thing a small model does.
    job = manager.add_user_memory("Works as a nurse", user_id=ALICE)
    diet = manager.add_user_memory("Is vegetarian", user_id=ALICE)
    reply = ops({"op": "delete", "target": "m1"}, {"op": "delete", "target": "m2"})
    with scripted_model(reply) as model:
        result = manager.create_user_memories("Forget that I'm vegetarian. Bye!", user_id=ALICE)
    shown = {line.split(": ", 1)[1]: line.split(": ", 1)[0] for line in model.prompt().splitlines() if line[:1] == "m"}
    assert [c.memory_id for c in result.changes] == [diet.memory_id]
    assert result.skipped == [f"delete {shown['Works as a nurse']}: the user did not mention it: Works as a nurse"]
    assert manager.get_user_memory(job.memory_id, user_id=ALICE) is not None


def test_a_direct_add_of_a_held_text_returns_that_memory(manager: MemoryManager) -> None:
    first = manager.add_user_memory("Likes green tea", user_id="ana")
    again = manager.add_user_memory("likes  GREEN tea", user_id="ana")
    assert again.memory_id == first.memory_id
    assert [m.memory for m in manager.get_user_memories("ana")] == ["Likes green tea"]
    assert [e.operation for e in manager.get_user_events("ana")] == ["add"]
    other = manager.add_user_memory("Likes green tea", user_id="ben")  # another user's is their own
    assert other.memory_id != first.memory_id
