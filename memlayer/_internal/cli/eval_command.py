"""``memlayer eval``: extraction quality of a model, on the labelled scenarios."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.text import Text

from ..memory.manager import MemoryManager
from .app import (
    ApiBaseOpt,
    app,
    err,
    model_ready,
    out,
    table,
)


class Split(str, Enum):
    """Which scenarios to run: the ones the prompt was tuned on, the held-out ones, or all (``--help`` lists them)."""

    tune = "tune"
    heldout = "heldout"
    all = "all"


@app.command(name="eval")
def eval_(
    model: Annotated[
        str, typer.Option("--model", envvar="MEMLAYER_MODEL", help="the model to measure [env MEMLAYER_MODEL]")
    ],
    api_base: ApiBaseOpt = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="MEMLAYER_API_KEY", help="the provider key, if not in its usual variable"),
    ] = None,
    split: Annotated[Split, typer.Option(help="which scenarios")] = Split.all,
    category: Annotated[str | None, typer.Option(help="only this category")] = None,
    scenarios: Annotated[
        list[Path] | None, typer.Option("--scenarios", help="scenario files or folders (default: the shipped set)")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="scenarios run at once (each in its own store)")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print the scores and every turn as JSON")] = False,
    failures: Annotated[bool, typer.Option("--failures", help="list every failed check")] = False,
) -> None:
    """Measure extraction quality with a model: labelled scenarios, scored per category and overall."""
    from ..memory import evaluation

    model_ready(model, api_base=api_base, api_key=api_key)  # a bad model string or a missing key, first
    chosen = evaluation.load_scenarios(
        scenarios, split=None if split is Split.all else cast("evaluation.Split", split.value), category=category
    )
    options: dict[str, Any] = {"model": model, "api_base": api_base, "api_key": api_key}
    MemoryManager(**options)  # the manager's own checks, before any progress bar
    turns = sum(len(s.turns) for s in chosen)
    from rich.progress import Progress

    # A bar on a terminal only: redirected, it leaves a blank line before the result or the error.

    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"{len(chosen)} scenarios", total=turns)
        results = evaluation.run_scenarios(
            chosen,
            manager_options=options,
            jobs=jobs,
            on_scenario=lambda scenario, done: bar.update(task, advance=len(done), description=scenario.id),
        )
    summary = evaluation.report(results)
    if as_json:
        sys.stdout.write(json.dumps({"model": model, **summary}, indent=2, ensure_ascii=False) + "\n")
        return
    if failures:
        _print_failures(results)
    groups = [*summary["by_category"], *summary["by_split"], summary["overall"]]
    columns = ["group", "scen", "turns", "recall", "viol", "dup", "prec", "time", "err", "ops", "tok", "s"]
    rows = [
        (g["group"], g["scenarios"], g["extractions"], f"{g['recall']:.2f}", f"{g['absent_violation_rate']:.1%}",
         g["duplicates"], f"{g['precision']:.2f}", f"{g['time_accuracy']:.2f}", g["errors"],
         f"{g['operations_per_extraction']:.1f}",
         f"{g['output_tokens_per_extraction']:.0f}", f"{g['seconds_per_extraction']:.1f}")
        for g in groups
    ]  # fmt: skip
    title = (
        f"extraction quality: {model} (viol: absent facts found; time: time checks passed; "
        "per extraction: ops, output tokens, seconds)"
    )
    out.print(table(title, columns, rows))


def _print_failures(results: Sequence[Any]) -> None:
    for r in results:
        problems = [f"missing {', '.join(r.missing)}"] if r.missing else []
        problems += [f"should be absent: {', '.join(r.violations)}"] if r.violations else []
        problems += [f"unexpected memory {m!r}" for m in r.unmatched]
        problems += [f"error: {r.error}"] if r.error else []
        problems += [f"{r.duplicates} duplicate(s)"] if r.duplicates else []
        problems += [f"time: {f}" for f in r.time_failures]
        if problems:
            out.print(Text(f"{r.scenario} turn {r.turn}: " + "; ".join(problems)))
            out.print(Text("    did: " + ("; ".join(r.changes) or "nothing")), style="dim")
