"""Keys and the two times: what a memory is about, one current value of a single-valued fact, when it held.

Why a scripted model and not cassettes: these tests pin what memlayer does with a *given* reply (a move
written as an add plus an update, an "update" of an unrelated fact, a past value with ``until``); a
recorded small model cannot be made to produce each reply on demand. The replies still go through
LiteLLM and Instructor's real parsing. The stores are real: a DuckDB file and a PostgreSQL server.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from memlayer import DuckDb, MemoryManager, Message, StorageError, Store
from memlayer._internal import clock as memlayer_clock
from memlayer._internal.db.changes import ChangeSet, Fact, Provenance
from memlayer._internal.db.migrations import MIGRATIONS, apply_migrations
from memlayer._internal.facts import fact_key, infer_attribute, subject_key, typed_instructions
from memlayer._internal.memory.dates import parse_point
from memlayer.testing import scripted_model

USER = "ana"
MAY = dt.datetime(2026, 5, 4, 18, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def db(any_db: Store) -> Store:
    return any_db


@pytest.fixture
def manager(db: Store) -> MemoryManager:
    return MemoryManager(model="openai:gpt-4o-mini", db=db, mode="json_schema", provider_retries=0)


def said(text: str, when: dt.datetime = MAY) -> list[Message]:
    return [Message(role="user", content=text, created_at=when)]


def ops(*operations: dict[str, object]) -> dict[str, object]:
    return {"operations": list(operations)}


def current(manager: MemoryManager, **kwargs: object) -> list[str]:
    return sorted(m.memory for m in manager.get_user_memories(user_id=USER, **kwargs))  # type: ignore[arg-type]


# -- the vocabulary -----------------------------------------------------------------------------------


def test_subjects_and_keys() -> None:
    assert [subject_key(s) for s in ("user", "The user", "me", "", "sister Lena", "Lena", "my sister")] == [
        "user", "user", "user", "user", "lena", "lena", "sister",
    ]  # fmt: skip
    assert fact_key("user", "home") == "user:home"
    assert fact_key("sister Lena", "work") == "lena:work"
    assert fact_key("user", "hobby") is None  # many values at a time: no unique key


def test_a_key_is_inferred_only_where_it_is_unmistakable() -> None:
    assert infer_attribute("Lives in Leeds") == "home"
    assert infer_attribute("Works as a nurse") == "work"
    assert infer_attribute("Is vegetarian", ["food"]) == "diet"
    assert infer_attribute("Partner is Sam", ["family"]) == "partner"  # the text is more specific
    assert infer_attribute("Drinks coffee", ["diet"]) == "diet"  # a topic that names an attribute
    assert infer_attribute("Sister Ana is a doctor") == "other"  # not the user's job
    assert infer_attribute("Loves hiking", ["outdoors"]) == "other"


def test_free_text_instructions_are_typed_where_they_name_attributes() -> None:
    assert typed_instructions(["Capture only facts about the user's diet and health."]) == (
        frozenset({"diet", "health"}),
        frozenset(),
    )
    assert typed_instructions(["Never store anything about the user's work or job."]) == (None, frozenset({"work"}))
    assert typed_instructions(["Only remember facts about the user's pets."]) == (frozenset({"pet"}), frozenset())
    # Agno's cookbook: one line excludes the name; the next ("Just say ...") is about wording, not keeping.
    assert typed_instructions(
        ["Don't store any memories about the user's name.", 'Just say "The User" instead of the user\'s name.']
    ) == (None, frozenset({"name"}))
    # Instructions that name no attribute type nothing; they still reach the model as text.
    assert typed_instructions(["Ignore small talk and greetings.", "Capture programming preferences."]) == (
        None,
        frozenset(),
    )


def test_points_in_time() -> None:
    today = dt.date(2026, 6, 12)
    assert parse_point("2019", today) == dt.date(2019, 1, 1)
    assert parse_point("since March 2021", today) == dt.date(2021, 3, 1)
    assert parse_point("in March", today) == dt.date(2026, 3, 1)
    assert parse_point("September", today) == dt.date(2025, 9, 1)  # the last September up to today
    assert parse_point("two years ago", today) == dt.date(2024, 6, 1)
    assert parse_point("last month", today) == dt.date(2026, 5, 1)
    assert parse_point("ever since", today) is None
    assert parse_point("March", None) is None  # no date to count from


# -- one current value of a single-valued fact --------------------------------------------------------


def test_a_move_written_three_ways_is_one_update(manager: MemoryManager) -> None:
    leeds = manager.add_user_memory("Lives in Leeds", user_id=USER, topics=["home"])
    manager.add_user_memory("Works as a nurse", user_id=USER)
    reply = ops(
        {"op": "update", "target": "m1", "subject": "user", "attribute": "home", "memory": "Lives in Bristol"},
        {"op": "add", "subject": "user", "attribute": "home", "memory": "Moved from Leeds to Bristol"},
        {"op": "add", "subject": "user", "attribute": "home", "memory": "Now lives in Bristol"},
    )
    with scripted_model(reply):
        result = manager.create_user_memories(said("I left Leeds last week, I live in Bristol now"), user_id=USER)
    assert [(c.operation, c.old_memory, c.memory) for c in result.changes] == [
        ("update", "Lives in Leeds", "Lives in Bristol")
    ]
    assert current(manager) == ["Lives in Bristol", "Works as a nurse"]
    (moved,) = [m for m in manager.get_user_memories(user_id=USER) if m.attribute == "home"]
    assert moved.memory_id == leeds.memory_id and moved.version == 2
    # Event time: Bristol from the day it was said; Leeds held until then.
    assert moved.held_from == dt.datetime(2026, 5, 4, tzinfo=dt.timezone.utc)
    assert moved.learned_at == MAY
    assert current(manager, valid_at="2026-01-01") == ["Lives in Leeds", "Works as a nurse"]


def test_an_add_of_a_held_fact_the_model_was_not_shown_updates_it(manager: MemoryManager) -> None:
    manager.add_user_memory("Is vegetarian", user_id=USER, topics=["diet"])
    manager.add_user_memory("Loves hiking", user_id=USER)
    reply = ops({"op": "add", "subject": "user", "attribute": "diet", "memory": "Is vegan"})
    with scripted_model(reply):
        result = manager.create_user_memories(said("I'm vegan now"), user_id=USER)
    assert [(c.operation, c.old_memory, c.memory) for c in result.changes] == [("update", "Is vegetarian", "Is vegan")]
    assert current(manager) == ["Is vegan", "Loves hiking"]


def test_an_update_of_another_fact_is_an_add(manager: MemoryManager) -> None:
    manager.add_user_memory("Works as a pilot", user_id=USER)
    reply = ops(
        # "update" for a sister's job (another subject), then for the weather (another attribute).
        {"op": "update", "target": "m1", "subject": "sister Lena", "attribute": "work", "memory": "Lena is a vet"},
    )
    with scripted_model(reply):
        result = manager.create_user_memories(said("my sister Lena is a vet now"), user_id=USER)
    assert [(c.operation, c.memory) for c in result.changes] == [("add", "Lena is a vet")]
    assert current(manager) == ["Lena is a vet", "Works as a pilot"]
    reply = ops({"op": "update", "target": "m1", "subject": "user", "attribute": "hobby", "memory": "Flies kites"})
    with scripted_model(reply):
        manager.create_user_memories(said("I fly kites on weekends"), user_id=USER)
    assert current(manager) == ["Flies kites", "Lena is a vet", "Works as a pilot"]


def test_the_developers_typed_instructions_are_obeyed(db: Store) -> None:
    manager = MemoryManager(
        model="openai:gpt-4o-mini", db=db, mode="json_schema",
        additional_instructions=["Capture only facts about the user's diet and health."],
    )  # fmt: skip
    reply = ops(
        {"op": "add", "subject": "user", "attribute": "work", "memory": "Is a lawyer in Lyon"},
        {"op": "add", "subject": "user", "attribute": "health", "memory": "Is allergic to peanuts"},
    )
    with scripted_model(reply):
        result = manager.create_user_memories(said("I'm a lawyer in Lyon and allergic to peanuts"), user_id=USER)
    assert current(manager) == ["Is allergic to peanuts"]
    assert result.skipped == ["add: outside the developer's instructions (work): Is a lawyer in Lyon"]


# -- two times -----------------------------------------------------------------------------------------


def test_a_past_value_and_the_present_one(manager: MemoryManager) -> None:
    reply = ops(
        {"op": "add", "subject": "user", "attribute": "home", "memory": "Lived in Rome until 2020"},
        {"op": "add", "subject": "user", "attribute": "home", "memory": "Lives in Milan", "since": "2020"},
    )
    with scripted_model(reply):
        manager.create_user_memories(said("I lived in Rome until 2020, now I'm in Milan"), user_id=USER)
    # Both are recorded; only Milan holds now. Rome's "until" came from its text, not the field.
    assert current(manager) == ["Lives in Milan"]
    assert current(manager, valid_at="2018-06-01") == ["Lived in Rome until 2020"]
    assert current(manager, valid_at=dt.date(2022, 1, 1)) == ["Lives in Milan"]


def test_an_imported_conversation_keeps_its_dates_and_reads_as_a_timeline(manager: MemoryManager) -> None:
    # Two sessions years apart, extracted today: each fact holds from the conversation that stated it.
    paris = ops({"op": "add", "subject": "user", "attribute": "home", "memory": "Lives in Paris"})
    nantes = ops({"op": "add", "subject": "user", "attribute": "home", "memory": "Lives in Nantes", "since": "2026-08"})
    with scripted_model(paris, nantes):
        manager.create_user_memories(said("I live in Paris", dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)), USER)
        manager.create_user_memories(said("we moved to Nantes last month", dt.datetime(2026, 9, 10, 10)), USER)
    assert current(manager) == ["Lives in Nantes"]
    assert current(manager, valid_at="2023-12-01") == []  # before anything was said
    assert current(manager, valid_at="2025-01-01") == ["Lives in Paris"]
    assert current(manager, valid_at="2026-09-05") == ["Lives in Nantes"]
    # Record time is a second clock: before the move was recorded, memlayer knew Paris only.
    recorded = manager.get_user_memories(user_id=USER)[0].updated_at
    before = recorded - dt.timedelta(microseconds=1)
    assert current(manager, as_of=before) == ["Lives in Paris"]
    assert current(manager, as_of=before, valid_at="2026-09-05") == ["Lives in Paris"]
    history = manager.db.sql(
        "SELECT memory, held_from::DATE, held_until::DATE FROM memory_history WHERE user_id = ? ORDER BY version",
        [USER],
    )
    assert history == [
        ("Lives in Paris", dt.date(2024, 3, 1), dt.date(2026, 8, 1)),
        ("Lives in Nantes", dt.date(2026, 8, 1), None),
    ]


# -- the store holds one current value per single-valued fact ------------------------------------------


def test_the_store_refuses_a_second_current_value(db: Store) -> None:
    origin = Provenance(USER, "api", memlayer_clock.now())
    first = ChangeSet(origin)
    first.add("Lives in Leeds", [], fact=Fact(attribute="home"))
    with db.transaction() as conn:
        first.write(conn)
    second = ChangeSet(origin)
    second.add("Lives in Bristol", [], fact=Fact(attribute="home"))
    second.add("Loves hiking", [], fact=Fact(attribute="hobby"))
    with pytest.raises(StorageError):
        with db.transaction() as conn:
            second.write(conn)
    assert db.sql("SELECT memory FROM memories ORDER BY memory") == [("Lives in Leeds",)]


def test_keys_are_columns_of_the_views_and_the_events(manager: MemoryManager) -> None:
    manager.add_user_memory("Lives in Leeds", user_id=USER)
    manager.add_user_memory("Lives in Bristol", user_id=USER)  # a direct add of a new value: an update
    assert manager.db.sql("SELECT subject, attribute, memory FROM current_memories") == [
        ("user", "home", "Lives in Bristol")
    ]
    assert manager.db.sql(
        "SELECT operation, subject, attribute FROM memory_events WHERE user_id = ? ORDER BY seq", [USER]
    ) == [("add", "user", "home"), ("update", "user", "home")]


def test_a_store_made_before_keys_gets_them_without_an_llm_call(tmp_path: object) -> None:
    path = f"{tmp_path}/old.duckdb"
    conn = duckdb.connect(path)
    apply_migrations(conn, MIGRATIONS[:7])  # the schema as 0.1.0 shipped it
    rows = [
        ("a", "Lives in Kraków", ["home"], "2026-01-01"),
        ("b", "Lives in Gdańsk", [], "2026-02-01"),  # a duplicate made before keys: the newer keeps the key
        ("c", "Works as a graphic designer", ["work"], "2026-01-01"),
        ("d", "Sister Ana is a doctor", ["family"], "2026-01-01"),
    ]
    for memory_id, text, topics, when in rows:
        conn.execute(
            "INSERT INTO memories (memory_id, version, user_id, memory, memory_key, topics, created_at, valid_from)"
            " VALUES (?, 1, ?, ?, lower(?), ?, ?, ?)",
            [memory_id, USER, text, text, topics, when, when],
        )
    conn.close()
    with DuckDb(path) as store:
        assert store.sql(
            "SELECT memory_id, subject, attribute, fact_key, learned_at::DATE FROM memories ORDER BY memory_id"
        ) == [
            ("a", "user", "other", None, dt.date(2026, 1, 1)),
            ("b", "user", "home", "user:home", dt.date(2026, 2, 1)),
            ("c", "user", "work", "user:work", dt.date(2026, 1, 1)),
            ("d", "user", "family", None, dt.date(2026, 1, 1)),
        ]


def test_a_postgres_store_made_before_keys_migrates_and_then_enforces_them(empty_postgres_dsn: str) -> None:
    import psycopg

    from memlayer import PostgresDb
    from memlayer._internal.db.pg_migrations import PG_MIGRATIONS, apply_pg_migrations
    from memlayer._internal.db.postgres import PgConnection

    with psycopg.connect(empty_postgres_dsn, autocommit=True) as raw:
        apply_pg_migrations(PgConnection(raw), PG_MIGRATIONS[:7])  # the schema as 0.1.0 shipped it
        for memory_id, text, when in (("a", "Lives in Kraków", "2026-01-01"), ("b", "Lives in Gdańsk", "2026-02-01")):
            raw.execute(
                "INSERT INTO memories (memory_id, version, user_id, memory, memory_key, topics, created_at, valid_from)"
                " VALUES (%s, 1, %s, %s, lower(%s), '{}', %s, %s)",
                [memory_id, USER, text, text, when, when],
            )
    with PostgresDb(empty_postgres_dsn) as pg:
        # Two current homes from before keys: the newer keeps the key, so the unique index could be built.
        assert pg.sql("SELECT memory_id, attribute, fact_key FROM memories ORDER BY memory_id") == [
            ("a", "other", None),
            ("b", "home", "user:home"),
        ]
        manager = MemoryManager(db=pg)
        manager.add_user_memory("Lives in Sopot", user_id=USER)
        assert sorted(m.memory for m in manager.get_user_memories(user_id=USER)) == [
            "Lives in Kraków",
            "Lives in Sopot",
        ]


def test_one_fact_takes_the_conversations_time_and_a_bare_span_is_no_fact(manager: MemoryManager) -> None:
    manager.add_user_memory("Lives in Denver", user_id=USER)
    june = dt.datetime(2026, 6, 12, 10, tzinfo=dt.timezone.utc)
    reply = ops(
        {"op": "add", "subject": "user", "attribute": "home", "memory": "Lives in Austin"},
        {"op": "add", "subject": "user", "attribute": "other", "memory": "Five years"},
    )
    with scripted_model(reply):
        result = manager.create_user_memories(said("I moved to Austin in March, five years after college", june), USER)
    assert result.skipped == ["add: no fact in it: Five years"]
    (austin,) = manager.get_user_memories(user_id=USER)
    assert (austin.memory, austin.held_from) == ("Lives in Austin", dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))
    assert current(manager, valid_at="2026-02-01") == ["Lives in Denver"]


def test_an_update_that_names_nothing_of_its_target_is_an_add(manager: MemoryManager) -> None:
    rust = manager.add_user_memory("Is learning Rust", user_id=USER, topics=["programming"])
    manager.add_user_memory("Does yoga twice a week", user_id=USER)
    reply = ops(
        # A new hobby written over an unrelated memory: the user said nothing of Rust.
        {"op": "update", "target": "m2", "subject": "user", "attribute": "hobby", "memory": "Loves hiking"},
        # The user named yoga: that update replaces it, though the new text shares no word with it.
        {"op": "update", "target": "m1", "subject": "user", "attribute": "hobby", "memory": "Swims instead"},
    )
    with scripted_model(reply) as model:
        result = manager.create_user_memories(said("I love hiking! And no more yoga, I swim instead"), USER)
    assert "m1: Does yoga twice a week\nm2: Is learning Rust" in model.prompt()  # yoga ranks first
    assert [(c.operation, c.old_memory, c.memory) for c in result.changes] == [
        ("update", "Does yoga twice a week", "Swims instead"),
        ("add", None, "Loves hiking"),
    ]
    assert manager.get_user_memory(rust.memory_id, user_id=USER) == rust


def test_an_end_the_user_never_spoke_of_is_not_taken(manager: MemoryManager) -> None:
    # The model put the plan's date in "until"; nothing in the message ends anything: the plan stays current.
    reply = ops(
        {"op": "add", "subject": "user", "attribute": "plan", "memory": "Moving in with Sam", "until": "2026-02"}
    )
    with scripted_model(reply):
        manager.create_user_memories(
            said("Sam and I are moving in together next month!", dt.datetime(2026, 1, 5)), USER
        )
    (plan,) = manager.get_user_memories(user_id=USER)
    assert (plan.memory, plan.held_until) == ("Moving in with Sam", None)


def test_a_write_moved_to_the_holder_is_not_stopped_by_a_delete_of_its_alias(db: Store) -> None:
    # Shown one candidate (m1, not the home); the model deletes m1, then "updates" m1 with a new home: that
    # write belongs to the memory holding the home, which nothing in the reply deleted.
    manager = MemoryManager(model="openai:gpt-4o-mini", db=db, mode="json_schema", candidate_limit=1)
    home = manager.add_user_memory("Lives in Berlin", user_id=USER)
    manager.add_user_memory("Moved away from Berlin with Sam", user_id=USER)
    reply = ops(
        {"op": "delete", "target": "m1"},
        {"op": "update", "target": "m1", "subject": "user", "attribute": "home", "memory": "Lives in Lisbon"},
    )
    with scripted_model(reply) as model:
        result = manager.create_user_memories(said("I moved away from Berlin with Sam; Lisbon now"), USER)
    assert "m1: Moved away from Berlin with Sam\nConversation" in model.prompt()
    assert [(c.operation, c.old_memory, c.memory) for c in result.changes] == [
        ("delete", "Moved away from Berlin with Sam", None),
        ("update", "Lives in Berlin", "Lives in Lisbon"),
    ]
    assert [(m.memory_id, m.memory) for m in manager.get_user_memories(user_id=USER)] == [
        (home.memory_id, "Lives in Lisbon")
    ]
