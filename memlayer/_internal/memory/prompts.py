"""The extraction prompt texts. Short on purpose: the fixed part of an extraction prompt stays under 1.5k tokens.

Bump ``PROMPT_VERSION`` whenever a text changes: it is stored with every LLM call, and a changed
prompt changes request bodies, so recorded cassettes must be re-recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from .dates import shift_month

__all__ = [
    "PROMPT_VERSION",
    "extraction_prompt",
    "render_conversation",
    "render_memories",
    "render_task",
]

PROMPT_VERSION = "extract-v3"

_SYSTEM = """\
You keep an assistant's long-term memory about one user. Read the new conversation and reply with \
JSON: the changes to make to the stored memories.

Store lasting facts the user states about themselves: name, home, work, family and partner, pets, \
diet, health, likes and dislikes, hobbies, skills, goals, plans and dates, and anything they ask you \
to remember. Do not store greetings, thanks, small talk, the weather, the user's questions, what only \
the assistant said, or facts about other people that say nothing about the user. Most messages hold \
no new fact: then reply {{"operations": []}}.

Every fact has a subject ("user", or the name of the person it is about) and an attribute: name, age, \
birthday, home, work, diet, partner, family, pet, health, hobby, likes, dislikes, language, skill, goal, \
plan, or other. The user has one home, one work, one diet and one partner at a time.

Operations:
- add: a new fact. One short fact per add, in the language the user writes in (never translate), \
without "The user" (e.g. "Is allergic to nuts"). Several facts are several adds.
- update: the user changes or corrects the fact of one stored memory (a new city replaces the old \
city, a new job the old job). Write the whole new fact, not the old one.
- delete: the user says a stored memory is no longer true, or asks to forget it.
A fact already stored needs no operation. since / until: when the fact started or stopped holding, \
only if the user said (a date, month or year). Turn relative dates ("next Friday", "last month") into \
dates using the dates given.{extra}

Example, for another user (never store its facts):
Stored memories:
m1: Works as a baker
m2: Plays chess on Sundays
Conversation (today is Fri 2025-05-02; coming days Sat 2025-05-03, ..., Fri 2025-05-09):
user: Hi! I quit the bakery in March, I teach maths now. Forget the chess thing. My parrot Kiwi sees \
the vet next Friday. My brother Tom is a pilot.
assistant: Good luck with the new job!
Reply:
{{"operations": [{{"op": "update", "target": "m1", "subject": "user", "attribute": "work", \
"memory": "Works as a maths teacher", "since": "2025-03"}}, {{"op": "delete", "target": "m2"}}, \
{{"op": "add", "subject": "user", "attribute": "pet", "memory": "Has a parrot named Kiwi, vet visit on \
2025-05-09"}}, {{"op": "add", "subject": "Tom", "attribute": "work", "memory": "Brother Tom is a pilot"}}]}}"""


def extraction_prompt(additional: Sequence[str]) -> list[dict[str, str]]:
    """The fixed part of every extraction: one system message with the rules, the caller's
    instructions and one example reply.

    Under JSON_SCHEMA mode a local model never sees the schema (the server turns it into a grammar),
    so the example is what shows it the reply's shape: without it qwen1.5b answered [] to everything.
    Its facts are ones conversations rarely hold, and `extract.apply_operations` drops any memory the
    user never said, so a copied example is not stored. Measured alternatives (README, "Extraction
    quality"): three example turns as chat messages, the instructions first or repeated beside the
    reply, a longer rule list; each scored lower on the tune scenarios.
    """
    extra = "".join(f"\n- {line}" for line in additional)
    if extra:
        extra = "\nThe developer's instructions come first:" + extra
    return [{"role": "system", "content": _SYSTEM.format(extra=extra)}]


def render_memories(memories: Sequence[tuple[str, str]]) -> str:
    """The candidate memories by alias; text only, so no rendering of topics can leak into a memory."""
    lines = "\n".join(f"{alias}: {text}" for alias, text in memories)
    return "Stored memories:\n" + (lines or "(none)")


def render_conversation(messages: Sequence[tuple[str, str, datetime | None]], memories: str) -> str:
    """The user turn of an extraction: stored memories, the dates around the conversation, its messages.

    Messages are dated one by one only when they span more than one day.
    """
    days = [when.date() for _, _, when in messages if when is not None]
    header = f"Conversation ({_calendar(days[-1])}):" if days else "Conversation:"
    dated = len(set(days)) > 1
    lines = [
        (f"[{when:%Y-%m-%d}] " if dated and when else "") + f"{role}: {content}" for role, content, when in messages
    ]
    return f"{memories}\n{header}\n" + "\n".join(lines) + "\nReply:"


def _calendar(day: date) -> str:
    # Small models cannot count days; a short calendar turns "on Friday" into a lookup.
    ahead = ", ".join(f"{day + timedelta(days=n):%a %Y-%m-%d}" for n in range(1, 8))
    return (
        f"today is {day:%a %Y-%m-%d}; yesterday {day - timedelta(days=1):%Y-%m-%d}; coming days {ahead}; "
        f"in 2 weeks {day + timedelta(days=14):%Y-%m-%d}; next month {shift_month(day, 1)}"
    )


def render_task(task: str, memories: str) -> str:
    """A direct instruction about the user's memories, from the developer or an agent."""
    return f"{memories}\nInstruction to carry out on the stored memories:\n{task}\nReply:"
