"""The SVG charts of `memlayer report`, written as text: no JavaScript, no fonts or files to fetch.

Two shapes cover every panel: horizontal stacked bars (one row per label) and a daily chart
(stacked bars per day, and optionally a line on its own right-hand axis). Every drawn value is an
element of class ``point`` with a ``<title>`` (the browser shows it on hover), so a reader, or a test,
can count what a chart drew. All text is escaped: topics and user ids are whatever users stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

__all__ = ["PALETTE", "Series", "bar_rows", "daily_chart", "number"]

# Colour-blind-safe (Okabe-Ito), in the order series are given.
PALETTE = ("#0072B2", "#E69F00", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
WIDTH = 1080
FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Series:
    """One named run of values, one per label (or day); ``None`` counts as 0 when drawn."""

    name: str
    values: Sequence[float | None]
    color: str | None = None


def number(value: float | None, *, unit: str = "") -> str:
    """A value as a reader wants it: 1,234 / 0.00123 / 12.5 ms / $0.0042."""
    if value is None:
        return "n/a"
    if unit == "$":
        return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"
    # Whole numbers and large ones with thousands separators; small fractions to three significant digits.
    text = f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def _ticks(top: float, count: int = 4) -> list[float]:
    """Round axis steps from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _colors(series: Sequence[Series]) -> list[str]:
    return [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]


def _legend(series: Sequence[Series], y: float, x: float = 0.0) -> str:
    parts = []
    for s, color in zip(series, _colors(series), strict=True):
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14:.1f}" y="{y:.1f}">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return "".join(parts)


def _svg(name: str, height: float, body: str, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(name)}" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" {FONT}>{body}</svg>'
    )


def bar_rows(name: str, label: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = "") -> str:
    """Horizontal stacked bars: one row per label, one segment per series, the row's total at its end."""
    row_h, top, left = 24, 28, min(360, 40 + 7 * max((len(t) for t in labels), default=4))
    plot = WIDTH - left - 110
    totals = [sum(s.values[i] or 0.0 for s in series) for i in range(len(labels))]
    ticks = _ticks(max(totals, default=0.0))
    scale = plot / ticks[-1]
    height = top + row_h * len(labels) + 34
    parts = [_legend(series, 14) if len(series) > 1 else ""]
    for tick in ticks:
        x = left + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 28}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 14}" text-anchor="middle" fill="#666">{number(tick)}</text>')
    colors = _colors(series)
    for i, text in enumerate(labels):
        y, x = top + i * row_h, float(left)
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{escape(_clip(text, 48))}</text>')
        for s, color in zip(series, colors, strict=True):
            value = s.values[i] or 0.0
            width = value * scale
            tip = f"{text}: {number(value, unit=unit)} {s.name}".strip()
            parts.append(
                f'<rect class="point" x="{x:.1f}" y="{y + 4}" width="{max(width, 0.0):.1f}" height="{row_h - 8}" '
                f'fill="{color}"><title>{escape(tip)}</title></rect>'
            )
            x += width
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 16}">{escape(number(totals[i], unit=unit))}</text>')
    return _svg(name, height, "".join(parts), label)


def daily_chart(name: str, label: str, days: Sequence[date], bars: Sequence[Series], line: Series | None = None) -> str:
    """Stacked bars per day (left axis), and ``line`` on its own right-hand axis."""
    height, top, left, right, bottom = 300, 30, 56, 64, 46
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    slot = plot_w / max(len(days), 1)
    totals = [sum(s.values[i] or 0.0 for s in bars) for i in range(len(days))]
    ticks = _ticks(max(totals, default=0.0))
    parts = [_legend([*bars, *([line] if line else [])], 14, left)]
    parts += _y_axis(ticks, left, top, plot_w, plot_h, anchor="end", x=left - 6)
    colors = _colors(bars)
    for i, day in enumerate(days):
        # A bar is at most 48 px wide, so a store of one day shows a bar, not a wall.
        bar_w = min(slot * 0.7, 48.0)
        x, base = left + (i + 0.5) * slot - bar_w / 2, float(top + plot_h)
        for s, color in zip(bars, colors, strict=True):
            value = s.values[i] or 0.0
            h = value / ticks[-1] * plot_h
            if value:
                parts.append(
                    f'<rect class="point" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{color}"><title>{day.isoformat()}: {number(value)} {escape(s.name)}</title></rect>'
                )
            base -= h
    parts += _day_labels(days, left, slot, top + plot_h + 16)
    if line is not None:
        parts.append(_line(line, days, left, slot, top, plot_w, plot_h))
    return _svg(name, height, "".join(parts), label)


def _y_axis(
    ticks: list[float], left: float, top: float, plot_w: float, plot_h: float, *, anchor: str, x: float
) -> list[str]:
    parts = []
    for tick in ticks:
        y = top + plot_h - tick / ticks[-1] * plot_h
        if anchor == "end":
            parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{x}" y="{y + 4:.1f}" text-anchor="{anchor}" fill="#666">{number(tick)}</text>')
    return parts


def _day_labels(days: Sequence[date], left: float, slot: float, y: float) -> list[str]:
    every = max(1, math.ceil(len(days) / 12))  # at most about 12 labels, however long the range
    return [
        f'<text x="{left + (i + 0.5) * slot:.1f}" y="{y:.1f}" text-anchor="middle" fill="#666">{day.isoformat()}</text>'
        for i, day in enumerate(days)
        if i % every == 0
    ]


def _line(
    line: Series, days: Sequence[date], left: float, slot: float, top: float, plot_w: float, plot_h: float
) -> str:
    color = line.color or PALETTE[3]
    values = [v or 0.0 for v in line.values]
    ticks = _ticks(max(values, default=0.0))
    points = [(left + (i + 0.5) * slot, top + plot_h - v / ticks[-1] * plot_h) for i, v in enumerate(values)]
    parts = _y_axis(ticks, left, top, plot_w, plot_h, anchor="start", x=left + plot_w + 6)
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>')
    for (x, y), day, value in zip(points, days, values, strict=True):
        parts.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}">'
            f"<title>{day.isoformat()}: {number(value)} {escape(line.name)}</title></circle>"
        )
    return "".join(parts)


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"
