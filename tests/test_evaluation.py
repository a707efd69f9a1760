"""The extraction-quality benchmark: fact patterns, the shipped scenario set, and the scoring.

The scoring tests use a scripted model, not a cassette: they pin what the scorer counts for a *given*
reply (a duplicate, a stale fact, a small-talk memory), which a real model cannot be made to produce on
demand. How good real models are is what ``memlayer eval`` measures; it is not a test.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from memlayer import ConfigError
from memlayer._internal.memory.evaluation import Fact, load_scenarios, report, run_scenarios
from memlayer.testing import scripted_model

OPTIONS = {"model": "openai:gpt-4o-mini", "mode": "json_schema", "provider_retries": 0, "embedder": "lexical"}


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("lisbon", "Lives in Lisbon", True),
        ("vegetar", "Ist Vegetarierin", True),
        ("vegetar", "vegetarisch", True),
        ("cafe", "Trinkt gern Café", True),  # accents folded
        ("cat", "Works in education", False),  # a word start, not any substring
        ("cat", "Has two cats", True),
        (["data", "engineer"], "Engineer working on data pipelines", True),
        (["data", "engineer"], "Works as a data analyst", False),
        (["tea|coffee"], "Drinks green tea", True),
        ("2026-03-13|13 march|march 13", "Dentist appointment on March 13, 2026", True),
    ],
)
def test_fact_patterns(pattern: str | list[str], text: str, expected: bool) -> None:
    assert Fact.parse("f", pattern).matches(text) is expected


def test_an_empty_pattern_is_refused() -> None:
    with pytest.raises(ConfigError, match="empty pattern"):
        Fact.parse("f", " | ")


def test_the_shipped_set_is_large_and_split() -> None:
    scenarios = load_scenarios()
    assert len(scenarios) >= 30
    assert sum(len(s.turns) for s in scenarios) >= 80
    splits = Counter((s.category, s.split) for s in scenarios)
    categories = {s.category for s in scenarios}
    assert len(categories) >= 12
    # Every category is measured on scenarios the prompt was tuned on and on scenarios held apart.
    assert all(splits[(c, "tune")] and splits[(c, "heldout")] for c in categories), splits
    assert load_scenarios(split="heldout") and all(s.split == "heldout" for s in load_scenarios(split="heldout"))


def test_malformed_scenarios_are_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "x", "category": "c", "split": "tune", "facts": {}, "turns": [
        {"messages": [{"role": "user", "content": "hi"}], "present": ["nope"]}]}]))  # fmt: skip
    with pytest.raises(ConfigError, match="unknown facts"):
        load_scenarios([bad])
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenarios([tmp_path / "missing.json"])


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "one.json"
    scenario = {
        "id": "move",
        "category": "correction",
        "split": "tune",
        # No key of its own ("Based in ...", no topic naming one), so a new home does not replace it.
        "seed": [{"memory": "Based in Berlin", "topics": ["city"]}],
        "facts": {"berlin": "berlin", "lisbon": "lisbon", "nurse": "nurse", "weather": "sunny|weather"},
        "turns": [
            {"messages": [{"role": "user", "content": "I moved to Lisbon, I'm a nurse."}],
             "present": ["lisbon", "nurse"], "absent": ["berlin"]},
            {"messages": [{"role": "user", "content": "Sunny today! Living in Lisbon is great."}],
             "absent": ["weather"]},
        ],
    }  # fmt: skip
    path.write_text(json.dumps([scenario]))
    return path


def test_scores_count_stale_facts_duplicates_and_noise(tmp_path: Path) -> None:
    turn1 = {"operations": [
        {"op": "add", "memory": "Lives in Lisbon", "topics": ["home"]},  # Berlin kept (keyless): a stale fact
        {"op": "add", "memory": "Works as a nurse", "topics": ["work"]},
    ]}  # fmt: skip
    turn2 = {"operations": [
        {"op": "add", "memory": "Weather is sunny", "topics": ["weather"]},  # small talk stored
        {"op": "add", "memory": "Loves living in Lisbon", "topics": ["city"]},  # the same fact a second time
    ]}  # fmt: skip
    with scripted_model(turn1, turn2) as model:
        results = run_scenarios(load_scenarios([_scenario(tmp_path)]), manager_options=OPTIONS)
    assert model.calls == 2
    first, second = results
    assert (first.missing, first.violations, first.unmatched) == ([], ["berlin"], ["Based in Berlin"])
    assert second.violations == ["berlin", "weather"]
    assert sorted(second.unmatched) == ["Based in Berlin", "Weather is sunny"]
    assert second.duplicates == 1  # Lisbon held twice
    overall = report(results)["overall"]
    assert overall["recall"] == 1.0
    assert overall["absent_violation_rate"] == 3 / 3
    # Memories that match no wanted fact: Berlin after turn 1 (2 of 3 wanted), Berlin and the
    # weather after turn 2 (3 of 5).
    assert overall["precision"] == pytest.approx((2 + 3) / (3 + 5))
    assert overall["errors"] == 0 and overall["operations_per_extraction"] == 2.0


def test_a_model_that_never_answers_stops_the_run(tmp_path: Path) -> None:
    from memlayer import ModelError

    failure = RuntimeError("connection refused")
    with scripted_model(failure, failure) as model, pytest.raises(ModelError, match="first scenario failed"):
        run_scenarios(load_scenarios([_scenario(tmp_path)]), manager_options=OPTIONS)
    assert model.calls == 2
