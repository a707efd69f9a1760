"""The benchmark scripts stay runnable: each one's top level (its imports, its constants) runs.

Three scripts had broken without a test noticing (an import moved under ``memlayer._internal``, a
column a migration added, an option memlayer now refuses); the figures in the docs come from these
scripts, so a script that no longer starts is a defect. No model and no database are involved here:
only the modules are loaded, in a child interpreter, as ``uv run python benchmarks/X.py`` loads them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

LOAD_EACH = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
for path in sys.argv[2:]:
    runpy.run_path(path, run_name="loaded_by_the_tests")  # not "__main__": nothing is measured
    print("loaded", path)
"""


def test_every_benchmark_script_loads() -> None:
    scripts = sorted(str(path) for path in BENCHMARKS.glob("*.py"))
    assert len(scripts) >= 10
    done = subprocess.run(
        [sys.executable, "-c", LOAD_EACH, str(BENCHMARKS), *scripts], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("loaded ") == len(scripts)
