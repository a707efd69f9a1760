"""Agent benchmark: memlayer's own time per run, with the model's latency taken out.

Run: ``uv run python benchmarks/agent.py [--runs 30] [--memories 10,1000] [--history 0,5]``

A run reads the session's history and the user's memories, builds the prompt, calls the model, and
stores the run, its messages and its LLM call in one transaction. The model here is LiteLLM's
``mock_response`` (no network); its time inside ``litellm.completion`` is measured and subtracted.
Each configuration runs on a DuckDB file holding the user's N memories, other users' memories, and
the session's earlier runs. Prints the overhead p50 / p95, the LLM calls per run, and the prompt size.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before anything imports LiteLLM

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from memlayer import Agent, DuckDb, MemoryManager
from memlayer._internal.llm.litellm import import_litellm

litellm = import_litellm()
_real_completion = litellm.completion
MODEL = "openai:gpt-4o-mini"
USER = "bench-user"


class Probe:
    """Stands in at litellm.completion: answers with a fixed reply, counts calls and their seconds."""

    calls, seconds, last_messages = 0, 0.0, []

    @classmethod
    def completion(cls, *args: Any, **kwargs: Any) -> Any:
        cls.calls, cls.last_messages, started = cls.calls + 1, kwargs["messages"], time.perf_counter()
        try:
            return _real_completion(*args, **{**kwargs, "mock_response": "Noted. Porto it is."})
        finally:
            cls.seconds += time.perf_counter() - started


def seed(db: DuckDb, memories: int) -> None:
    manager = MemoryManager(db=db)
    rows = [(f"Fact {i} about topic {i % 37}", [f"t{i % 7}"]) for i in range(memories)]
    for other in range(3):  # other users' memories share the table
        rows_for = [(text, topics) for text, topics in rows[: max(memories // 3, 1)]]
        for text, topics in rows_for:
            manager.add_user_memory(text, user_id=f"other-{other}", topics=topics)
    for text, topics in rows:
        manager.add_user_memory(text, user_id=USER, topics=topics)


def measure(memories: int, history: int, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, DuckDb(Path(tmp) / "bench.duckdb") as db:
        seed(db, memories)
        agent = Agent(
            model=MODEL,
            db=db,
            memory_manager=MemoryManager(model=MODEL, db=db),
            add_history_to_context=history > 0,
            num_history_runs=max(history, 1),
        )
        for i in range(history):  # the session's earlier runs
            agent.run(f"Earlier message {i} about topic {i}", user_id=USER, session_id="s")
        overheads, calls = [], []
        for i in range(runs):
            Probe.calls, Probe.seconds = 0, 0.0
            started = time.perf_counter()
            agent.run(f"I moved to Porto, and fact {i} changed", user_id=USER, session_id="s")
            overheads.append((time.perf_counter() - started - Probe.seconds) * 1000)
            calls.append(Probe.calls)
        prompt_chars = sum(len(str(m.get("content") or "")) for m in Probe.last_messages)
        quantiles = statistics.quantiles(overheads, n=20)
        return {
            "p50": statistics.median(overheads),
            "p95": quantiles[18],
            "calls": max(calls),
            "messages": len(Probe.last_messages),
            "prompt_chars": prompt_chars,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--memories", default="10,1000")
    parser.add_argument("--history", default="0,5")
    args = parser.parse_args()
    litellm.completion = Probe.completion
    measure(5, 0, 3)  # imports and caches warm up; not reported
    print("memories  history runs  overhead p50 / p95 ms  LLM calls/run  messages sent  prompt chars")
    for memories in (int(x) for x in args.memories.split(",")):
        for history in (int(x) for x in args.history.split(",")):
            r = measure(memories, history, args.runs)
            print(
                f"{memories:>8}  {history:>12}  {r['p50']:>10.1f} / {r['p95']:<8.1f}  {r['calls']:>13.0f}"
                f"  {r['messages']:>13.0f}  {r['prompt_chars']:>12.0f}"
            )


if __name__ == "__main__":
    main()
