"""Custom instructions: tell the memory manager what to keep and what to ignore.

additional_instructions (a string or a list) go into the extraction prompt after memlayer's own rules. One that
names what to keep or to leave out ("only ... diet and health", "never ... work") is also typed: every memory
has an attribute (home, work, diet, health, ...), and writes of the others are skipped, each with its reason.
uv run python examples/custom_instructions.py
"""

from _offline import model_settings

from memlayer import DuckDb, MemoryManager

model, chat, replay = model_settings("custom_instructions")
with replay, DuckDb() as db:
    manager = MemoryManager(
        db=db,
        additional_instructions=[
            "Capture only facts about the user's diet and health.",
            "Ignore small talk and greetings.",
        ],
        **model,
    )
    result = manager.create_user_memories(
        [
            {
                "role": "user",
                "content": (
                    "Hi there! Lovely weather today. I'm a lawyer in Lyon, I'm vegetarian and I'm allergic to nuts."
                ),
            },
        ],
        user_id="dev@example.com",
    )
    for change in result.changes:
        print(f"   {change.operation}: {change.memory} {change.topics}")
    for reason in result.skipped:
        print(f"   skipped: {reason}")
    print(f"   ({result.usage.attempts if result.usage else 0} call)")
