"""memlayer quick start: extract memories from a conversation, change them, read their history.

Offline (the default): replays cassettes/examples/quickstart.json, real traffic recorded from a small
local model (Qwen2.5-Coder-1.5B-Instruct on llama.cpp): the memories shown are the ones it really wrote.

Live, with any LiteLLM model string:
    MEMLAYER_MODEL=openai:gpt-4o-mini OPENAI_API_KEY=... uv run python examples/quickstart.py
    MEMLAYER_MODEL=ollama:llama3.2 uv run python examples/quickstart.py
Against the local server used for the recording (../shared/tools/local-llm start):
    MEMLAYER_MODEL=openai/qwen1.5b MEMLAYER_API_BASE=http://127.0.0.1:8765/v1 uv run python examples/quickstart.py
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from memlayer import DuckDb, MemoryManager
from memlayer.testing import use_cassette

CASSETTE = Path(__file__).resolve().parent.parent / "cassettes" / "examples" / "quickstart.json"
USER = "ana@example.com"


def main() -> None:
    model = os.environ.get("MEMLAYER_MODEL")
    api_base = os.environ.get("MEMLAYER_API_BASE")
    if model:
        replay: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        print(f"live: {model}")
    else:
        model, api_base = "openai/qwen1.5b", "http://127.0.0.1:8765/v1"
        replay = use_cassette(CASSETTE)  # MEMLAYER_RECORD=rewrite re-records it
        print(f"offline: replaying {CASSETTE.name}, recorded from qwen1.5b (Qwen2.5-Coder-1.5B on llama.cpp)")

    with tempfile.TemporaryDirectory() as tmp, DuckDb(db_file=Path(tmp) / "quickstart.duckdb") as db, replay:
        memory = MemoryManager(
            model=model,
            db=db,
            api_base=api_base,
            api_key="local" if api_base else None,
        )

        print("\n1. one LLM call turns a conversation into typed operations")
        result = memory.create_user_memories(
            [{"role": "user", "content": "Remember that I am vegetarian and I work as a nurse."}], user_id=USER
        )
        for change in result.changes:
            print(f"   {change.operation:<6} {change.memory}")
        if result.usage:
            print(
                f"   ({result.usage.attempts} call, {result.usage.input_tokens} + {result.usage.output_tokens} tokens)"
            )

        print("\n2. direct edits need no LLM call")
        lisbon = memory.add_user_memory("Lives in Lisbon", user_id=USER, topics=["home"])
        print(f"   add    {lisbon.memory} ({lisbon.memory_id})")

        print("\n3. an instruction goes through the same one-call path; it can only target memories it was shown")
        result = memory.update_memory_task("Replace the text of memory m1 with 'Lives in Porto'.", user_id=USER)
        for change in result.changes:
            print(f"   {change.operation:<6} {change.old_memory!r} -> {change.memory!r}")

        print("\n4. what is remembered now")
        for m in memory.get_user_memories(user_id=USER):
            print(f"   v{m.version} {m.memory}  {m.topics}")

        print("\n5. every change is an event, with its reason and the call that made it")
        for event in memory.get_user_events(user_id=USER):
            print(f"   {event.operation:<6} {event.source:<10} {event.old_memory!r} -> {event.new_memory!r}")

        print("\n6. and it is all SQL")
        for row in db.sql(
            "SELECT purpose, model, input_tokens, output_tokens, status FROM llm_calls ORDER BY created_at"
        ):
            print("  ", row)


if __name__ == "__main__":
    main()
