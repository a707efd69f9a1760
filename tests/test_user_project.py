"""examples/user_project, a project that only uses the installed memlayer, passes with no network.

It runs in a fresh pytest process inside a network namespace with no interfaces (``unshare -rn``),
so a request that escaped its cassette could not be answered by anything.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent / "examples" / "user_project"


def _offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []  # no namespaces here: the cassette guard alone keeps the run offline


def test_user_project_passes_offline(tmp_path: Path) -> None:
    command = [*_offline_prefix(), sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PROJECT)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 passed" in run.stdout
