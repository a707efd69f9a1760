"""An agent's ``run()`` with always-on memory off and on: memlayer (background, foreground) beside Agno.

The peers' venv as for ``benchmarks/peers.py`` (whose scripted server this reuses)::

    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install -r benchmarks/peers-requirements.txt -e .
    /tmp/peers-venv/bin/python benchmarks/peers_background.py [--runs 10] [--extraction 2.0]

The scripted OpenAI-compatible server answers the agent's chat turn at once and each library's memory
extraction call after ``--extraction`` seconds (a slow model; for Agno, whose MemoryManager runs a tool
loop, the first call of that loop waits, the answer to the tool results does not). Each case runs in a
fresh worker process: one warm-up run, then ``--runs`` timed ``run()`` calls, each for a new user (so
no run waits on an earlier one's memories), then it waits for every memory to arrive and counts them.
One more memlayer case runs every turn for the same user, back to back, so each run's context read
waits (bounded) for the previous turn's extraction: read-your-writes has that price.

Cases: memlayer ``Agent(update_memory_on_run=...)``, ``memory_mode="background"`` (the default) and
``"foreground"``, on a DuckDB file; Agno ``Agent(update_memory_on_run=...)`` on a SqliteDb file, with
``run()`` (its memory runs in a thread beside the model call, and ``run()`` waits for it before it
returns) and with ``await arun(..., background=True)``, Agno's background option: the whole run is
detached and returns a PENDING output without the answer, which is then polled for with
``aget_run_output`` (the "answer" column: when the answer was there to read).

Printed per case: ``run()`` wall time p50 / p95; memories readable the moment ``run()`` returned; and
memories stored in the end, against the 2 per run the server's extraction asks for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import peers

CASES = [  # (library, memory, how run is called)
    ("memlayer", "off", "run"),
    ("memlayer", "background", "run"),
    ("memlayer", "background", "run, same user"),
    ("memlayer", "foreground", "run"),
    ("agno", "off", "run"),
    ("agno", "on", "run"),
    ("agno", "off", "arun(background=True)"),
    ("agno", "on", "arun(background=True)"),
]


def is_extraction(body: dict[str, Any]) -> bool:
    """memlayer's JSON-schema extraction, or the first call of Agno's memory tool loop."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("name") != "MemorySearchResponse"
    tools = [t["function"]["name"] for t in body.get("tools") or []]
    return "add_memory" in tools and body["messages"][-1]["role"] != "tool"


def turn_facts(i: int) -> list[str]:
    """Two facts per turn that no later turn contradicts (peers.facts' "Lives in Porto (note i)" would
    be one residence, updated in place by memlayer, for the runs of one user)."""
    return [f"Wrote note {i} about Porto", f"Wrote note {i} about green tea"]


def replier(delay: float) -> Any:
    def reply(body: dict[str, Any], todo: list[str]) -> dict[str, Any]:
        if not body.get("tools") and not body.get("response_format"):  # the agent's own chat turn: at once
            msg = {"role": "assistant", "content": "Noted."}
            return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "scripted"), "choices": [{"index": 0, "message": msg,
                    "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                    "total_tokens": 2}}  # fmt: skip
        if is_extraction(body):
            time.sleep(delay)
        # The facts of the turn this call reads (its latest "Note i:"), not of the latest script: a
        # background extraction may run after the next turn has started.
        notes = [int(n) for n in re.findall(r"Note (\d+):", peers.prompt_text(body))]
        return peers.chat_reply(body, turn_facts(max(notes)) if notes else todo)

    return reply


# ---------------------------------------------------------------- workers (one process per case)


class Memlayer:
    def __init__(self, url: str, tmp: Path, memory: str) -> None:
        from memlayer import Agent, DuckDb, MemoryManager

        self.db = DuckDb(db_file=str(tmp / "memlayer.duckdb"))
        self.m = MemoryManager(model="openai/gpt-4o-mini", db=self.db, api_base=url, api_key=peers.KEY,
                               embedder="lexical")  # fmt: skip
        self.agent = Agent(model="openai/gpt-4o-mini", db=self.db, memory_manager=self.m, api_base=url,
                           api_key=peers.KEY, update_memory_on_run=memory != "off",
                           memory_mode="foreground" if memory == "foreground" else "background")  # fmt: skip

    def run(self, text: str, user: str) -> None:
        self.agent.run(text, user_id=user)

    def committed(self, user: str, tag: str = "") -> int:
        """What a reader sees now, without waiting for queued jobs (the store's own read)."""
        return sum(tag in m.memory for m in self.db.get_user_memories(user_id=user))

    def settle(self, users: list[str]) -> None:
        for user in users:
            self.agent.wait_for_memories(user, timeout=120)


class Agno:
    def __init__(self, url: str, tmp: Path, memory: str) -> None:
        from agno.agent import Agent
        from agno.db.sqlite import SqliteDb
        from agno.models.openai import OpenAIChat

        self.db = SqliteDb(db_file=str(tmp / "agno.db"))
        model = OpenAIChat(id="gpt-4o-mini", base_url=url, api_key=peers.KEY)
        self.agent = Agent(model=model, db=self.db, update_memory_on_run=memory == "on", telemetry=False)
        self.pending: list[tuple[str, str]] = []  # (run_id, session_id) of detached runs

    def run(self, text: str, user: str) -> None:
        self.agent.run(text, user_id=user)

    async def arun_background(self, text: str, user: str) -> None:
        out = await self.agent.arun(text, user_id=user, background=True)
        self.pending.append((out.run_id, out.session_id))  # type: ignore[arg-type]

    async def answered(self) -> None:
        """Poll each detached run until its answer is stored."""
        from agno.run.base import RunStatus

        for run_id, session_id in self.pending:
            while True:
                out = await self.agent.aget_run_output(run_id=run_id, session_id=session_id)
                if out is not None and out.status in (RunStatus.completed, RunStatus.error):
                    assert out.status == RunStatus.completed and out.content == "Noted.", out
                    break
                await asyncio.sleep(0.005)
        self.pending = []

    def committed(self, user: str, tag: str = "") -> int:
        return sum(tag in str(m.memory) for m in self.db.get_user_memories(user_id=user))

    def settle(self, users: list[str]) -> None:
        pass  # run() waited; detached runs were awaited by answered()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    runner = (Memlayer if args.worker == "memlayer" else Agno)(args.url, tmp, args.memory)
    probe, detached = peers.Probe(args.url), args.call.startswith("arun")
    users = [f"user-{i}" if "same user" not in args.call else "user-0" for i in range(args.runs + 1)]
    users[0] = "warm-up"
    times, at_return, answer = [], [], []
    loop = asyncio.new_event_loop()  # one loop for every arun, as a server has
    for i, user in enumerate(users):
        probe.script(turn_facts(i))
        text = peers.message(i)
        started = time.perf_counter()
        if detached:
            loop.run_until_complete(runner.arun_background(text, user))  # type: ignore[union-attr]
        else:
            runner.run(text, user)
        times.append(time.perf_counter() - started)
        at_return.append(runner.committed(user, f"note {i} "))  # this turn's facts
        if detached:  # when the answer could be read: Agno's background run returns before it exists
            loop.run_until_complete(runner.answered())  # type: ignore[union-attr]
            answer.append(time.perf_counter() - started)
        if i == 0:
            runner.settle(["warm-up"])
    settle_started = time.perf_counter()
    runner.settle(sorted(set(users[1:])))
    settled = time.perf_counter() - settle_started
    stored = sum(runner.committed(u) for u in sorted(set(users[1:])))
    loop.close()
    return {"times": times[1:], "at_return": at_return[1:], "answer": answer[1:], "stored": stored,
            "expected": 2 * args.runs if args.memory != "off" else 0, "settle_s": settled}  # fmt: skip


def worker(args: argparse.Namespace) -> None:
    peers.logging_quiet()
    with tempfile.TemporaryDirectory(prefix=f"peers-bg-{args.worker}-") as tmp:
        result = measure(args, Path(tmp))
    print(json.dumps(result))


# ---------------------------------------------------------------- the parent: server, workers, table


def case(lib: str, memory: str, call: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    python = args.memlayer_python if lib == "memlayer" else args.peers_python
    cmd = [python, __file__, "--worker", lib, "--memory", memory, "--call", call, "--url", url, f"--runs={args.runs}"]
    print(f"  {lib:9} memory {memory:10} {call}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=peers.worker_env(args))
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"error": lines[-1][:200] if lines else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def print_table(results: list[tuple[str, str, str, dict[str, Any]]]) -> None:
    print("| library | memory | call | run() p50 ms | run() p95 ms | answer p50 ms | memories readable as run()"
          " returned | memories in the end (time to wait for them) |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    for lib, memory, call, r in results:
        if "error" in r:
            print(f"| {lib} | {memory} | `{call}` | error: {r['error']} | | | | |")
            continue
        t = [x * 1e3 for x in r["times"]]
        answer = f"{pct(r['answer'], 0.5) * 1e3:,.1f}" if r["answer"] else "= run()"
        print(f"| {lib} | {memory} | `{call}` | {pct(t, 0.5):,.1f} | {pct(t, 0.95):,.1f} | {answer} | "
              f"{sum(r['at_return'])} | {r['stored']} of {r['expected']} (+{r['settle_s']:.1f} s) |")  # fmt: skip


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peers-python", default=sys.executable, help="interpreter with agno")
    p.add_argument("--memlayer-python", default=sys.executable, help="interpreter with memlayer")
    p.add_argument("--runs", type=int, default=10, help="timed runs per case, after one warm-up run")
    p.add_argument("--extraction", type=float, default=2.0, help="seconds the server takes for an extraction")
    p.add_argument("--libs", type=lambda s: s.split(","), default=["memlayer", "agno"])
    p.add_argument("--worker", choices=["memlayer", "agno"], help=argparse.SUPPRESS)
    p.add_argument("--memory", help=argparse.SUPPRESS)
    p.add_argument("--call", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.dim, args.memlayer_embedder = 384, "lexical"  # what peers.worker_env passes on
    return args


def main() -> None:
    args = parse()
    if args.worker:
        return worker(args)
    server = peers.Server(384, reply=replier(args.extraction))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    load = os.getloadavg()[0]
    try:
        results = [(lib, m, c, case(lib, m, c, server.url, args)) for lib, m, c in CASES if lib in args.libs]
    finally:
        server.shutdown()
    print(f"agent run() with memory off / on; chat answered at once, extraction after {args.extraction} s; "
          f"{args.runs} runs after 1 warm-up; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} "
          f"at the end ({os.cpu_count()} cores)\n")  # fmt: skip
    print_table(results)


if __name__ == "__main__":
    main()
