"""``memlayer report``: the store's analytics as one HTML file of charts (`memlayer._internal.analytics.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..analytics.report import write_report
from .app import DbOpt, ModelOpt, app, db_path, out, shown


@app.command()
def report(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="the HTML file to write")] = Path("report.html"),
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user")] = None,
    db: DbOpt = None,
    model: ModelOpt = None,
) -> None:
    """Write one self-contained HTML file of charts: memories and events over time, topics, churn, LLM
    cost and latency, extraction errors (read-only; open it in any browser, offline)."""
    path = db_path(db)
    written = write_report(path, out_file, user_id=user)
    out.print(f"wrote {written} ({written.stat().st_size / 1024:.0f} KB) from {shown(path)}")
