"""Shared memory: two agents on one db see the same memories of a user.

A support agent learns something; a sales agent, a separate Agent on the same DuckDb, has it in its
context on the next run. uv run python examples/shared_memory.py
"""

from _offline import model_settings, show

from memlayer import Agent, DuckDb, MemoryManager

USER = "ana@example.com"
model, chat, replay = model_settings("shared_memory")
with replay, DuckDb() as db:
    manager = MemoryManager(db=db, **model)
    support = Agent(name="Support", db=db, memory_manager=manager, update_memory_on_run=True, **chat)
    sales = Agent(name="Sales", db=db, memory_manager=manager, **chat)

    print("support agent:")
    show(support.print_response("My team of 12 uses the Pro plan.", user_id=USER))
    print("sales agent, same user, same db:")
    response = sales.print_response("Which plan would suit us?", user_id=USER)
    show(response)
    print(f"   the sales agent had {len(response.memories_in_context)} memory(ies) in context:")
    for memory in sales.get_user_memories(user_id=USER):
        print(f"   {memory.memory} (written by agent {memory.agent_id!r})")
