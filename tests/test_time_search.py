"""Event time in reads and search: a dated history imported as a timeline, searched by when facts held.

Why a scripted model and not cassettes: the test pins what memlayer does with the dates of an *old*
conversation (three sessions from 2019 to 2023) given a correct reply; what a small model writes is
measured by the eval's time scenarios (`memlayer eval`), not here. The replies still go through
LiteLLM and Instructor's real parsing, and the stores are real: a DuckDB file and a PostgreSQL server.
"""

from __future__ import annotations

import datetime as dt

import pytest

from memlayer import ConfigError, MemoryManager, Message, Store
from memlayer._internal.search.time import TIME_WEIGHT, TimeWindow, named_window, time_shares
from memlayer.testing import scripted_model

USER = "ana"
UTC = dt.timezone.utc
# One user's history as an import finds it: each session with its own date, years before today.
HISTORY = [
    (dt.datetime(2019, 3, 1, 9, tzinfo=UTC), "I've lived in Berlin since 2015.", "Lives in Berlin", "home", "2015"),
    (dt.datetime(2021, 6, 10, 9, tzinfo=UTC), "I moved to Lisbon!", "Lives in Lisbon", "home", None),
    (
        dt.datetime(2023, 2, 1, 9, tzinfo=UTC),
        "I started at Acme as a designer.",
        "Works at Acme as a designer",
        "work",
        None,
    ),
]


@pytest.fixture
def manager(any_db: Store) -> MemoryManager:
    manager = MemoryManager(model="openai:gpt-4o-mini", db=any_db, mode="json_schema", provider_retries=0)
    for when, said, fact, attribute, since in HISTORY:
        op: dict[str, object] = {"op": "add", "subject": "user", "attribute": attribute, "memory": fact}
        if since:
            op["since"] = since
        with scripted_model({"operations": [op]}):
            manager.create_user_memories([Message(role="user", content=said, created_at=when)], user_id=USER)
    return manager


def held(manager: MemoryManager, when: str) -> list[str]:
    return sorted(m.memory for m in manager.get_user_memories(user_id=USER, valid_at=when))


def test_a_dated_import_reads_back_as_a_timeline(manager: MemoryManager) -> None:
    assert held(manager, "2014-06-01") == []
    assert held(manager, "2017-06-01") == ["Lives in Berlin"]
    assert held(manager, "2022-01-01") == ["Lives in Lisbon"]
    assert held(manager, "2024-01-01") == ["Lives in Lisbon", "Works at Acme as a designer"]
    # Learnt when it was said, not when it was stored; Berlin ended where Lisbon began.
    timeline = manager.db.sql(
        "SELECT memory, held_from::DATE, held_until::DATE, learned_at::DATE FROM memory_timeline"
        " WHERE user_id = ? ORDER BY starts_at",
        [USER],
    )
    assert timeline == [
        ("Lives in Berlin", dt.date(2015, 1, 1), dt.date(2021, 6, 10), dt.date(2019, 3, 1)),
        ("Lives in Lisbon", dt.date(2021, 6, 10), None, dt.date(2021, 6, 10)),
        ("Works at Acme as a designer", dt.date(2023, 2, 1), None, dt.date(2023, 2, 1)),
    ]


def test_search_by_event_time(manager: MemoryManager) -> None:
    def found(query: str, **when: object) -> list[str]:
        return [m.memory for m in manager.search_user_memories(query, user_id=USER, limit=5, **when)]

    # Filters: what holds now (Berlin ended), what held then, what held at some time in a window.
    assert sorted(found("where do I live")) == ["Lives in Lisbon", "Works at Acme as a designer"]
    assert found("where do I live", valid_at="2018-01-01") == ["Lives in Berlin"]
    assert sorted(found("lives", held_between=("2020-01-01", "2022-01-01"))) == ["Lives in Berlin", "Lives in Lisbon"]
    assert found("lives", held_between=("2016-01-01", "2017-01-01")) == ["Lives in Berlin"]
    # A query that names a time ranks by it, past values included: what held then first.
    assert found("where did I live in 2018") == ["Lives in Berlin", "Lives in Lisbon", "Works at Acme as a designer"]
    assert found("where did I live before I moved")[0] == "Lives in Berlin"
    assert found("what happened in 2023")[0] == "Works at Acme as a designer"
    hits = manager.search_user_memories_with_scores("where did I live in 2022", user_id=USER)
    assert hits[0].memory.memory == "Lives in Lisbon"
    assert hits[0].signals["time"] == TIME_WEIGHT > max(h.signals["time"] for h in hits[1:])
    # No fact ended in the window: the cached index of current memories ranks, by the same shares.
    assert found("what happened in 2024")[0] == "Works at Acme as a designer"


def test_time_arguments_are_checked_before_anything_is_read(manager: MemoryManager) -> None:
    with pytest.raises(ConfigError, match="held_between must be a"):
        manager.search_user_memories("lives", user_id=USER, held_between=("2020-01-01",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="start before end"):
        manager.search_user_memories("lives", user_id=USER, held_between=("2022-01-01", "2020-01-01"))
    with pytest.raises(ConfigError, match="valid_at must be an ISO 8601"):
        manager.search_user_memories("lives", user_id=USER, valid_at="last year")
    with pytest.raises(ConfigError, match="give a query"):
        manager.search_user_memories(user_id=USER, held_between=("2020-01-01", "2022-01-01"))


def test_the_time_a_query_names() -> None:
    today = dt.date(2024, 3, 15)

    def window(query: str) -> tuple[dt.date, dt.date] | None:
        found = named_window(query, today)
        return None if found is None else (found.start.date(), found.end.date())

    assert window("What movie did Joanna watch on 1 May, 2022?") == (dt.date(2022, 5, 1), dt.date(2022, 5, 2))
    assert window("What did Audrey eat for dinner on October 24, 2023?") == (
        dt.date(2023, 10, 24),
        dt.date(2023, 10, 25),
    )
    assert window("Where was Tim in the week before 16 November 2023?") == (dt.date(2023, 11, 9), dt.date(2023, 11, 16))
    assert window("Where did Joanna travel to in July 2022?") == (dt.date(2022, 7, 1), dt.date(2022, 8, 1))
    assert window("what did I do in 2022") == (dt.date(2022, 1, 1), dt.date(2023, 1, 1))
    assert window("what did I do last summer") == (dt.date(2023, 6, 1), dt.date(2023, 9, 1))
    assert window("the summer of 2021") == (dt.date(2021, 6, 1), dt.date(2021, 9, 1))
    assert window("what did I eat yesterday") == (dt.date(2024, 3, 14), dt.date(2024, 3, 15))
    assert window("what do I like to eat") is None
    assert window("I have 2022 reasons") is None  # a number is not a year without a word that makes it one
    moved = dt.datetime(2021, 6, 10)
    before = named_window("where did I live before I moved", today, moved=moved)
    assert before is not None and before.end == moved


def test_a_memory_nearer_the_named_time_gets_more() -> None:
    window = TimeWindow(dt.datetime(2022, 7, 1), dt.datetime(2022, 8, 1))
    facts = [
        ("user", "other", None, None, dt.datetime(2022, 7, 15)),  # said in the window
        ("user", "other", None, None, dt.datetime(2022, 8, 20)),  # three weeks after it
        ("user", "other", None, None, dt.datetime(2024, 1, 1)),  # long after
        ("user", "home", dt.datetime(2019, 1, 1), None, dt.datetime(2024, 1, 1)),  # held since 2019: still then
        ("user", "home", None, dt.datetime(2022, 6, 1), dt.datetime(2024, 1, 1)),  # ended a month before it
        ("user", "other", None, None, None),  # no time at all
    ]
    shares = [round(float(s), 3) for s in time_shares(facts, window, 1.0)]
    assert shares[0] == 1.0 and shares[3] == 1.0 and shares[5] == 0.0
    assert 1.0 > shares[1] > shares[4] > shares[2] >= 0.0
