"""The prompt texts. Short on purpose: the fixed part of an extraction prompt stays under 1.5k tokens.

Bump ``PROMPT_VERSION`` whenever a text changes: it is stored with every LLM call, and a changed
prompt changes request bodies, so recorded cassettes must be re-recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

__all__ = [
    "AGENT_PROMPT_VERSION",
    "EXAMPLE_MEMORIES",
    "PROMPT_VERSION",
    "agent_system_prompt",
    "extraction_system_prompt",
    "render_conversation",
    "render_memories",
    "render_task",
]

PROMPT_VERSION = "extract-v2"
AGENT_PROMPT_VERSION = "agent-v1"

# The model under JSON_SCHEMA mode never sees the schema (a local server turns it into a grammar),
# so the prompt shows the reply's shape, once, in an example. The example's facts are ones no
# conversation is likely to hold, and `extract.apply_operations` drops a memory the user never said.
EXAMPLE_MEMORIES = ("Works as a baker", "Plays chess on Sundays", "Lives in Ghent")
_SYSTEM = """\
You keep an assistant's long-term memory about one user. Read the new conversation and reply with \
JSON: only the changes to make to the stored memories.{extra}

Keep lasting facts the user states about themselves: name, home, work, family, partner, pets, \
diet, health, likes and dislikes, hobbies, goals, plans with their dates, and anything they ask you \
to remember. Skip greetings, thanks, small talk, moods, the weather, the user's questions, and \
anything only the assistant said. Most messages hold no new fact: then reply {{"operations": []}}.

- add: a new fact, in under 12 words, in the user's language (never translate). Write it about the \
user without "User" ("Is allergic to nuts"). A fact about someone else names them ("Brother Tom \
lives in Oslo"); it never changes the user's own facts.
- update: the user changed or corrected the fact in one stored memory (same subject, new value: a \
new city replaces the old city). Write the whole new fact. Anything else is an add.
- delete: the user says a stored memory is no longer true, or asks to forget it.
Stored memories that stay true are left out of the reply. Write dates as YYYY-MM-DD, looked up in \
the calendar given. topics: 1 to 3 short lowercase words.

Example, for another user (never store its facts):
Stored memories:
m1: {ex1}
m2: {ex2}
m3: {ex3}
Conversation (today is Fri 2025-05-02; coming days Sat 2025-05-03, ..., Fri 2025-05-09):
user: Hi! I quit the bakery, I teach maths now. Forget the chess thing. My brother Tom moved to Oslo. \
My parrot Kiwi sees the vet next Friday.
assistant: Good luck with the new job!
Reply:
{{"operations": [{{"op": "update", "target": "m1", "memory": "Works as a maths teacher", "topics": ["work"]}}, \
{{"op": "delete", "target": "m2"}}, {{"op": "add", "memory": "Brother Tom lives in Oslo", "topics": ["family"]}}, \
{{"op": "add", "memory": "Parrot Kiwi sees the vet on 2025-05-09", "topics": ["pets"]}}]}}"""


def extraction_system_prompt(additional: Sequence[str]) -> str:
    """The fixed system prompt: the caller's instructions first, the rules, one example reply."""
    extra = "".join(f"\n- {line}" for line in additional)
    if extra:
        # First: a small model weighs what it reads first, and these narrow the rules below.
        extra = "\nThe developer's instructions, which come before every rule below:" + extra
    return _SYSTEM.format(extra=extra, ex1=EXAMPLE_MEMORIES[0], ex2=EXAMPLE_MEMORIES[1], ex3=EXAMPLE_MEMORIES[2])


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
    month = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return (
        f"today is {day:%a %Y-%m-%d}; yesterday {day - timedelta(days=1):%Y-%m-%d}; coming days {ahead}; "
        f"in 2 weeks {day + timedelta(days=14):%Y-%m-%d}; next month {month:%Y-%m}"
    )


def render_task(task: str, memories: str) -> str:
    """A direct instruction about the user's memories, from the developer or an agent."""
    return f"{memories}\nInstruction to carry out on the stored memories:\n{task}\nReply:"


def agent_system_prompt(
    instructions: Sequence[str], memories: Sequence[tuple[str, list[str]]], *, agentic: bool
) -> str:
    """An agent's system prompt: its instructions, then what it remembers about this user, marked."""
    parts = list(instructions) or ["You are a helpful assistant."]
    if memories:
        lines = "\n".join(f"- {text}" + (f" [{', '.join(topics)}]" if topics else "") for text, topics in memories)
        parts.append(
            "What you remember about this user from earlier conversations (use it when it helps; "
            f"do not recite it):\n<user_memories>\n{lines}\n</user_memories>"
        )
    if agentic:
        parts.append(
            "When the user shares a lasting fact about themselves, or asks you to forget one, call "
            "update_user_memory with a short instruction, then answer."
        )
    return "\n\n".join(parts)
