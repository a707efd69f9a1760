"""Agno's cookbook memory examples (``cookbook/11_memory`` in agno-agi/agno), with only the imports swapped.

Each test is the example's code as its user runs it: the ``agno.*`` imports become ``memlayer.*``, its
``SqliteDb``/``PostgresDb`` a `DuckDb` in a temp dir. Two changes for the scripted model only: runs that
call tools are not streamed (``stream=False``) (LiteLLM's mock streams text, never tool calls), and the example's
``WebSearchTools`` is left out. The README ("Coming from Agno") lists which examples run so.

Why a scripted model, not cassettes: the examples call hosted models (gpt-4o, gpt-5-mini) that cannot be
recorded here, and what they test is that Agno-shaped code runs and stores what the model decided; the
scripted model still goes through LiteLLM and Instructor (tool calls, since these are OpenAI models).
"""

from __future__ import annotations

import asyncio
import io
from contextlib import redirect_stdout
from pathlib import Path

from memlayer.agent import Agent
from memlayer.db.duckdb import DuckDb
from memlayer.memory import MemoryManager
from memlayer.models.openai import OpenAIChat
from memlayer.testing import scripted_model, tool_calls
from memlayer.tools.memory import MemoryTools

JOHN = "john_doe@example.com"


def _ops(*operations: dict[str, object]) -> object:
    return tool_calls(("MemoryOperations", {"operations": list(operations)}))


def test_02_agentic_memory(tmp_path: Path) -> None:
    db = DuckDb(db_file=str(tmp_path / "memory.db"))
    agent = Agent(model=OpenAIChat(id="gpt-4o-mini"), db=db, enable_agentic_memory=True)
    remember = tool_calls(("update_user_memory", {"task": "Name is John Doe; hikes in the mountains on weekends"}))
    # memlayer deletes only memories the task's words mention ("bye" never deletes a job): the model names them.
    task = "Forget every memory of the user: the name John Doe and hiking in the mountains"
    forget = tool_calls(("update_user_memory", {"task": task}))
    script = [
        remember,
        _ops(
            {"op": "add", "memory": "Name is John Doe", "topics": ["name"]},
            {"op": "add", "memory": "Hikes in the mountains on weekends", "topics": ["hobbies"]},
        ),
        "Nice to meet you, John!",
        "You like hiking in the mountains.",
        forget,
        _ops({"op": "delete", "target": "m1"}, {"op": "delete", "target": "m2"}),
        "Done: I forgot everything about you.",
    ]
    with scripted_model(*script), redirect_stdout(io.StringIO()):
        agent.print_response(
            "My name is John Doe and I like to hike in the mountains on weekends.", stream=False, user_id=JOHN
        )
        agent.print_response("What are my hobbies?", stream=True, user_id=JOHN)
        memories = agent.get_user_memories(user_id=JOHN)
        assert [m.memory for m in memories] == ["Hikes in the mountains on weekends", "Name is John Doe"]
        agent.print_response("Remove all existing memories of me.", stream=False, user_id=JOHN)
        assert agent.get_user_memories(user_id=JOHN) == []


def test_04_custom_memory_manager(tmp_path: Path) -> None:
    db = DuckDb(db_file=str(tmp_path / "memory.db"))
    memory_manager = MemoryManager(
        model=OpenAIChat(id="gpt-4o"),
        additional_instructions="""
        IMPORTANT: Don't store any memories about the user's name.
        Just say "The User" instead of referencing the user's name.
        """,
        db=db,
    )
    agent = Agent(
        model=OpenAIChat(id="gpt-4o"),
        db=db,
        memory_manager=memory_manager,
        update_memory_on_run=True,
        user_id=JOHN,
    )
    script = [
        "Swimming and soccer, nice!",
        _ops({"op": "add", "memory": "Likes to swim and play soccer", "topics": ["hobbies"]}),
        "Noted.",
        _ops({"op": "update", "target": "m1", "memory": "Does not like to swim", "topics": ["hobbies"]}),
    ]
    with scripted_model(*script) as model, redirect_stdout(io.StringIO()):
        agent.print_response("My name is John Doe and I like to swim and play soccer.", stream=True)
        agent.print_response("I dont like to swim", stream=True)
        # Read inside the block: the read waits for the run's queued extraction, which needs the script.
        assert [m.memory for m in agent.get_user_memories(user_id=JOHN)] == ["Does not like to swim"]
    assert "Don't store any memories about the user's name." in model.system_prompt(1)


def test_08_memory_tools(tmp_path: Path) -> None:
    db = DuckDb(db_file=str(tmp_path / "memory.db"))
    memory_tools = MemoryTools(db=db)
    agent = Agent(
        model=OpenAIChat(id="gpt-5-mini"),
        tools=[memory_tools],  # the example's WebSearchTools is not part of memlayer
        instructions=[
            "You are a trip planner bot and you are helping the user plan their trip.",
            "You should use the MemoryTools to store information about the user for future reference.",
        ],
        markdown=True,
    )
    script = [
        tool_calls(
            ("add_memory", {"memory": "Likes to hike in the mountains on weekends", "topics": ["hobbies"]}),
            ("add_memory", {"memory": "Plans to travel to Africa in December", "topics": ["travel"]}),
        ),
        "Noted your plans!",
        tool_calls(("get_memories", {})),
        "Here is an itinerary for Kenya and Tanzania.",
    ]

    async def main() -> None:
        await agent.aprint_response(
            "My name is John Doe and I like to hike in the mountains on weekends. "
            "I am planning to travel to Africa in December. ",
            stream=False,
            user_id=JOHN,
        )
        await agent.aprint_response("Make me a travel itinerary for my trip.", stream=False, user_id=JOHN)

    with scripted_model(*script) as model, redirect_stdout(io.StringIO()):
        asyncio.run(main())
    assert "Likes to hike in the mountains on weekends" in model.prompt(3)
    assert "Use markdown" in model.system_prompt(0)
    assert [m.memory for m in agent.get_user_memories(user_id=JOHN)] == [
        "Likes to hike in the mountains on weekends",
        "Plans to travel to Africa in December",
    ]
