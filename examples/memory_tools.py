"""MemoryTools: list, search, add, update and delete memories as tools any tool-calling model can use.

Each tool acts for the run's user_id, which comes from the run and never from the model, so no prompt
can make it touch another user's memories. Local servers that ignore native tools get memlayer's JSON
tool mode. uv run python examples/memory_tools.py
"""

from _offline import model_settings, show

from memlayer import Agent, DuckDb, MemoryManager, MemoryTools

model, chat, replay = model_settings("memory_tools", max_tokens=300)
with replay, DuckDb() as db:
    manager = MemoryManager(db=db, **model)
    manager.add_user_memory("Lives in Lisbon", user_id="ana@example.com", topics=["home"])
    manager.add_user_memory("Bob's secret: none of Ana's business", user_id="bob@example.com")
    agent = Agent(db=db, memory_manager=manager, tools=[MemoryTools()], max_tool_rounds=1, **chat)
    response = agent.print_response("Use get_memories to list what you know about me.", user_id="ana@example.com")
    show(response)
    print("bob's memories, untouched:", [m.memory for m in manager.get_user_memories(user_id="bob@example.com")])
