"""Relative dates in a memory ("next Friday", "in two weeks"), made absolute from the message's time.

A memory outlives the conversation it came from: "dentist next Friday" means nothing a month later.
The prompt asks the model to write dates, and gives it a calendar, but a 1.5B model still copies the
user's words about a third of the time. So after the model has answered, the English phrases below
are replaced by the date they meant, counted from the time of the conversation's last message. Other
languages are left to the model; so is anything ambiguous (a bare "on Friday" may be a habit).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

__all__ = ["mentions_end", "mentions_time", "parse_point", "resolve_relative_dates", "shift_month"]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10}  # fmt: skip
_DAY = "|".join(_WEEKDAYS)
_COUNT = r"\d{1,2}|" + "|".join(_COUNTS)


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _COUNTS[word.lower()]


def _ahead(today: date, weekday: str) -> date:
    # The first such day after today: "next Friday" said on a Sunday is five days later.
    return today + timedelta(days=(_WEEKDAYS.index(weekday.lower()) - today.weekday() - 1) % 7 + 1)


def _this(today: date, weekday: str) -> date:
    # "This Friday" said on a Friday is that day; on any other day it is the coming one.
    return today if today.weekday() == _WEEKDAYS.index(weekday.lower()) else _ahead(today, weekday)


def _before(today: date, weekday: str) -> date:
    return today - timedelta(days=(today.weekday() - _WEEKDAYS.index(weekday.lower()) - 1) % 7 + 1)


def shift_month(today: date, step: int) -> str:
    """The month ``step`` months from ``today``'s, as YYYY-MM."""
    index = today.year * 12 + today.month - 1 + step
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _span(unit: str, n: int) -> timedelta:
    return timedelta(days=n * (7 if unit.lower().startswith(("week", "fortnight")) else 1))


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str], date], str]]
_RULES: tuple[_Rule, ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replace)
    for pattern, replace in (
        (r"\b(?:on )?the day after tomorrow\b", lambda m, d: f"on {d + timedelta(days=2)}"),
        (r"\b(?:on )?tomorrow\b", lambda m, d: f"on {d + timedelta(days=1)}"),
        (r"\b(?:on )?yesterday\b", lambda m, d: f"on {d - timedelta(days=1)}"),
        (rf"\b(?:on )?(?:next|coming|this coming) ({_DAY})\b", lambda m, d: f"on {_ahead(d, m[1])}"),
        (rf"\b(?:on )?this ({_DAY})\b", lambda m, d: f"on {_this(d, m[1])}"),
        (rf"\b(?:on )?last ({_DAY})\b", lambda m, d: f"on {_before(d, m[1])}"),
        (rf"\bin ({_COUNT}) (days?|weeks?)(?: time)?\b", lambda m, d: f"on {d + _span(m[2], _count(m[1]))}"),
        (rf"\b({_COUNT}) (days?|weeks?) from (?:today|now)\b", lambda m, d: f"on {d + _span(m[2], _count(m[1]))}"),
        (rf"\b({_COUNT}) (days?|weeks?) ago\b", lambda m, d: f"on {d - _span(m[2], _count(m[1]))}"),
        (r"\bin a fortnight\b", lambda m, d: f"on {d + timedelta(days=14)}"),
        (r"\bnext week\b", lambda m, d: f"in the week of {_ahead(d, 'monday')}"),
        (r"\blast week\b", lambda m, d: f"in the week of {d - timedelta(days=d.weekday() + 7)}"),
        (r"\bnext month\b", lambda m, d: f"in {shift_month(d, 1)}"),
        (r"\blast month\b", lambda m, d: f"in {shift_month(d, -1)}"),
        (r"\bnext year\b", lambda m, d: f"in {d.year + 1}"),
        (r"\blast year\b", lambda m, d: f"in {d.year - 1}"),
    )
)


def resolve_relative_dates(text: str, today: date | None) -> str:
    """``text`` with its English relative dates replaced by dates counted from ``today``."""
    if today is None:
        return text
    day = today
    for pattern, replace in _RULES:
        text = pattern.sub(lambda match: replace(match, day), text)  # noqa: B023 - used at once, in this turn
    return text


_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")  # fmt: skip
_ISO = re.compile(r"\b(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?\b")
# A month by its name or its three letters ("Mar.", "Sept", "March"), not a word that starts like one ("market").
_ENDINGS = "|".join(sorted({m[3:] for m in _MONTHS if m[3:]} | {"t"}, key=len, reverse=True))
_MONTH = re.compile(
    rf"\b({'|'.join(m[:3] for m in _MONTHS)})(?:{_ENDINGS})?\.?"
    r"(?:\s+(\d{4}))?\b",
    re.IGNORECASE,
)
_AGO = re.compile(rf"\b({_COUNT}) (years?|months?) ago\b|\bfor (?:the (?:last|past) )?({_COUNT}) (years?|months?)\b",
                  re.IGNORECASE)  # fmt: skip


def parse_point(text: str | None, today: date | None) -> date | None:
    """The day a point in time written by the model starts on: a date, a month, a year, or a phrase.

    For when a fact held: "2019" is 2019-01-01, "2021-03" and "March 2021" 2021-03-01, a bare "March"
    the last March up to ``today``; "two years ago" and "for two years" count back from ``today``; the
    English relative phrases of `resolve_relative_dates` too. None when the text holds no time.
    """
    if not text or not text.strip():
        return None
    text = resolve_relative_dates(text.strip(), today)
    iso = _ISO.search(text)
    named = _MONTH.search(text)
    if iso is not None and (iso[2] or named is None or not named[2]):
        year, month, day = int(iso[1]), int(iso[2] or 1), int(iso[3] or 1)
        try:
            return date(year, month, day) if 1000 < year < 3000 else None
        except ValueError:
            return None
    if today is not None and (ago := _AGO.search(text)) is not None:
        count, unit = (ago[1], ago[2]) if ago[1] else (ago[3], ago[4])
        months = _count(count) * (12 if unit.lower().startswith("year") else 1)
        return date.fromisoformat(shift_month(today, -months) + "-01")
    if named is not None and (named[2] or today is not None):
        month = [m[:3] for m in _MONTHS].index(named[1].lower()) + 1
        if named[2]:
            return date(int(named[2]), month, 1)
        assert today is not None
        return date(today.year if month <= today.month else today.year - 1, month, 1)
    return None


_CUE = re.compile(
    rf"\b(?:\d{{4}}|{'|'.join(_MONTHS)}|{'|'.join(m[:3] for m in _MONTHS)}|since|until|till|ago|last|next|yesterday"
    r"|tomorrow"
    rf"|used to|any ?more|no longer|for (?:{_COUNT}|several|many|a few) (?:years?|months?|weeks?|days?))\b",
    re.IGNORECASE,
)


def mentions_time(text: str) -> bool:
    """Whether ``text`` says when something held: a year, a month, "since", "until", "ago", "used to"...

    A small model fills a "since" / "until" field it was not given anything for ("until April" for
    "swimming only now"); a time the user never mentioned is not taken.
    """
    return _CUE.search(text) is not None


_END = re.compile(
    r"\b(?:until|till|through|up to|ago|used to|any ?more|no longer|former(?:ly)?|left|quit|stopped|ended|moved"
    r"|gave up|broke up|retired|was|were|lived|worked|had)\b",
    re.IGNORECASE,
)


def mentions_end(text: str) -> bool:
    """Whether ``text`` says that something stopped: "until 2019", "used to", "no longer", "I left", "lived".

    A model's ``until`` is taken only then: "we move in together next month" gave the move's date as an
    ``until``, which would have hidden a plan as a fact of the past.
    """
    return _END.search(text) is not None
