"""The user's tests: record once with a model server up, then run offline forever.

Record (here against memlayer's local llama.cpp server; with a key, any provider string works):
    pytest --memlayer-record=once
Replay (the default): no network, no key.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support_bot import SupportBot

from memlayer import DuckDb

MODEL = os.environ.get("SUPPORT_BOT_MODEL", "openai/qwen1.5b")
API_BASE = os.environ.get("SUPPORT_BOT_API_BASE", "http://127.0.0.1:8765/v1")


@pytest.mark.memlayer_cassette
def test_bot_remembers_the_customer(tmp_path: Path) -> None:
    with DuckDb(tmp_path / "bot.duckdb") as db:
        bot = SupportBot(MODEL, db, api_base=API_BASE, api_key="local", provider_retries=0)
        facts = bot.hear("cust-42", "Remember that my name is Lena and I use the Pro plan.")
    # What the recorded model (qwen1.5b: Qwen2.5-Coder-1.5B-Instruct on llama.cpp) really extracted:
    assert facts == ["Lena", "Pro plan"]
