"""`memlayer report`: one self-contained HTML file of charts over the store, read through `query`.

Every number comes from the documented views (``memory_history``, ``topic_events``, ``memory_churn``,
``llm_usage``) by `memlayer.query`, so the report is read-only and the same on DuckDB and Postgres.
The charts are SVG written here (`report_charts`): the file needs no network, script or font to be
viewed, and can be mailed or archived as it is. A panel with nothing to draw says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from html import escape
from pathlib import Path
from typing import Any

from ..db import DuckDb, PostgresDb
from .query import Db, query, store_stats
from .report_charts import PALETTE, Series, bar_rows, daily_chart, number

__all__ = ["PANELS", "build_report", "write_report"]

# The panels, in page order: (data-panel name, title). Tests and readers find charts by these names.
PANELS = (
    ("activity", "Memories and events over time"),
    ("topics", "Topics that changed most"),
    ("churn", "Churn per user"),
    ("cost", "LLM cost per model and purpose"),
    ("latency", "LLM latency per model and purpose"),
    ("errors", "Extraction errors"),
)
TOP = 15  # rows of a ranked panel; the rest are summed up in its note
OPERATIONS = ("add", "update", "delete")
OP_COLORS = {"add": PALETTE[3], "update": PALETTE[1], "delete": PALETTE[2]}
EXTRACTION_PURPOSES = ("extraction", "task")  # the LLM calls that turn conversations into memory operations


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    note: str
    svg: str | None  # None: nothing to draw yet (``note`` says why)


def write_report(db: Db, path: str | Path, *, user_id: str | None = None) -> Path:
    """Write the report of ``db`` (or of one user) to ``path``; returns the path written."""
    target = Path(path)
    html = build_report(db, user_id=user_id)  # first: a failed read leaves no half-written file
    target.write_text(html, encoding="utf-8")
    return target


def build_report(db: Db, *, user_id: str | None = None) -> str:
    """The report as one HTML document (inline CSS and SVG, no script)."""
    where, params = ("WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
    panels = [
        _activity(db, where, params),
        _topics(db, where, params),
        _churn(db, where, params),
        *_llm(db, where, params),
        _errors(db, where, params),
    ]
    return _page(_source(db), user_id, store_stats(db, user_id=user_id), panels)


def _rows(db: Db, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    # Every ``?`` in these queries is the user_id of a --user report, and there is none without one.
    result = query(sql, db=db, params=params * sql.count("?"))
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _and(where: str, condition: str) -> str:
    return f"{where} AND {condition}" if where else f"WHERE {condition}"


# -- panels ----------------------------------------------------------------------------------------


def _activity(db: Db, where: str, params: list[Any]) -> Panel:
    # From memory_history, which has user_id (events_by_day does not): version 1 begins with an add,
    # a later version with an update, and a last version that was closed ended with a delete.
    rows = _rows(
        db,
        f"""
        SELECT day, operation, count(*) AS events FROM (
            SELECT recorded_from::DATE AS day, CASE WHEN version = 1 THEN 'add' ELSE 'update' END AS operation
            FROM memory_history {where}
            UNION ALL
            SELECT h.recorded_until::DATE, 'delete' FROM memory_history h
            {_and(where, "h.recorded_until IS NOT NULL")} AND NOT EXISTS (
                SELECT 1 FROM memory_history n WHERE n.memory_id = h.memory_id AND n.version = h.version + 1)
        ) GROUP BY ALL ORDER BY day
        """,
        params,
    )
    title = PANELS[0][1]
    if not rows:
        return Panel("activity", title, "No memories yet: add some (memlayer add, or an extraction).", None)
    days, unit = _buckets(rows[0]["day"], rows[-1]["day"])
    counts = {op: [0.0] * len(days) for op in OPERATIONS}
    for row in rows:
        counts[row["operation"]][_bucket_of(row["day"], days)] += row["events"]
    alive, held = [], 0.0
    for i in range(len(days)):  # every add makes a memory, every delete ends one
        held += counts["add"][i] - counts["delete"][i]
        alive.append(held)
    bars = [Series(f"{op}s", counts[op], OP_COLORS[op]) for op in OPERATIONS]
    total = sum(sum(v) for v in counts.values())
    note = f"{number(total)} events per {unit} (bars, left axis); current memories at the end of each {unit} (line)."
    line = Series("memories", alive, PALETTE[0])
    return Panel("activity", title, note, daily_chart("activity", title, days, bars, line))


def _buckets(first: date, last: date) -> tuple[list[date], str]:
    """Every day from ``first`` to ``last``, or every Monday (week) when that is more than 120 days."""
    if (last - first).days <= 120:
        return [first + timedelta(days=i) for i in range((last - first).days + 1)], "day"
    start = first - timedelta(days=first.weekday())
    return [start + timedelta(weeks=i) for i in range((last - start).days // 7 + 1)], "week"


def _bucket_of(day: date, buckets: list[date]) -> int:
    step = (buckets[1] - buckets[0]).days if len(buckets) > 1 else 1
    return (day - buckets[0]).days // step


def _topics(db: Db, where: str, params: list[Any]) -> Panel:
    rows = _rows(
        db,
        f"""
        SELECT topic, operation, count(*) AS changes FROM topic_events {where}
        GROUP BY ALL
        """,
        params,
    )
    title = PANELS[1][1]
    if not rows:
        return Panel("topics", title, "No topic has changed yet (memories without topics are not counted).", None)
    by_topic: dict[str, dict[str, float]] = {}
    for row in rows:
        by_topic.setdefault(row["topic"], dict.fromkeys(OPERATIONS, 0.0))[row["operation"]] += row["changes"]
    ranked = sorted(by_topic, key=lambda t: (-sum(by_topic[t].values()), t))
    shown = ranked[:TOP]
    series = [Series(f"{op}s", [by_topic[t][op] for t in shown], OP_COLORS[op]) for op in OPERATIONS]
    note = f"Adds, updates and deletes that touched each topic, before or after; {len(ranked)} topics"
    note += f", the {TOP} busiest shown." if len(ranked) > TOP else "."
    return Panel("topics", title, note, bar_rows("topics", title, shown, series))


def _churn(db: Db, where: str, params: list[Any]) -> Panel:
    rows = _rows(
        db,
        f"""
        SELECT user_id, adds, updates, deletes, changes_per_memory, memories_now FROM memory_churn {where}
        ORDER BY adds + updates + deletes DESC, user_id
        """,
        params,
    )
    title = PANELS[2][1]
    if not rows:
        return Panel("churn", title, "No user has any memory events yet.", None)
    shown = rows[:TOP]
    labels = [f"{r['user_id']} ({number(r['changes_per_memory'])} changes per memory)" for r in shown]
    series = [Series(f"{op}s", [float(r[f"{op}s"]) for r in shown], OP_COLORS[op]) for op in OPERATIONS]
    note = "Events per user; changes per memory = updates and deletes over the memories the user ever had"
    note += f"; the {TOP} busiest of {len(rows)} users shown." if len(rows) > TOP else "."
    return Panel("churn", title, note, bar_rows("churn", title, labels, series))


def _llm(db: Db, where: str, params: list[Any]) -> list[Panel]:
    rows = _rows(
        db,
        f"""
        SELECT model, purpose, sum(calls) AS calls, sum(total_tokens) AS tokens, sum(cost_usd) AS cost,
               sum(unpriced_calls) AS unpriced, sum(avg_latency_ms * calls) / sum(calls) AS latency
        FROM llm_usage {where} GROUP BY model, purpose ORDER BY calls DESC, model, purpose
        """,
        params,
    )
    (_, cost_title), (_, latency_title) = PANELS[3], PANELS[4]
    if not rows:
        none = "No LLM calls yet: extractions, tasks and remote embeddings are counted here."
        return [Panel("cost", cost_title, none, None), Panel("latency", latency_title, none, None)]
    shown = rows[:TOP]
    labels = [f"{r['model']} · {r['purpose']}" for r in shown]
    calls, unpriced = sum(r["calls"] for r in rows), sum(r["unpriced"] for r in rows)
    if any(r["cost"] is not None for r in rows):
        series, unit = [Series("USD", [r["cost"] for r in shown], PALETTE[0])], "$"
        note = f"{number(calls)} calls, ${sum(r['cost'] or 0.0 for r in rows):,.4f} in all"
        note += f"; {number(unpriced)} calls have no price (LiteLLM has none for their model)." if unpriced else "."
    else:  # a local model: LiteLLM has no price, so the tokens are what the calls cost
        series, unit = [Series("tokens", [float(r["tokens"] or 0) for r in shown], PALETTE[5])], ""
        note = f"None of the {number(calls)} calls has a price (LiteLLM has none for their model): tokens shown."
    latency = [Series("ms", [r["latency"] for r in shown], PALETTE[4])]
    latency_note = "Mean latency per call, in milliseconds, over every attempt of the call."
    return [
        Panel("cost", cost_title, note, bar_rows("cost", cost_title, labels, series, unit=unit)),
        Panel("latency", latency_title, latency_note, bar_rows("latency", latency_title, labels, latency, unit="ms")),
    ]


def _errors(db: Db, where: str, params: list[Any]) -> Panel:
    purposes = ", ".join(f"'{p}'" for p in EXTRACTION_PURPOSES)
    rows = _rows(
        db,
        f"""
        SELECT day, sum(calls) - sum(failed_calls) AS ok, sum(failed_calls) AS failed FROM llm_usage
        {_and(where, f"purpose IN ({purposes})")} GROUP BY day ORDER BY day
        """,
        params,
    )
    title = PANELS[5][1]
    if not rows:
        return Panel("errors", title, "No extraction calls yet.", None)
    days, unit = _buckets(rows[0]["day"], rows[-1]["day"])
    ok, failed = [0.0] * len(days), [0.0] * len(days)
    for row in rows:
        ok[_bucket_of(row["day"], days)] += row["ok"]
        failed[_bucket_of(row["day"], days)] += row["failed"]
    note = f"{number(sum(failed))} of {number(sum(ok) + sum(failed))} extraction and task calls failed "
    note += f"(the provider failed, or no reply validated), per {unit}; their errors are in llm_calls.error."
    bars = [Series("succeeded", ok, PALETTE[5]), Series("failed", failed, PALETTE[2])]
    return Panel("errors", title, note, daily_chart("errors", title, days, bars))


# -- the page -----------------------------------------------------------------------------------------


def _source(db: Db) -> str:
    if isinstance(db, DuckDb):
        return str(db.db_file)
    if isinstance(db, PostgresDb):
        return db.display
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        from ..db.postgres import parse_dsn

        return parse_dsn(text.strip()).display  # never the password
    return text


def _page(source: str, user_id: str | None, stats: dict[str, Any], panels: Sequence[Panel]) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    scope = f"user {user_id}" if user_id is not None else "all users"
    facts = "".join(
        f"<div><b>{escape(number(value, unit=_unit(key)))}</b>{escape(key.replace('_', ' '))}</div>"
        for key, value in stats.items()
    )
    body = "".join(
        f'<section class="panel" data-panel="{p.name}"><h2>{escape(p.title)}</h2><p>{escape(p.note)}</p>'
        + (p.svg if p.svg is not None else '<div class="empty">no data yet</div>')
        + "</section>"
        for p in panels
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>memlayer report: {escape(source)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>memlayer report</h1><p>{escape(source)} · {escape(scope)} · {when}</p>"
        f'<div class="facts">{facts}</div></header>{body}</body></html>\n'
    )


def _unit(stat: str) -> str:
    return "$" if stat == "cost_usd" else ""


_CSS = (
    "body{font:14px system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;background:#f6f6f4;margin:0;"
    "padding:20px 40px;max-width:1120px}h1{font-size:22px;margin:0 0 4px}header p,.panel p{color:#555;margin:4px 0}"
    ".facts{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0 8px}.facts div{background:#fff;border:1px solid #ddd;"
    "border-radius:6px;padding:6px 12px;color:#555}.facts b{display:block;font-size:18px;color:#111}"
    ".panel{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 16px;margin:14px 0}"
    ".panel h2{font-size:16px;margin:0}.empty{padding:28px;text-align:center;color:#888;background:#fafafa;"
    "border:1px dashed #ccc;border-radius:6px;margin-top:8px}svg{display:block;margin-top:8px}"
)
