"""Every example runs offline from its cassette, and prints what its recording holds.

The examples run in this process (runpy), so LiteLLM is imported once for all of them. Their
cassettes were recorded from qwen1.5b (Qwen2.5-Coder-1.5B-Instruct on llama.cpp); each test checks that the
example does what its text says, and what it must not show.
Re-record one: ``MEMLAYER_RECORD=rewrite uv run python examples/<name>.py`` with the local server up.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# What each example must show for it to do what its text says, read off its recording; and what it must
# not show (a fact the instructions exclude, a stale value beside the new one, another user's memory).
EXPECTED = {
    # Typed instructions: diet and health kept, the city skipped with its reason, the job and the weather never
    # stored.
    "custom_instructions": [
        "   add: Vegetarian ['diet']",
        "   add: Allergic to nuts ['health']",
        "   skipped: add: outside the developer's instructions (home): Lyon",
    ],
    # The new diet is an update of the old one: one diet, its second version.
    "always_on_memory": [
        "what is remembered now:",
        "   v2 Pescatarian ['diet']",
        "   v1 Cooking every Sunday ['hobby']",
    ],
    # The tool is named in the message (see the example); "last month" is a month in the stored text.
    "agentic_memory": [
        '   [tool] update_user_memory({"task":"remember they moved to Porto last month"})',
        "   remembered: Moved to Porto in 2026-10 ['home']",
        "(3 LLM call(s), 1006 + 125 tokens)",
    ],
    "shared_memory": [
        "   the sales agent had 1 memory(ies) in context:",
        "   My team of 12 uses the Pro plan (written by agent 'support')",
    ],
    "multi_user": ["alice: ['Allergic to peanuts']", "bob: ['love peanut butter']", "carol (never seen): []"],
    "memory_tools": [
        '   [tool] get_memories({"limit":3}) -> 5b9e673b-7363-52cd-8f17-e9019c1705a5: Lives in Lisbon [home]',
        "bob's memories, untouched: [\"Bob's secret: none of Ana's business\"]",
    ],
    "reading_memories": [
        "now: ['Lives in Lisbon', 'Learning Portuguese', 'Runs 10k every Saturday']",
        "as it was before the move: ['Lives in Porto']",
        "   update 'Lives in Porto' -> 'Lives in Lisbon' (api)",
    ],
}
ABSENT = {
    "custom_instructions": ["weather", "Weather", "lawyer"],
    "always_on_memory": ["   v1 Vegetarian", "   v2 Vegetarian"],
    "multi_user": ["alice: ['Allergic to peanuts', 'love"],
    "reading_memories": ["now: ['Lives in Porto"],
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
    for text in ABSENT.get(name, []):
        assert text not in out
