"""How long `import memlayer` takes in a fresh interpreter (target < 0.3 s), and what it pulls in.

    uv run python benchmarks/import_time.py [--runs 7]

Each run is a new process, so nothing is cached in memory; the OS file cache is warm after the first.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

PROBE = """
import sys, time
t0 = time.perf_counter()
import memlayer
t1 = time.perf_counter()
from memlayer import DuckDb, MemoryManager
t2 = time.perf_counter()
print(t1 - t0, t2 - t0, "litellm" in sys.modules, "instructor" in sys.modules, "duckdb" in sys.modules)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bare, full, loaded = [], [], None
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
        bare.append(float(out[0]) * 1000)
        full.append(float(out[1]) * 1000)
        loaded = out[2:]
    print(f"import memlayer                             p50 {statistics.median(bare):7.1f} ms   target < 300 ms")
    print(f"import memlayer + MemoryManager, DuckDb     p50 {statistics.median(full):7.1f} ms")
    print(f"  after that: litellm loaded={loaded[0]}, instructor loaded={loaded[1]}, duckdb loaded={loaded[2]}")
    print("  (LiteLLM, ~8 s to import, loads on the first model call)")


if __name__ == "__main__":
    main()
