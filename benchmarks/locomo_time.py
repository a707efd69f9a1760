"""Time-aware search on LoCoMo's temporal questions: recall@10 before and after, leave one conversation out.

    uv run python benchmarks/locomo_time.py --data /work/shared/data/locomo-dev.json --cache /tmp/locomo-cache

Each turn is stored as `benchmarks/locomo.py` stores it (one memory, the two turns before it as its
input), learnt at its session's date: memlayer's clock is pinned to that date while the session is
stored, so ``learned_at`` is the conversation's time, as an import of a dated history keeps it. Every
question is ranked with the shipped fusion weights plus the time share of `memlayer._internal.search.time` at
each weight of a small grid (0 is the ranking before time-aware search). Relative words in a question
("last year") count from the conversation's last session.

Cross-validated as the retrieval benchmark is: for each conversation, the time weight is chosen on
the other conversations' temporal questions (category 2), then scored on this one's; the figure is
over all held-out questions. The other categories are shown at the chosen weights, to check that a
time share costs the questions that name no time nothing. The data is read where it lies.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # run as a script: benchmarks/locomo.py beside it
from locomo import CATEGORIES, CONTEXT_TURNS, CachedEmbedder, asked, recall, sessions, turn_text, user_index

from memlayer import DuckDb, MemoryManager
from memlayer._internal import clock
from memlayer._internal.checks import MAX_MEMORY_CHARS
from memlayer._internal.search.embedders import resolve_embedder
from memlayer._internal.search.filters import SearchFilters
from memlayer._internal.search.fusion import WEIGHTS
from memlayer._internal.search.retrieval import INPUT_CHARS
from memlayer._internal.search.time import moved_at, named_window, time_shares

GRID = (0.0, 0.25, 0.5, 1.0, 2.0)


def session_dates(conversation: dict[str, Any]) -> list[datetime]:
    """Each session's date ("1:56 pm on 8 May, 2023"), in the order of `locomo.sessions`."""
    keys = [k for k, v in conversation.items() if re.fullmatch(r"session_\d+", k) and isinstance(v, list)]
    dates = []
    for key in sorted(keys, key=lambda k: int(k.split("_")[1])):
        text = conversation[f"{key}_date_time"]
        dates.append(datetime.strptime(re.sub(r"\s+", " ", text.replace(",", "")), "%I:%M %p on %d %B %Y"))
    return [d.replace(tzinfo=timezone.utc) for d in dates]


def turns(sample: dict[str, Any]) -> list[tuple[int, datetime, str, str, str]]:
    """Each turn as stored: session number and date, memory text, input (it and the two before), dia_id."""
    out = []
    conversation = sample["conversation"]
    for number, (session, when) in enumerate(zip(sessions(conversation), session_dates(conversation), strict=True)):
        window: list[str] = []
        for turn in session:
            text = turn_text(turn)
            window = [*window[-CONTEXT_TURNS:], text]
            # A memory holds one fact (at most 240 characters): a longer turn is cut, its input whole.
            out.append((number, when, text[:MAX_MEMORY_CHARS], "\n".join(window), turn["dia_id"]))
    return out


def warm(embedder: Any, data: list[Any], *, inputs: bool) -> None:
    """Every text (then every input) embedded in batches of 64 into the cache: one call per turn is slower."""
    rows = [row for sample in data for row in turns(sample)]
    texts = [row[2].strip() for row in rows] + ([row[3][:INPUT_CHARS].strip() for row in rows] if inputs else [])
    texts = list(dict.fromkeys(texts))
    for start in range(0, len(texts), 64):
        embedder.embed_documents(texts[start : start + 64])


def store_dated(manager: MemoryManager, sample: dict[str, Any], *, inputs: bool) -> dict[str, str]:
    """Store every turn at its session's date; returns memory_id -> dia_id."""
    user, dia = sample["sample_id"], {}
    for number, when, text, source, dia_id in turns(sample):
        with clock.pinned(when, f"{user}:{number}:{dia_id}"):
            memory = manager.add_user_memory(text, user_id=user, input=source if inputs else None)
        dia[memory.memory_id] = dia_id
    return dia


def recalls(manager: MemoryManager, sample: dict[str, Any], dia: dict[str, str]) -> list[tuple[int, list[float], bool]]:
    """Each question's category, its recall@10 at every weight of `GRID`, and whether it names a time."""
    index = user_index(manager, sample["sample_id"])
    today = session_dates(sample["conversation"])[-1].date()
    current = [index.facts[row] for row in index.row_of.values()]
    out = []
    for qa, evidence in asked(sample):
        vector = manager.embedder.embed_query(qa["question"]) if manager.embedder else None
        window = named_window(qa["question"], today, moved=moved_at(current))
        found = []
        for weight in GRID:
            shares = None if window is None or weight == 0 else time_shares(index.facts, window, weight)
            rows = index.fuse(qa["question"], vector, SearchFilters(), 10, weights=WEIGHTS, time=shares).rows
            found.append(recall([dia[index.ids[r]] for r in rows], evidence)[10])
        out.append((qa["category"], found, window is not None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="locomo-dev.json (read in place, never copied)")
    parser.add_argument("--cache", type=Path, help="a folder outside the repository to keep vectors in")
    parser.add_argument("--no-inputs", dest="inputs", action="store_false", help="store each turn with no input")
    args = parser.parse_args()
    data = json.loads(args.data.read_text())
    with tempfile.TemporaryDirectory() as tmp, DuckDb(Path(tmp) / "locomo.duckdb") as db:
        embedder = resolve_embedder("local")
        if embedder is not None and args.cache:
            embedder = CachedEmbedder(embedder, args.cache)
        if embedder is not None and args.cache:
            warm(embedder, data, inputs=args.inputs)
        manager = MemoryManager(db=db, embedder=embedder)
        dia: dict[str, str] = {}
        for sample in data:
            dia.update(store_dated(manager, sample, inputs=args.inputs))
        what = "each with the two turns before it as its input" if args.inputs else "no inputs"
        print(f"stored {len(dia)} turns of {len(data)} conversations, each at its session's date ({what})")
        table = {sample["sample_id"]: recalls(manager, sample, dia) for sample in data}
    report(table)


def report(table: dict[str, list[tuple[int, list[float], bool]]]) -> None:
    def temporal_mean(names: list[str], w: int) -> float:
        return float(np.mean([r[1][w] for n in names for r in table[n] if r[0] == 2]))

    names = list(table)
    chosen: dict[str, int] = {}
    print(f"{'held out':<10}{'temporal':>9}{'naming a time':>15}{'R@10 before':>13}{'after':>8}   weight chosen")
    for name in names:
        others = [n for n in names if n != name]
        chosen[name] = max(range(len(GRID)), key=lambda w: (temporal_mean(others, w), -w))
        rows = [r for r in table[name] if r[0] == 2]
        timed = sum(r[2] for r in rows)
        before, after = temporal_mean([name], 0), temporal_mean([name], chosen[name])
        print(f"{name:<10}{len(rows):>9}{timed:>15}{before:>13.3f}{after:>8.3f}   {GRID[chosen[name]]}")
    print(f"\n{'category':<14}{'questions':>10}{'naming a time':>15}{'R@10 before':>13}{'after (cv)':>12}")
    for category, label in CATEGORIES.items():
        rows = [(r, chosen[n]) for n in names for r in table[n] if r[0] == category]
        before = np.mean([r[1][0] for r, _ in rows])
        after = np.mean([r[1][w] for r, w in rows])
        timed = sum(r[2] for r, _ in rows)
        print(f"{label:<14}{len(rows):>10}{timed:>15}{before:>13.3f}{after:>12.3f}")
    named = [(r, chosen[n]) for n in names for r in table[n] if r[0] == 2 and r[2]]
    if named:
        before = np.mean([r[1][0] for r, _ in named])
        after = np.mean([r[1][w] for r, w in named])
        print(f"temporal questions that name a time: {len(named)}, R@10 {before:.3f} -> {after:.3f}")
    for w, weight in enumerate(GRID):
        print(f"weight {weight}: temporal R@10 over all conversations {temporal_mean(names, w):.3f}")


if __name__ == "__main__":
    sys.exit(main())
