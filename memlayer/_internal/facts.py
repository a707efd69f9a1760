"""What a memory is about: whose fact it is (its subject) and which attribute of theirs (its key).

Free text alone cannot tell "Lives in Lisbon" from a second, unrelated fact, so every memory carries a
key from a small vocabulary that the response schema enforces (a grammar-constrained local model cannot
invent one). Attributes in `SINGLE_VALUED` hold one value at a time: a subject has at most one current
memory for each, and a second value is applied as the update it is (`memlayer._internal.memory.extraction`),
enforced by the store on both databases (`memlayer._internal.db.changes`). The others hold many values (hobbies,
allergies, languages); "other" is the catch-all.

The subject is ``"user"`` for the user's own facts, or the name (or relation) of a person close to them.
Two spellings of one person ("Lena", "sister Lena") are one subject: a subject is compared by its last
word, case-folded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal, get_args

__all__ = [
    "ATTRIBUTES",
    "SINGLE_VALUED",
    "USER",
    "Attribute",
    "fact_key",
    "infer_attribute",
    "subject_key",
    "typed_instructions",
]

Attribute = Literal[
    "name",
    "age",
    "birthday",
    "home",
    "work",
    "diet",
    "partner",
    "family",
    "pet",
    "health",
    "hobby",
    "likes",
    "dislikes",
    "language",
    "skill",
    "goal",
    "plan",
    "other",
]
ATTRIBUTES: tuple[str, ...] = get_args(Attribute)
# One value at a time: a new home city, employer or diet replaces the old one.
SINGLE_VALUED = frozenset({"name", "age", "birthday", "home", "work", "diet", "partner"})
USER = "user"

# Words that name the user rather than another person.
_SELF = frozenset({"", "user", "the user", "me", "i", "myself", "self", "you"})
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def subject_key(subject: str | None) -> str:
    """The form two spellings of one subject share: ``"user"``, or the last word of a person's name."""
    text = (subject or "").strip().casefold()
    text = re.sub(r"^(?:my|the user's|user's|the)\s+", "", text)
    if text in _SELF:
        return USER
    words = _WORD.findall(text)
    return words[-1] if words else USER


def fact_key(subject: str | None, attribute: str | None) -> str | None:
    """The key the store keeps unique among a user's current memories; None for a many-valued attribute."""
    if attribute not in SINGLE_VALUED:
        return None
    return f"{subject_key(subject)}:{attribute}"


# A memory stored without a key (a direct add, or a store made before keys) gets one only where its
# text or topics say so unmistakably; anything else is "other", which never replaces a memory.
_TEXT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (attribute, re.compile(pattern, re.IGNORECASE))
    for attribute, pattern in (
        ("home", r"^(?:now |currently )?(?:lives|living|resides|is based) (?:in|at|near|on)\b"),
        ("health", r"^(?:is |has an? )?(?:allergic|allergy|allergies|intolerant)\b"),
        ("work", r"^(?:now |currently )?(?:works|working|is employed) (?:as|at|for|in)\b"),
        ("diet", r"^(?:is |eats )?(?:a )?(?:vegetarian|vegan|pescatarian)\b"),
        ("partner", r"^(?:partner|wife|husband|girlfriend|boyfriend|spouse|fianc[eé]e?) is\b|^is married to\b"),
        ("name", r"^(?:name is|is named|is called|goes by)\b"),
    )
)


def infer_attribute(text: str, topics: Iterable[str] = ()) -> str:
    """The attribute of a memory given without one: a clear English phrasing ("Lives in ...", "Works
    as ..."), else a topic that names an attribute, else ``"other"``."""
    for attribute, pattern in _TEXT_RULES:
        if pattern.search(text.strip()):
            return attribute
    for topic in topics:
        if topic.strip().lower() in ATTRIBUTES:
            return topic.strip().lower()
    return "other"


# Words developers use in an instruction for each attribute ("Capture only diet and health").
_ATTRIBUTE_WORDS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "age": ("age",),
    "birthday": ("birthday", "birthdays"),
    "home": ("home", "city", "address", "where they live", "location"),
    "work": ("work", "job", "career", "employer", "occupation", "profession"),
    "diet": ("diet", "food", "eating", "dietary"),
    "partner": ("partner", "relationship", "spouse"),
    "family": ("family", "relatives"),
    "pet": ("pet", "pets", "animals"),
    "health": ("health", "medical", "allergies", "allergy", "fitness"),
    "hobby": ("hobby", "hobbies", "pastimes", "sport", "sports"),
    "likes": ("likes", "preferences", "favourites", "favorites"),
    "dislikes": ("dislikes",),
    "language": ("spoken language", "languages they speak"),
    "skill": ("programming", "programming language", "tools", "skills", "tech stack", "coding"),
    "goal": ("goal", "goals"),
    "plan": ("plan", "plans", "appointments", "travel", "trips", "schedule"),
}
_ONLY = re.compile(r"\b(?:only|exclusively|nothing but|nothing except)\b", re.IGNORECASE)
# An instruction restricts what is kept only when it is about keeping: "Just say 'the user'" is not.
_KEEPING = re.compile(r"\b(?:remember|store|capture|keep|save|record|track|memor\w*|extract)\b", re.IGNORECASE)
_NEVER = re.compile(r"\b(?:never|don.t|do not|ignore|avoid|exclude)\b", re.IGNORECASE)


def _named_attributes(text: str) -> set[str]:
    lowered = f" {text.casefold()} "
    return {
        attribute
        for attribute, words in _ATTRIBUTE_WORDS.items()
        if any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", lowered) for word in words)
    }


def typed_instructions(instructions: Sequence[str]) -> tuple[frozenset[str] | None, frozenset[str]]:
    """The attributes a developer's free-text instructions restrict extraction to, and the ones they exclude.

    "Capture only facts about diet and health" captures ``{"diet", "health"}``; "Never store anything about
    work" ignores ``{"work"}``. An instruction that names no attribute types nothing: it still reaches the
    model as text. Returns ``(capture, ignore)``; ``capture`` is None when nothing restricts it.
    """
    capture: set[str] | None = None
    ignore: set[str] = set()
    for line in instructions:
        named = _named_attributes(line)
        if not named or not _KEEPING.search(line):
            continue
        if _ONLY.search(line):
            capture = named if capture is None else capture | named
        elif _NEVER.search(line):
            ignore |= named
    return (None if capture is None else frozenset(capture)), frozenset(ignore)
