"""Custom instructions: tell the memory manager what to keep and what to ignore.

additional_instructions (a string or a list) go into the extraction prompt after memlayer's own rules.
uv run python examples/custom_instructions.py
"""

from _offline import model_settings

from memlayer import DuckDb, MemoryManager

model, chat, replay = model_settings("custom_instructions")
with replay, DuckDb() as db:
    manager = MemoryManager(
        db=db,
        additional_instructions=[
            "Capture programming language preferences.",
            "Ignore small talk and greetings.",
        ],
        **model,
    )
    result = manager.create_user_memories(
        [
            {"role": "user", "content": "Hi there! Lovely weather today. I use Rust at work, and I prefer Python."},
        ],
        user_id="dev@example.com",
    )
    for change in result.changes:
        print(f"   {change.operation}: {change.memory} {change.topics}")
    print(f"   skipped {len(result.skipped)} repeat(s) of a stored fact")
    print(f"   ({result.usage.attempts if result.usage else 0} call)")
