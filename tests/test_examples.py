"""Every example runs offline from its cassette, and prints what its recording holds.

The examples run in this process (runpy), so LiteLLM is imported once for all of them. Their
cassettes were recorded from SmolLM2-135M: the facts asserted are what that tiny model said.
Re-record one: ``MEMLAYER_RECORD=rewrite uv run python examples/<name>.py`` with the local server up.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "custom_instructions": ["   add: 1234567890 []", "   skipped 11 repeat(s) of a stored fact"],
    "always_on_memory": ["what is remembered now:", "   v1 12 []"],
    "agentic_memory": ["   [tool] update_user_memory(", "(3 LLM call(s), 952 + 3539 tokens)"],
    "shared_memory": ["   the sales agent had 1 memory(ies) in context:", "   1234567890 (written by agent 'support')"],
    "multi_user": [
        "alice: ['1', '10', '11', '12', '2', '3', '4', '5', '6', '7', '8', '9']",
        "carol (never seen): []",
    ],
    "memory_tools": [
        "error: user 'ana@example.com' has no current memory '25601012'",
        "bob's memories, untouched: [\"Bob's secret: none of Ana's business\"]",
    ],
    "reading_memories": [
        "now: ['addei', 'Lives in Lisbon']",
        "as it was before the move: ['Lives in Porto']",
        "   update 'Lives in Porto' -> 'Lives in Lisbon' (api)",
    ],
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMLAYER_MODEL", raising=False)
    monkeypatch.delenv("MEMLAYER_RECORD", raising=False)
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_every_example_is_checked() -> None:
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    assert scripts - {"quickstart"} == set(EXPECTED)  # quickstart runs in CI, as the README's main job


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_replays_offline(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    sys.modules.pop("_offline", None)
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.startswith(f"offline: replaying {name}.json")
    for line in EXPECTED[name]:
        assert line in out
