"""``memlayer report``: one HTML file of SVG charts, checked in a real headless browser (Debian's chromium).

The demo's store (``memlayer demo --db``, replayed offline) is rendered by chromium twice: once to a
screenshot, which must show the charts' colours (not a blank page), and once to its DOM, where
every panel must hold a chart with data points, and the points must carry the store's own numbers
(read again here with `memlayer.query`). An empty store renders a "no data yet" panel for each
chart. The same report is built from a PostgreSQL copy of the store and must match.

The browser tests need a ``chromium`` on the PATH, which the README's two commands do not install: on
such a machine they skip with a one-line reason. CI sets ``MEMLAYER_REQUIRE_BROWSER=1`` (``.ci/run``
installs Debian's chromium), and there a missing browser fails instead, so a skip cannot hide a broken
report.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

import memlayer
from memlayer import DuckDb, PostgresDb
from memlayer._internal.analytics.report import PANELS, build_report, write_report

from .test_cli import fails, ok

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADD_GREEN = (0x00, 0x9E, 0x73)  # report_charts.PALETTE[3]: the adds of every chart
LINE_BLUE = (0x00, 0x72, 0xB2)  # PALETTE[0]: the memories line


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    ok("demo", "--db", str(path))
    return path


@pytest.fixture(scope="module")
def demo_report(demo_db: Path) -> Path:
    out = demo_db.parent / "report.html"
    printed = ok("report", "--db", str(demo_db), "--out", str(out))
    assert printed.startswith(f"wrote {out} (") and printed.rstrip().endswith(f"from {demo_db}")
    return out


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "no chromium on the PATH (apt-get install -y --no-install-recommends chromium)"
        if os.environ.get("MEMLAYER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MEMLAYER_REQUIRE_BROWSER=1 and {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def _browse(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class _Charts(HTMLParser):
    """Per panel: how many charts (``svg.chart``) and data points (``.point``) it holds, the points'
    titles, and whether it says "no data yet"."""

    def __init__(self) -> None:
        super().__init__()
        self.panels: dict[str, dict[str, object]] = {}
        self._panel: str | None = None
        self._in_title = self._in_empty = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "section" and attr.get("data-panel"):
            self._panel = str(attr["data-panel"])
            self.panels[self._panel] = {"svgs": 0, "points": 0, "titles": [], "empty": False}
        elif self._panel is not None:
            panel = self.panels[self._panel]
            classes = (attr.get("class") or "").split()
            if tag == "svg" and "chart" in classes:
                panel["svgs"] = int(str(panel["svgs"])) + 1
            if "point" in classes:
                panel["points"] = int(str(panel["points"])) + 1
            self._in_title = tag == "title"
            self._in_empty = "empty" in classes

    def handle_data(self, data: str) -> None:
        if self._panel is None:
            return
        if self._in_title:
            titles = self.panels[self._panel]["titles"]
            assert isinstance(titles, list)
            titles.append(data)
        if self._in_empty and data.strip() == "no data yet":
            self.panels[self._panel]["empty"] = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._panel = None
        self._in_title = self._in_empty = False


def _charts(html: str) -> dict[str, dict[str, object]]:
    parser = _Charts()
    parser.feed(html)
    return parser.panels


def _pixels(png: bytes) -> tuple[int, int, list[bytearray]]:
    """Width, height and RGB rows of an 8-bit RGB or RGBA PNG (chromium's screenshots), with zlib alone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        size, kind = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
        elif kind == b"IDAT":
            idat += body
    bpp = 3 if color == 2 else 4
    raw, stride, rows = zlib.decompress(idat), width * bpp, []
    previous = bytearray(stride)
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        _unfilter(kind, row, previous, bpp)
        rows.append(bytearray(b for i, b in enumerate(row) if bpp == 3 or i % 4 != 3) if bpp == 4 else row)
        previous = row
    return width, height, rows


def _unfilter(kind: int, row: bytearray, up: bytearray, bpp: int) -> None:
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        corner = up[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up[i]) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up[i]) // 2) & 0xFF
        elif kind == 4:
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            row[i] = (row[i] + (left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner)) & 0xFF


def test_the_demo_report_renders_every_chart_in_chromium(demo_db: Path, demo_report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _browse(demo_report, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000")
    width, height, rows = _pixels(shot.read_bytes())
    assert (width, height) == (1200, 2000)
    colours: dict[tuple[int, int, int], int] = {}
    for row in rows[::4]:  # every 4th row is plenty to see what was painted
        for x in range(0, len(row), 3 * 2):
            pixel = (row[x], row[x + 1], row[x + 2])
            colours[pixel] = colours.get(pixel, 0) + 1
    seen = sum(colours.values())
    assert max(colours.values()) < 0.9 * seen  # not one colour (a blank page) ...
    assert len(colours) > 50  # ... but text, axes and bars
    assert colours.get(ADD_GREEN, 0) > 0.005 * seen  # the adds' bars were painted
    assert colours.get(LINE_BLUE, 0) > 0  # and the memories line

    dom = _browse(demo_report, tmp_path, "--dump-dom").stdout
    charts = _charts(dom)
    assert list(charts) == [name for name, _ in PANELS]
    for name, panel in charts.items():
        assert panel["svgs"] >= 1 and int(str(panel["points"])) > 0 and not panel["empty"], (name, panel)


def test_the_charts_carry_the_stores_numbers(demo_db: Path, demo_report: Path) -> None:
    charts = _charts(demo_report.read_text())
    # Every event of the store, by operation, is a bar of the activity chart.
    events = dict(memlayer.query("SELECT operation, count(*) FROM memory_events GROUP BY 1", db=demo_db).rows)
    drawn: dict[str, int] = {}
    for title in charts["activity"]["titles"]:  # type: ignore[union-attr]
        if match := re.fullmatch(r"\d{4}-\d\d-\d\d: (\d+) (add|update|delete)s", title):
            drawn[match[2]] = drawn.get(match[2], 0) + int(match[1])
    assert drawn == events and sum(events.values()) == 8  # the demo's events (tests/test_cli.py)
    memories = memlayer.query("SELECT count(*) FROM current_memories", db=demo_db).rows[0][0]
    assert [t for t in charts["activity"]["titles"] if t.endswith(" memories")][-1].endswith(f": {memories} memories")  # type: ignore[union-attr]
    churn = memlayer.query("SELECT user_id, adds FROM memory_churn ORDER BY user_id", db=demo_db).rows
    for user, adds in churn:
        assert f"{user} ({_per_memory(demo_db, user)} changes per memory): {adds} adds" in charts["churn"]["titles"]  # type: ignore[operator]
    tokens = memlayer.query("SELECT sum(total_tokens) FROM llm_usage", db=demo_db).rows[0][0]
    assert charts["cost"]["titles"] == [f"openai:qwen1.5b · extraction: {tokens:,} tokens"]
    assert charts["errors"]["titles"][0].endswith(": 4 succeeded")  # type: ignore[index]


def _per_memory(db: Path, user: str) -> str:
    value = memlayer.query("SELECT changes_per_memory FROM memory_churn WHERE user_id = ?", db=db, params=[user])
    return f"{value.rows[0][0]:.3g}"


def test_an_empty_store_says_no_data_yet(tmp_path: Path) -> None:
    DuckDb(tmp_path / "empty.duckdb").close()
    page = write_report(tmp_path / "empty.duckdb", tmp_path / "empty.html")
    charts = _charts(page.read_text())
    assert list(charts) == [name for name, _ in PANELS]
    assert all(panel["empty"] and panel["svgs"] == 0 and panel["points"] == 0 for panel in charts.values()), charts


def test_a_users_report_holds_only_their_rows(demo_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "sam.html"
    ok("report", "--db", str(demo_db), "--user", "sam@example.com", "--out", str(out))
    charts = _charts(out.read_text())
    assert [t.split(" (")[0] for t in charts["churn"]["titles"] if t.endswith("adds")] == ["sam@example.com"]  # type: ignore[union-attr]
    assert "maya@example.com" not in out.read_text()
    assert "no database at" in fails("report", "--db", str(tmp_path / "nothing.duckdb"), "--out", str(out))


def test_postgres_gives_the_same_report(demo_db: Path, tmp_path: Path, fresh_postgres_dsn: str) -> None:
    with DuckDb(demo_db) as store:
        memlayer.export_store(store, tmp_path / "export")
    with PostgresDb(fresh_postgres_dsn) as pg:
        memlayer.import_store(pg, tmp_path / "export")
        from_postgres, shown = build_report(pg), pg.display
    from_duckdb = build_report(demo_db)
    # Alike but for the header's source and time.
    assert from_duckdb.split("</header>")[1] == from_postgres.split("</header>")[1]
    assert f"<p>{escape(shown)} · all users · " in from_postgres
