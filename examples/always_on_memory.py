"""Always-on memory: one extraction after every run, over that run's messages.

Exactly one LLM call per extraction, checked against what the user already has remembered. Setting
this and enable_agentic_memory together is an error. uv run python examples/always_on_memory.py
"""

from _offline import model_settings, show

from memlayer import Agent, DuckDb, MemoryManager

model, chat, replay = model_settings("always_on_memory")
with replay, DuckDb() as db:
    agent = Agent(db=db, memory_manager=MemoryManager(db=db, **model), update_memory_on_run=True, **chat)
    for message in ("I'm vegetarian and I cook every Sunday.", "Actually I eat fish now, so pescatarian."):
        print(f"> {message}")
        show(agent.print_response(message, user_id="ana@example.com", stream=True))
    print("what is remembered now:")
    for memory in agent.get_user_memories(user_id="ana@example.com"):
        print(f"   v{memory.version} {memory.memory} {memory.topics}")
