"""Search that understands time: a query that names a time ranks memories by when they held.

"What did I do in July 2022?", "where was I the week before 16 November 2023?", "last summer", "before I
moved": the words match many memories, and the time says which. `named_window` reads the time a query
names (English only, like `memlayer._internal.memory.dates`; a query in another language ranks as before) as a
window of event time; `time_shares` gives each memory a share of the fused score by how close its event
time is to that window: a memory's ``held_from`` .. ``held_until`` where the user said them, else the
time of the conversation it was learnt in (``learned_at``), which is when a thing told as news happened.

A query that names no time gets no share: ranking is unchanged, and costs nothing more.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["ALL_TIME", "TIME_WEIGHT", "TimeWindow", "mentions_move", "moved_at", "named_window", "time_shares"]

# The most a memory's time can add to its fused score (0 to a little over 4). Chosen by leaving one
# LoCoMo conversation out (benchmarks/locomo_time.py, docs/time.md): with inputs, 1.0 in all 7 folds
# (temporal R@10 0.800 with no time share -> 0.842); with no inputs 0.5 and 1.0 tie (0.775 -> 0.803).
TIME_WEIGHT = 1.0
# Every time a fact can hold in: as ``held_between``, every version memlayer knows of, ended or not.
ALL_TIME = (datetime(1, 1, 1), datetime(9999, 12, 31))

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")  # fmt: skip
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_YEAR = r"((?:19|20)\d{2})"
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}  # first month of each
_BEFORE = r"(?:the )?(?:week|weekend|days?|(?:mon|tues|wednes|thurs|fri|satur|sun)day) (?:before|prior to) "


@dataclass(frozen=True)
class TimeWindow:
    """A stretch of event time a query names: ``[start, end)``, naive UTC like the stored times."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        # Naive UTC, as stored and as the search index holds its times.
        object.__setattr__(self, "start", self.start.replace(tzinfo=None))
        object.__setattr__(self, "end", self.end.replace(tzinfo=None))

    @property
    def span(self) -> tuple[datetime, datetime]:
        return self.start, self.end

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def _month(word: str) -> int:
    return next(i for i, name in enumerate(_MONTHS, 1) if name.startswith(word.lower()[:3]))


def _day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _months(year: int, month: int, count: int) -> TimeWindow:
    first = year * 12 + month - 1
    last = first + count
    return TimeWindow(datetime(first // 12, first % 12 + 1, 1), datetime(last // 12, last % 12 + 1, 1))


def _days(first: date, count: int) -> TimeWindow:
    start = datetime(first.year, first.month, first.day)
    return TimeWindow(start, start + timedelta(days=count))


def _exact_day(text: str) -> date | None:
    """ "1 May, 2022", "May 1, 2022", "15April, 2022", "2022-05-01": the day a query names, if any."""
    if m := re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", text):
        return _day(int(m[1]), int(m[2]), int(m[3]))
    if m := re.search(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s*(?:of )?{_MONTH}\b,?\s*{_YEAR}", text, re.IGNORECASE):
        return _day(int(m[3]), _month(m[2]), int(m[1]))
    if m := re.search(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s*{_YEAR}", text, re.IGNORECASE):
        return _day(int(m[3]), _month(m[1]), int(m[2]))
    return None


def _absolute(text: str) -> TimeWindow | None:
    day = _exact_day(text)
    if day is not None:
        if re.search(_BEFORE, text, re.IGNORECASE):
            return _days(day - timedelta(days=7), 7)  # "the week before 16 November 2023"
        return _days(day, 1)
    if m := re.search(rf"\b(?:the )?(summer|winter|spring|fall|autumn) (?:of )?{_YEAR}\b", text, re.IGNORECASE):
        return _months(int(m[2]), _SEASONS[m[1].lower()], 3)
    if m := re.search(rf"\b{_MONTH},?\s+(?:of\s+)?{_YEAR}\b", text, re.IGNORECASE):
        return _months(int(m[2]), _month(m[1]), 1)
    if m := re.search(rf"\b(?:in|during|of|since|from|until|before|after|around|by)\s+{_YEAR}\b", text, re.I):
        return _months(int(m[1]), 1, 12)
    return None


def _relative(text: str, today: date) -> TimeWindow | None:
    lowered = text.lower()
    if m := re.search(r"\b(last|this|past) (summer|winter|spring|fall|autumn)\b", lowered):
        first = _SEASONS[m[2]]
        year = today.year if (today.month >= first + 3 or m[1] == "this") else today.year - 1
        return _months(year, first, 3)
    if "yesterday" in lowered:
        return _days(today - timedelta(days=1), 1)
    if re.search(r"\b(last|past) week\b", lowered):
        return _days(today - timedelta(days=today.weekday() + 7), 7)
    if re.search(r"\b(last|past) month\b", lowered):
        return _months(today.year, today.month - 1, 1) if today.month > 1 else _months(today.year - 1, 12, 1)
    if re.search(r"\b(last|past) year\b", lowered):
        return _months(today.year - 1, 1, 12)
    if m := re.search(r"\b(\d{1,2}|two|three|four|five|ten) years ago\b", lowered):
        count = int(m[1]) if m[1].isdigit() else {"two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}[m[1]]
        return _months(today.year - count, 1, 12)
    return None


def named_window(query: str, today: date, *, moved: datetime | None = None) -> TimeWindow | None:
    """The time ``query`` names, as a window of event time, or None when it names none.

    Relative words count from ``today``. "Before/after I moved" needs ``moved``: when the user's
    current home began (without it, the words name no time).
    """
    window = _absolute(query) or _relative(query, today)
    if window is None and moved is not None:
        if re.search(r"\bbefore (?:i|we) moved\b", query, re.IGNORECASE):
            window = TimeWindow(datetime(1900, 1, 1), moved)
        elif re.search(r"\b(?:after|since) (?:i|we) moved\b", query, re.IGNORECASE):
            window = TimeWindow(moved, datetime(2200, 1, 1))
    return window


def mentions_move(query: str) -> bool:
    """Whether ``query`` places itself before or after the user's move ("before I moved")."""
    return re.search(r"\b(?:before|after|since) (?:i|we) moved\b", query, re.IGNORECASE) is not None


def moved_at(facts: Sequence[tuple[Any, ...]]) -> datetime | None:
    """When the user's current home began: the ``held_from`` (else ``learned_at``) of their home memory
    among ``facts`` (the current memories' subject, attribute, held_from, held_until, learned_at)."""
    for subject, attribute, held_from, _held_until, learned_at in facts:
        if subject == "user" and attribute == "home":
            start: datetime | None = held_from or learned_at
            return start
    return None


def time_shares(
    facts: Sequence[tuple[Any, ...]], window: TimeWindow, weight: float = TIME_WEIGHT
) -> npt.NDArray[np.float64]:
    """Each memory's share of the fused score for a query naming ``window``: ``weight`` when its event
    time falls in the window; outside it half that at its edge, halved again every window's length (at
    least every week) further; 0 for a memory with no time at all. ``facts`` are the index's rows: subject,
    attribute, held_from, held_until, learned_at."""
    import numpy as np  # here, not at the top: the search module imports this one, and numpy only when it ranks

    shares = np.zeros(len(facts), dtype=np.float64)
    scale = max(window.days, 7.0) * 86400 / math.log(2)
    for row, (_subject, _attribute, held_from, held_until, learned_at) in enumerate(facts):
        # A span the user gave, open where they gave no end ("since 2019"), else the moment it was learnt.
        start = held_from or (datetime.min if held_until else learned_at)
        if start is None:
            continue
        end = held_until or (datetime.max if held_from else start)
        if start < window.end and end >= window.start:
            shares[row] = weight
            continue
        # Outside: at most half, so a fact that began the day the window ended ranks below one inside it.
        gap = (window.start - end if end < window.start else start - window.end).total_seconds()
        shares[row] = weight * 0.5 * math.exp(-gap / scale)
    return shares
