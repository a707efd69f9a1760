"""What a new user meets first: the package's public face, and LiteLLM left as the user set it."""

from __future__ import annotations

import litellm
import pytest

import memlayer
from memlayer import DuckDb, MemoryManager
from memlayer.testing import scripted_model


def test_dir_lists_the_public_names_once() -> None:
    memlayer.MemoryManager  # noqa: B018  (an imported name lands in the module's globals too)
    assert dir(memlayer) == sorted({*memlayer.__all__, "__version__"})


def test_memlayer_leaves_litellms_process_wide_settings_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # A scripted model (no cassette needed: the question is what memlayer sets, not what a model says).
    # LiteLLM's defaults first, in case anything earlier in this process changed them.
    monkeypatch.setattr(litellm, "num_retries", None)
    monkeypatch.setattr(litellm, "suppress_debug_info", False)
    before = (litellm.num_retries, litellm.suppress_debug_info, getattr(litellm, "telemetry", None))
    reply = {"operations": [{"op": "add", "memory": "Likes tea", "topics": ["food"], "reason": "new fact"}]}
    with DuckDb(":memory:") as db, scripted_model(reply):
        result = MemoryManager(model="openai:gpt-4o-mini", db=db, mode="json").create_user_memories(
            "I like tea", user_id="u"
        )
    assert [c.memory for c in result.changes] == ["Likes tea"]
    assert (litellm.num_retries, litellm.suppress_debug_info, getattr(litellm, "telemetry", None)) == before
