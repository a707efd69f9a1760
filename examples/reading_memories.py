"""Reading memories: current ones, search, full history, the past (as_of), sessions, and SQL.

No LLM call except the extraction that writes them. uv run python examples/reading_memories.py
"""

from _offline import model_settings

from memlayer import DuckDb, MemoryManager

USER = "ana@example.com"
model, chat, replay = model_settings("reading_memories")
with replay, DuckDb() as db:
    manager = MemoryManager(db=db, **model)
    porto = manager.add_user_memory("Lives in Porto", user_id=USER, topics=["home"])
    manager.replace_user_memory(porto.memory_id, "Lives in Lisbon", user_id=USER)
    manager.create_user_memories("I run 10k every Saturday and I'm learning Portuguese.", user_id=USER)

    print("now:", [m.memory for m in manager.get_user_memories(user_id=USER)])
    print("search 'where do I live':", [m.memory for m in manager.search_user_memories("live", user_id=USER, limit=3)])
    print(
        "as it was before the move:",
        [m.memory for m in manager.get_user_memories(user_id=USER, as_of=porto.updated_at)],
    )
    print("history of one memory:")
    for event in manager.get_memory_history(porto.memory_id, user_id=USER):
        print(f"   {event.operation:<6} {event.old_memory!r} -> {event.new_memory!r} ({event.source})")
    print("SQL:", db.sql("SELECT operation, count(*) FROM memory_events GROUP BY ALL ORDER BY 1"))
