"""The prompt texts. Short on purpose: the fixed part of an extraction prompt stays under 1.5k tokens.

Bump ``PROMPT_VERSION`` whenever a text changes: it is stored with every LLM call, and a changed
prompt changes request bodies, so recorded cassettes must be re-recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AGENT_PROMPT_VERSION",
    "PROMPT_VERSION",
    "agent_system_prompt",
    "extraction_system_prompt",
    "render_conversation",
    "render_task",
]

PROMPT_VERSION = "extract-v1"
AGENT_PROMPT_VERSION = "agent-v1"

_SYSTEM = """\
You maintain the long-term memory of an assistant about one user. Read the input and reply with the \
operations to apply to the user's memories.

Rules:
- Keep durable facts about the user: preferences, goals, plans, biography, relationships, work, \
projects, health, and anything they ask you to remember. Skip greetings, small talk, questions \
to the assistant, and things only the assistant said.
- One memory is one short, self-contained fact about the user, in the language the user wrote in \
(do not translate). Prefer "Prefers Python over JavaScript" to "User said they like Python".
- A fact already stored: do nothing. A fact that changes or corrects a stored memory: "update" \
that memory by its id, never "add" a second version. A fact the user retracts or asks you to \
forget: "delete" that memory by its id.
- Turn relative times ("next week") into dates when the message time is given.
- topics: 1 to 4 short lowercase words, such as "food", "work", "programming".
- reason: a few words on why.
- Nothing worth keeping: reply with an empty list of operations.{extra}

Stored memories (id: memory [topics]):
{memories}"""


def extraction_system_prompt(memories: list[tuple[str, str, list[str]]], additional: list[str]) -> str:
    """The system prompt: rules, the caller's instructions, and the candidate memories by alias."""
    extra = "".join(f"\n- {line}" for line in additional)
    lines = "\n".join(f"{alias}: {text} [{', '.join(topics)}]" for alias, text, topics in memories)
    return _SYSTEM.format(extra=extra, memories=lines or "(none yet)")


def render_conversation(messages: Sequence[tuple[str, str, str | None]]) -> str:
    """The new messages, one per line, with their time when known."""
    lines = []
    for role, content, when in messages:
        stamp = f"[{when}] " if when else ""
        lines.append(f"{stamp}{role}: {content}")
    return "New conversation:\n" + "\n".join(lines)


def render_task(task: str) -> str:
    """A direct instruction about the user's memories, from the developer or an agent."""
    return f"Carry out this instruction on the user's memories:\n{task}"


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
