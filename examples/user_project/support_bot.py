"""A user's application code: a support bot that remembers its customers with memlayer.

Nothing here knows about tests or cassettes; the model is whatever string the caller configures.
"""

from __future__ import annotations

from memlayer import DuckDb, MemoryManager


class SupportBot:
    def __init__(self, model: str, db: DuckDb, **model_options: object) -> None:
        self.memory = MemoryManager(
            model=model,
            db=db,
            **model_options,
        )

    def hear(self, customer: str, text: str) -> list[str]:
        """Remember what matters in what a customer said; return the facts now known about them."""
        self.memory.create_user_memories(text, user_id=customer)
        return [m.memory for m in self.memory.get_user_memories(user_id=customer)]
