"""Every example runs offline from its cassette, and prints what its recording holds.

The examples run in this process (runpy), so LiteLLM is imported once for all of them. Their
cassettes were recorded from qwen1.5b (Qwen2.5-Coder-1.5B-Instruct on llama.cpp): the facts asserted
are what that model did, its mistakes included.
Re-record one: ``MEMLAYER_RECORD=rewrite uv run python examples/<name>.py`` with the local server up.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    # qwen1.5b kept both language preferences, and also the weather the instructions said to ignore.
    "custom_instructions": [
        "   add: Works with Rust ['work']",
        "   add: Likes Python ['likes']",
        "   add: Weather is nice",
    ],
    # It added the new diet instead of updating the old one: both are current.
    "always_on_memory": [
        "what is remembered now:",
        "   v1 Is now a pescatarian ['diet']",
        "   v1 I'm vegetarian and I cook every Sunday ['diet', 'hobbies']",
    ],
    "agentic_memory": [
        '   [tool] update_user_memory({"task":"remember that I moved to Porto last month"})',
        "   remembered: Moved to Porto last month ['home']",
        "(3 LLM call(s), 868 + 97 tokens)",
    ],
    "shared_memory": [
        "   the sales agent had 1 memory(ies) in context:",
        "   My team of 12 uses the Pro plan (written by agent 'support')",
    ],
    "multi_user": ["alice: ['Allergic to peanuts']", "bob: ['Likes peanut butter']", "carol (never seen): []"],
    "memory_tools": [
        '   [tool] get_memories({"limit":10}) -> 5b9e673b-7363-52cd-8f17-e9019c1705a5: Lives in Lisbon [home]',
        "bob's memories, untouched: [\"Bob's secret: none of Ana's business\"]",
    ],
    "reading_memories": [
        "now: ['Lives in Lisbon, runs 10k every Saturday, learning Portuguese']",
        "as it was before the move: ['Lives in Porto']",
        "   update 'Lives in Porto' -> 'Lives in Lisbon' (api)",
        "   update 'Lives in Lisbon' -> 'Lives in Lisbon, runs 10k every Saturday, learning Portuguese' (extraction)",
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
