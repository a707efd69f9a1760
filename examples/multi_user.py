"""Many users, one agent: each user's memories are theirs alone.

Every read and write takes a user_id and every query filters on it; there is no shared "default"
bucket. uv run python examples/multi_user.py
"""

from _offline import model_settings, show

from memlayer import Agent, DuckDb, MemoryManager

model, chat, replay = model_settings("multi_user")
with replay, DuckDb() as db:
    agent = Agent(db=db, memory_manager=MemoryManager(db=db, **model), update_memory_on_run=True, **chat)
    show(agent.print_response("I'm allergic to peanuts.", user_id="alice"))
    show(agent.print_response("I love peanut butter.", user_id="bob"))
    for user in ("alice", "bob"):
        print(f"{user}: {[m.memory for m in agent.get_user_memories(user_id=user)]}")
    print("carol (never seen):", agent.get_user_memories(user_id="carol"))
