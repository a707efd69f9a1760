"""Relative dates made absolute after the model answers (memlayer._internal.memory.dates): pure logic, no model."""

from __future__ import annotations

from datetime import date

import pytest

from memlayer._internal.memory.dates import resolve_relative_dates

SUNDAY = date(2026, 3, 8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dentist appointment next Friday at 10", "Dentist appointment on 2026-03-13 at 10"),
        ("Dentist on next Friday", "Dentist on 2026-03-13"),
        ("Flies to Nairobi tomorrow", "Flies to Nairobi on 2026-03-09"),
        ("Turned 40 yesterday", "Turned 40 on 2026-03-07"),
        ("Started the new job last Monday", "Started the new job on 2026-03-02"),
        ("Thesis defence is two weeks from today", "Thesis defence is on 2026-03-22"),
        ("Defence in 3 days", "Defence on 2026-03-11"),
        ("Moves in with Sam next month", "Moves in with Sam in 2026-04"),
        ("Trip next week", "Trip in the week of 2026-03-09"),
        ("Plays golf on Sundays", "Plays golf on Sundays"),  # a habit, not a date
        ("Vet visit on 2026-03-13", "Vet visit on 2026-03-13"),
    ],
)
def test_english_relative_dates_become_dates(text: str, expected: str) -> None:
    assert resolve_relative_dates(text, SUNDAY) == expected


def test_next_weekday_is_never_today_and_the_year_turns() -> None:
    friday = date(2026, 12, 25)
    assert resolve_relative_dates("Party next Friday", friday) == "Party on 2027-01-01"
    assert resolve_relative_dates("Moving next month", friday) == "Moving in 2027-01"


def test_this_weekday_said_on_that_day_is_today_and_next_is_a_week_later() -> None:
    friday = date(2026, 3, 13)
    assert resolve_relative_dates("Dentist this Friday", friday) == "Dentist on 2026-03-13"
    assert resolve_relative_dates("Dentist next Friday", friday) == "Dentist on 2026-03-20"
    # "coming" looks ahead: on a Friday, the coming Friday is the next one.
    assert resolve_relative_dates("Dentist this coming Friday", friday) == "Dentist on 2026-03-20"
    assert resolve_relative_dates("Dentist this Sunday", friday) == "Dentist on 2026-03-15"
    assert resolve_relative_dates("Dentist this Friday", SUNDAY) == "Dentist on 2026-03-13"


def test_without_a_time_nothing_changes() -> None:
    assert resolve_relative_dates("Dentist next Friday", None) == "Dentist next Friday"
