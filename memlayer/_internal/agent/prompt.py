"""An agent's system prompt: its instructions, what it remembers about the user, and the memory tool's rule.

Bump ``AGENT_PROMPT_VERSION`` whenever the text changes: it is stored with every chat call, and a
changed prompt changes request bodies, so recorded cassettes must be re-recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["AGENT_PROMPT_VERSION", "agent_instructions", "agent_system_prompt"]

AGENT_PROMPT_VERSION = "agent-v2"


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


def agent_instructions(
    description: str | None,
    instructions: str | Sequence[str] | None,
    expected_output: str | None,
    additional_context: str | None,
    markdown: bool,
) -> list[str]:
    """The agent's own part of its system prompt, from Agno's options, in Agno's order."""
    parts = [description] if description else []
    parts += [instructions] if isinstance(instructions, str) else list(instructions or [])
    if expected_output:
        parts.append(f"The expected output:\n{expected_output}")
    if additional_context:
        parts.append(additional_context)
    if markdown:
        parts.append("Use markdown to format your answers.")
    return parts
