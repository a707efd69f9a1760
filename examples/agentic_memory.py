"""Agentic memory: the agent decides when to remember, through one memory tool.

The tool takes an instruction ("remember they moved to Porto") and carries it out with the same typed,
one-call, transactional extraction as `MemoryManager.update_memory_task`. See _offline.py for running
it live. uv run python examples/agentic_memory.py
"""

from _offline import model_settings, show

from memlayer import Agent, DuckDb, MemoryManager

model, chat, replay = model_settings("agentic_memory", max_tokens=300)
with replay, DuckDb() as db:
    agent = Agent(
        name="Memory Agent",
        db=db,
        memory_manager=MemoryManager(db=db, **model),
        enable_agentic_memory=True,  # the model gets an update_user_memory tool
        max_tool_rounds=1,
        **chat,
    )
    # A hosted model calls the tool on "Remember that ..."; the 1.5B model this was recorded with needs the
    # tool named, or it only says that it will remember.
    response = agent.print_response(
        "Use update_user_memory to remember that I moved to Porto last month.", user_id="ana@example.com"
    )
    show(response)
    for memory in agent.get_user_memories(user_id="ana@example.com"):
        print(f"   remembered: {memory.memory} {memory.topics}")
