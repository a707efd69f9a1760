"""Extraction quality: labelled scenarios replayed turn by turn against a model, scored without a judge.

A scenario is a few turns of conversation. After each turn it names the facts that must be among the
user's current memories and the facts that must not be (a stale value, a retraction, small talk,
another person's fact). A fact is a keyword pattern: a list of terms that must all occur, each a set
of ``|``-separated alternatives matched at the start of a word, case- and accent-insensitively, so
``["data", "engineer"]`` matches "Works as a data engineer" and ``"vegetar"`` matches "vegetarisch".
Expectations accumulate: a fact expected present stays expected until a later turn says otherwise.
``allowed`` facts (acceptable, not required; not counted against precision) hold for their turn only.
Time checks, where a turn has them: ``held`` names a fact and the start (``from``) or end (``until``)
its matching memory must have held in the user's life (a prefix of the ISO date: "2019", "2026-03");
``valid_at`` names a date and the facts that must (``present``) or must not (``absent``) be among the
memories that held then (`MemoryManager.get_user_memories(valid_at=...)`).

The scores, per category, per split and overall:
- recall: expected-present checks that a current memory matched;
- absent violations: expected-absent checks that some current memory matched;
- duplicates: extra current memories matching the same expected facts, in each scenario's final state;
- precision: current memories that match an expected (or allowed) fact, over every turn's memories;
- time: the time checks passed, over all time checks;
- operations, input and output tokens, and seconds per extraction; errors (extractions that raised).

The scenarios ship in the wheel (``memlayer/data/scenarios``), split into ``tune`` (what the prompt
was tuned on) and ``heldout`` (never looked at while tuning). ``memlayer eval`` runs them.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..db import DuckDb
from ..errors import ConfigError, MemlayerError, ModelError
from ..records import Message
from .manager import MemoryManager

__all__ = [
    "SCENARIOS",
    "Fact",
    "Scenario",
    "Score",
    "TurnResult",
    "load_scenarios",
    "report",
    "run_scenario",
    "run_scenarios",
    "summarise",
]

SCENARIOS = Path(__file__).resolve().parent.parent.parent / "data" / "scenarios"
Split = Literal["tune", "heldout"]
USER = "eval-user"


def _fold(text: str) -> str:
    """Lowercase without accents: "Café" and "cafe" match, so do "Über" and "uber"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class Fact:
    """A named keyword pattern: every term must occur; a term is alternatives, each a word prefix."""

    name: str
    terms: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, name: str, pattern: str | Sequence[str]) -> Fact:
        items = [pattern] if isinstance(pattern, str) else list(pattern)
        terms = tuple(tuple(_fold(a).strip() for a in str(t).split("|") if a.strip()) for t in items)
        if not terms or not all(terms):
            raise ConfigError(f"fact {name!r} has an empty pattern: {pattern!r}")
        return cls(name, terms)

    def matches(self, text: str) -> bool:
        folded = _fold(text)
        return all(any(_starts_word(folded, alt) for alt in term) for term in self.terms)


def _starts_word(text: str, alternative: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(alternative), text) is not None


@dataclass(frozen=True)
class Turn:
    messages: list[Message]
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    held: dict[str, dict[str, str]] = field(default_factory=dict)  # fact -> {"from"/"until": date prefix}
    valid_at: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # date -> present/absent facts


@dataclass(frozen=True)
class Scenario:
    id: str
    category: str
    split: Split
    description: str
    facts: dict[str, Fact]
    turns: list[Turn]
    seed: list[tuple[str, list[str]]] = field(default_factory=list)
    additional_instructions: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, data: dict[str, Any], where: str) -> Scenario:
        try:
            facts = {name: Fact.parse(name, p) for name, p in data.get("facts", {}).items()}
            turns = [_parse_turn(t, facts) for t in data["turns"]]
            split = data["split"]
            if split not in ("tune", "heldout"):
                raise ValueError(f"split must be 'tune' or 'heldout', not {split!r}")
            return cls(
                id=str(data["id"]),
                category=str(data["category"]),
                split=split,
                description=str(data.get("description", "")),
                facts=facts,
                turns=turns,
                seed=[(s["memory"], list(s.get("topics", []))) for s in data.get("seed", [])],
                additional_instructions=list(data.get("additional_instructions", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: scenario {data.get('id', '?')!r} is malformed: {exc!r}") from exc


def _parse_turn(data: dict[str, Any], facts: dict[str, Fact]) -> Turn:
    when = data.get("created_at")
    stamp = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None
    messages = [Message(role=m["role"], content=m["content"], created_at=stamp) for m in data["messages"]]
    names = {key: tuple(data.get(key, ())) for key in ("present", "absent", "allowed")}
    held = {str(name): {str(k): str(v) for k, v in span.items()} for name, span in data.get("held", {}).items()}
    valid_at = {
        str(day): {key: [str(n) for n in checks.get(key, [])] for key in ("present", "absent")}
        for day, checks in data.get("valid_at", {}).items()
    }
    named = [*(n for group in names.values() for n in group), *held]
    named += [n for checks in valid_at.values() for group in checks.values() for n in group]
    unknown = [n for n in named if n not in facts]
    if unknown:
        raise ValueError(f"unknown facts {unknown}")
    for day in valid_at:
        datetime.fromisoformat(day)  # a ValueError names a malformed date
    return Turn(messages, names["present"], names["absent"], names["allowed"], held, valid_at)


def load_scenarios(
    paths: Iterable[str | Path] | None = None, *, split: Split | None = None, category: str | None = None
) -> list[Scenario]:
    """The scenarios in ``paths`` (JSON files, or folders of them; default: the shipped set)."""
    files: list[Path] = []
    for path in [Path(p) for p in (paths or [SCENARIOS])]:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    scenarios: list[Scenario] = []
    for file in files:
        try:
            items = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read scenarios from {file}: {exc}") from exc
        scenarios.extend(Scenario.parse(item, str(file)) for item in (items if isinstance(items, list) else [items]))
    ids = [s.id for s in scenarios]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"scenario ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    chosen = [s for s in scenarios if (split is None or s.split == split) and (category in (None, s.category))]
    if not chosen:
        raise ConfigError(f"no scenarios in {[str(f) for f in files]} for split={split!r} category={category!r}")
    return chosen


@dataclass
class TurnResult:
    """One extraction and the checks on the memories after it."""

    scenario: str
    category: str
    split: str
    turn: int
    memories: list[str]
    missing: list[str]  # expected present, not found
    violations: list[str]  # expected absent, found
    unmatched: list[str]  # memories matching no expected or allowed fact
    present_checks: int
    absent_checks: int
    duplicates: int = 0  # set on the scenario's last turn only
    operations: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    changes: list[str] = field(default_factory=list)
    error: str | None = None
    time_checks: int = 0
    time_failures: list[str] = field(default_factory=list)


def _check(
    scenario: Scenario, turn_no: int, memories: list[str], present: set[str], absent: set[str], allowed: set[str]
) -> TurnResult:
    facts = scenario.facts
    found = {name for name in present | absent | allowed if any(facts[name].matches(m) for m in memories)}
    wanted = present | allowed
    unmatched = [m for m in memories if not any(facts[n].matches(m) for n in wanted)]
    return TurnResult(
        scenario=scenario.id,
        category=scenario.category,
        split=scenario.split,
        turn=turn_no,
        memories=memories,
        missing=sorted(present - found),
        violations=sorted(absent & found),
        unmatched=unmatched,
        present_checks=len(present),
        absent_checks=len(absent),
    )


def _duplicates(scenario: Scenario, memories: list[str], present: set[str]) -> int:
    # Two memories are one fact held twice when they match the same expected facts: "Lives in
    # Lisbon" and "Lives in Lisbon, Portugal" are; "Partner is Ana" and "Ana's birthday is in May"
    # (matching the partner's name, and her birthday) are not.
    groups: dict[frozenset[str], int] = {}
    for memory in memories:
        matched = frozenset(n for n in present if scenario.facts[n].matches(memory))
        if matched:
            groups[matched] = groups.get(matched, 0) + 1
    return sum(n - 1 for n in groups.values())


def run_scenario(scenario: Scenario, *, manager_options: dict[str, Any], db_file: str = ":memory:") -> list[TurnResult]:
    """Replay one scenario in a fresh store; one extraction per turn, checked after each."""
    results: list[TurnResult] = []
    present: set[str] = set()
    absent: set[str] = set()
    with DuckDb(db_file) as db:
        manager = MemoryManager(db=db, additional_instructions=scenario.additional_instructions, **manager_options)
        for text, topics in scenario.seed:
            manager.add_user_memory(text, user_id=USER, topics=topics)
        for number, turn in enumerate(scenario.turns, start=1):
            present = (present - set(turn.absent)) | set(turn.present)
            absent = (absent - set(turn.present)) | set(turn.absent)
            started = time.perf_counter()
            error, outcome = None, None
            try:
                outcome = manager.create_user_memories(turn.messages, user_id=USER)
            except MemlayerError as exc:
                error = " ".join(str(exc).split())[:300]
            seconds = time.perf_counter() - started
            memories = [m.memory for m in manager.get_user_memories(user_id=USER)]
            result = _check(scenario, number, memories, present, absent, set(turn.allowed))
            result.seconds, result.error = seconds, error
            result.time_checks, result.time_failures = _check_times(scenario, turn, manager)
            if outcome is not None:
                result.operations = len(outcome.changes) + len(outcome.skipped)
                result.changes = [_describe(c.operation, c.old_memory, c.memory) for c in outcome.changes]
                if outcome.usage is not None:
                    result.input_tokens, result.output_tokens = outcome.usage.input_tokens, outcome.usage.output_tokens
            results.append(result)
        results[-1].duplicates = _duplicates(scenario, results[-1].memories, present)
    return results


def _check_times(scenario: Scenario, turn: Turn, manager: MemoryManager) -> tuple[int, list[str]]:
    """The turn's time checks: how many, and the ones that failed, in words."""
    failures: list[str] = []
    checks = 0
    with manager.db.reading() as conn:
        versions = conn.execute(
            "SELECT memory, held_from, held_until FROM memories WHERE user_id = ?", [USER]
        ).fetchall()
    for name, span in turn.held.items():
        for end, prefix in span.items():
            checks += 1
            column = 1 if end == "from" else 2
            matching = [row for row in versions if row[column] and scenario.facts[name].matches(row[0])]
            times = [str(row[column].date()) for row in matching]
            if not any(t.startswith(prefix) for t in times):
                failures.append(f"{name} held {end} {prefix}: {times or 'no time'}")
    for day, expected in turn.valid_at.items():
        held = [m.memory for m in manager.get_user_memories(user_id=USER, valid_at=day)]
        for key in ("present", "absent"):
            for name in expected.get(key, []):
                checks += 1
                if any(scenario.facts[name].matches(m) for m in held) != (key == "present"):
                    failures.append(f"valid_at {day}: {name} should be {key}: {held}")
    return checks, failures


def _describe(operation: str, old: str | None, new: str | None) -> str:
    if operation == "update":
        return f"update {old!r} -> {new!r}"
    return f"{operation} {old if operation == 'delete' else new!r}"


def run_scenarios(
    scenarios: Sequence[Scenario],
    *,
    manager_options: dict[str, Any],
    jobs: int = 1,
    on_scenario: Callable[[Scenario, list[TurnResult]], None] | None = None,
) -> list[TurnResult]:
    """Run every scenario (``jobs`` at a time, each in its own store); results in scenario order.

    Raises `ModelError` when every extraction of the first scenario fails: the model is unreachable
    or misconfigured, and running on would only repeat it.
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs!r}")

    def one(scenario: Scenario) -> list[TurnResult]:
        results = run_scenario(scenario, manager_options=manager_options)
        if on_scenario is not None:
            on_scenario(scenario, results)
        return results

    if not scenarios:
        return []
    first = one(scenarios[0])  # alone: a wrong key or a server that is down fails once, in words
    if all(r.error for r in first):
        raise ModelError(
            f"every extraction of the first scenario failed, so the run stopped: {first[0].error}",
            model=str(manager_options.get("model")),
        )
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return first + [r for batch in pool.map(one, scenarios[1:]) for r in batch]


@dataclass(frozen=True)
class Score:
    """The scores of a group of turns (a category, a split, or all)."""

    group: str
    scenarios: int
    extractions: int
    recall: float
    absent_violation_rate: float
    duplicates: int
    precision: float
    errors: int
    time_accuracy: float
    operations_per_extraction: float
    input_tokens_per_extraction: float
    output_tokens_per_extraction: float
    seconds_per_extraction: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(results: Sequence[TurnResult], key: Callable[[TurnResult], str] | None = None) -> list[Score]:
    """Scores per group (``key(turn)``; default one group, "all"), in first-seen order."""
    groups: dict[str, list[TurnResult]] = {}
    for result in results:
        groups.setdefault(key(result) if key else "all", []).append(result)
    return [_score(name, turns) for name, turns in groups.items()]


def _ratio(part: float, whole: float, empty: float) -> float:
    return part / whole if whole else empty


def _score(group: str, turns: list[TurnResult]) -> Score:
    n = len(turns)
    present = sum(t.present_checks for t in turns)
    absent = sum(t.absent_checks for t in turns)
    memories = sum(len(t.memories) for t in turns)
    return Score(
        group=group,
        scenarios=len({t.scenario for t in turns}),
        extractions=n,
        recall=_ratio(present - sum(len(t.missing) for t in turns), present, 1.0),
        absent_violation_rate=_ratio(sum(len(t.violations) for t in turns), absent, 0.0),
        duplicates=sum(t.duplicates for t in turns),
        precision=_ratio(memories - sum(len(t.unmatched) for t in turns), memories, 1.0),
        errors=sum(t.error is not None for t in turns),
        time_accuracy=_ratio(
            sum(t.time_checks - len(t.time_failures) for t in turns), sum(t.time_checks for t in turns), 1.0
        ),
        operations_per_extraction=_ratio(sum(t.operations for t in turns), n, 0.0),
        input_tokens_per_extraction=_ratio(sum(t.input_tokens for t in turns), n, 0.0),
        output_tokens_per_extraction=_ratio(sum(t.output_tokens for t in turns), n, 0.0),
        seconds_per_extraction=_ratio(sum(t.seconds for t in turns), n, 0.0),
    )


def report(results: Sequence[TurnResult]) -> dict[str, Any]:
    """Scores by category, by split and overall, and every turn's checks: what ``--json`` prints."""
    return {
        "overall": summarise(results)[0].as_dict() if results else None,
        "by_split": [s.as_dict() for s in summarise(results, key=lambda t: t.split)],
        "by_category": [s.as_dict() for s in summarise(results, key=lambda t: t.category)],
        "turns": [asdict(t) for t in results],
    }
