"""The HTML report, opened in a real headless browser (Debian's chromium): the charts are drawn.

Outside CI a machine without chromium skips this test; with CI=true it must run (tests/run installs
chromium).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fleetrst.history.store import HistoryStore
from fleetrst.testing.support import ci
from tests.helpers import host, report, run_cli


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if ci():
        pytest.fail("chromium is missing (CI=true: tests/run installs it; this test must run)", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)")


def browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Figures(HTMLParser):
    """The <figure class="chart"> elements of the rendered DOM, with their attributes, and what they hold."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[dict[str, str | None]] = []
        self.inside: dict[str, int] = {}
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "figure" and "chart" in (a.get("class") or ""):
            self.figures.append(a)
        if self.figures and tag in ("svg", "path", "image", "g"):
            key = f"{self.figures[-1].get('id')}:{tag}"
            self.inside[key] = self.inside.get(key, 0) + 1
            if a.get("id"):
                self.inside[f"{self.figures[-1].get('id')}:#{a['id']}"] = 1


def make_history(db: Path) -> None:
    """Twelve hourly audits of eight hosts: h002 always resets a lot, h005 starts in the tenth audit,
    h007 was critical and recovered in the last one."""
    start = datetime.now(UTC) - timedelta(hours=12)
    with HistoryStore.open(db) as store:
        for i in range(12):
            hosts = []
            for n in range(1, 9):
                name = f"h{n:03d}"
                if name == "h002":
                    hosts.append(host(name, "warning", sent=80.0 + 5 * i))
                elif name == "h005" and i >= 9:
                    hosts.append(host(name, "critical", sent=400.0 + 20 * i))
                elif name == "h007" and 6 <= i < 11:
                    hosts.append(host(name, "critical", sent=300.0))
                elif name == "h008" and i == 4:
                    hosts.append(host(name, "unreachable"))
                else:
                    hosts.append(host(name, sent=float(n % 3)))
            when = (start + timedelta(hours=i)).isoformat(timespec="seconds")
            store.record(report(hosts, started_at=when), 2)


def test_the_html_report_is_self_contained_and_its_charts_draw_in_a_browser(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db, page = tmp_path / "h.sqlite", tmp_path / "report.html"
    make_history(db)
    proc = run_cli("report", "--db", str(db), "--html", str(page), env=cli_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text), "nothing is fetched from anywhere"
    assert "default-src 'none'" in text

    dom = browser(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    figures = Figures()
    figures.feed(dom.stdout)
    assert figures.body.get("data-charts-drawn") == str(len(figures.figures)), "every chart was laid out"
    ids = [f.get("id") for f in figures.figures]
    assert ids == ["offender-0", "offender-1", "offender-2", "heatmap"], ids
    hosts = [f.get("data-host") for f in figures.figures[:3]]
    assert hosts == ["h002", "h007", "h005"], "most audits tripped first"
    for fig in figures.figures:
        width, height = (int(v) for v in str(fig.get("data-drawn")).split("x"))
        assert width > 300 and height > 100, fig
        assert int(str(fig.get("data-marks"))) > 10, fig
    assert figures.inside["offender-0:#offender-0-resets_sent"] == 1, "h002's resets_sent line"
    assert figures.inside["offender-0:#offender-0-tripped"] == 1
    assert figures.inside["heatmap:#fleet-heatmap"] == 1, "the heat map's cells (an <image> in the SVG)"

    shot = tmp_path / "report.png"
    result = browser(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.stat().st_size > 20_000, result.stderr[-2000:]
