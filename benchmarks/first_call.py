"""The first extraction in a fresh process: how long ``create_user_memories`` takes beyond the server's time.

    uv run python benchmarks/first_call.py [--runs 7] [--async] [--existing N]

Each run is a new interpreter that imports memlayer, builds
``MemoryManager(model="openai:stub-model", api_base=<stub>, db=DuckDb(<file>), embedder="lexical")``,
then times its first ``create_user_memories`` call against a scripted OpenAI-compatible server on
127.0.0.1 (``tests/openai_stub.py``, run by this process). The server's own time for that request is
subtracted. Two rows: **cold** (the call right after the manager is built: it waits for the rest of
LiteLLM's and Instructor's background import) and **warm** (the manager was built a second earlier,
as in a server that has been up for a second). Printed: p50 beyond the server, the call's CPU time, and
which heavy modules the call itself imported (none: the background import has them).
``--existing N`` gives the user N memories first (not timed): then the first extraction also loads the
user's search index (numpy, the stop-word lists), which a new user's skips. Bytecode is cached (in a
temporary ``PYTHONPYCACHEPREFIX``) by an untimed warm-up run, as it is for an installed package.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.openai_stub import chat_reply, openai_stub

PROBE = """
import asyncio, sys, time
from memlayer import DuckDb, MemoryManager
manager = MemoryManager(model="openai:stub-model", api_base=sys.argv[1], api_key="stub",
                        db=DuckDb(db_file=sys.argv[2]), embedder="lexical")
for i in range(int(sys.argv[4])):
    manager.add_user_memory(f"Fact number {i} about the user", user_id="u1")
if sys.argv[5] == "warm":
    time.sleep(1.0)
before = {m for m in ("litellm", "openai", "instructor", "httpx") if m in sys.modules}
started, cpu = time.perf_counter(), time.process_time()
if sys.argv[3] == "async":
    result = asyncio.run(manager.acreate_user_memories("I drink green tea every morning.", user_id="u1"))
else:
    result = manager.create_user_memories("I drink green tea every morning.", user_id="u1")
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
assert [c.memory for c in result.changes] == ["Drinks green tea every morning"], result
loaded = sorted(m for m in ("litellm", "openai", "instructor", "httpx") if m in sys.modules and m not in before)
print(seconds, cpu, ",".join(loaded) or "-")
"""
REPLY = {"operations": [{"op": "add", "memory": "Drinks green tea every morning", "topics": ["food"]}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--async", dest="use_async", action="store_true", help="time acreate_user_memories")
    parser.add_argument("--existing", type=int, default=0, help="memories the user has before the call")
    args = parser.parse_args()
    driver = "async" if args.use_async else "sync"
    # Bytecode as an installed package has it: written once (the warm-up run), read by every timed run.
    pycache = Path(tempfile.gettempdir(), "memlayer-first-call-pycache")
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with openai_stub() as stub, tempfile.TemporaryDirectory() as tmp:
        for when in ("cold", "warm"):
            env = {**base, "PYTHONPYCACHEPREFIX": str(pycache)}
            beyond, cpu, loaded = [], [], ""
            for run in range(args.runs + 1):
                stub.script(chat_reply(REPLY))
                db = str(Path(tmp, f"{when}-{run}.duckdb"))
                cmd = [sys.executable, "-c", PROBE, stub.api_base, db, driver, str(args.existing), when]
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                out = done.stdout.splitlines()[-1].split()
                if run == 0:
                    continue  # the warm-up
                beyond.append((float(out[0]) - sum(r.seconds for r in stub.requests)) * 1000)
                cpu.append(float(out[1]) * 1000)
                loaded = out[2]
            print(
                f"{driver} first extraction, {when}: beyond the server p50 {statistics.median(beyond):7.1f} ms"
                f" (min {min(beyond):6.1f}), CPU p50 {statistics.median(cpu):7.1f} ms; imported by the call: {loaded}"
            )
    print("target: <= 75 ms beyond the server (mem0 76 ms, Agno 234 ms on the same kind of stub)")


if __name__ == "__main__":
    main()
