"""``memlayer eval``: extraction quality of a model, on the labelled scenarios."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.text import Text

from ..errors import ConfigError
from ..memory.manager import MemoryManager
from .app import (
    ApiBaseOpt,
    app,
    err,
    out,
    table,
)


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
    split: Annotated[str, typer.Option(help="tune, heldout or all")] = "all",
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

    if split not in ("tune", "heldout", "all"):
        raise ConfigError(f"--split must be tune, heldout or all, not {split!r}")
    chosen = evaluation.load_scenarios(
        scenarios, split=None if split == "all" else cast("evaluation.Split", split), category=category
    )
    options: dict[str, Any] = {"model": model, "api_base": api_base, "api_key": api_key}
    MemoryManager(**options)  # a bad model string fails here, before any progress bar
    turns = sum(len(s.turns) for s in chosen)
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
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
    columns = ["group", "scen", "turns", "recall", "viol", "dup", "prec", "err", "ops", "tok", "s"]
    rows = [
        (g["group"], g["scenarios"], g["extractions"], f"{g['recall']:.2f}", f"{g['absent_violation_rate']:.1%}",
         g["duplicates"], f"{g['precision']:.2f}", g["errors"], f"{g['operations_per_extraction']:.1f}",
         f"{g['output_tokens_per_extraction']:.0f}", f"{g['seconds_per_extraction']:.1f}")
        for g in groups
    ]  # fmt: skip
    title = f"extraction quality: {model} (viol: absent facts found; per extraction: ops, output tokens, seconds)"
    out.print(table(title, columns, rows))


def _print_failures(results: Sequence[Any]) -> None:
    for r in results:
        problems = [f"missing {', '.join(r.missing)}"] if r.missing else []
        problems += [f"should be absent: {', '.join(r.violations)}"] if r.violations else []
        problems += [f"unexpected memory {m!r}" for m in r.unmatched]
        problems += [f"error: {r.error}"] if r.error else []
        problems += [f"{r.duplicates} duplicate(s)"] if r.duplicates else []
        if problems:
            out.print(Text(f"{r.scenario} turn {r.turn}: " + "; ".join(problems)))
            out.print(Text("    did: " + ("; ".join(r.changes) or "nothing")), style="dim")
