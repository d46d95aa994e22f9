"""The HTML report, opened in a real headless browser (Debian's chromium): the charts are drawn, and
they draw what was measured: intervals between audits as bars over their spans, windows as dots, no
line between two samples.

Outside CI a machine without chromium skips this test; with CI=true it must run (tests/run installs
chromium).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fleetrst.history.store import HistoryStore
from fleetrst.testing.support import ci
from tests.helpers import run_cli
from tests.history.simulate import SimHost, audit


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
        if self.figures and tag in ("svg", "path", "polyline", "rect", "circle", "image", "g"):
            key = f"{self.figures[-1].get('id')}:{tag}"
            self.inside[key] = self.inside.get(key, 0) + 1
            if a.get("id"):
                self.inside[f"{self.figures[-1].get('id')}:#{a['id']}"] = 1


def make_history(db: Path) -> None:
    """Twelve hourly audits of eight hosts, recorded as the audit command records them (each host's
    counters, its counts since its previous audit): h002 always resets a lot, in its windows and
    between them; h005 starts in the tenth audit; h007 was critical and recovered in the last one;
    h008 was unreachable once; h003 was quiet at every audit, yet stormed between the eighth and the
    ninth, and rebooted between the third and the fourth (nothing counted there)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    hosts = [SimHost(f"h{n:03d}") for n in range(1, 9)]
    by_name = {h.name: h for h in hosts}
    with HistoryStore.open(db) as store:
        for i in range(12):
            if i:
                for h in hosts:
                    sent = {"h002": 90 * 3590, "h003": 60 * 1800 if i == 8 else 0}.get(h.name, 0)
                    h.happen(3590, received=sent, sent=sent)
            if i == 3:
                h3 = by_name["h003"]
                h3.boot, h3.uptime = "7d1c0f4e-0000-4000-8000-00000000000a", 40.0
                h3.tcp = {
                    k: (v if k in ("RtoAlgorithm", "RtoMin", "MaxConn") else 10) for k, v in h3.tcp.items()
                }
            storm = {"h002": (800 + 50 * i, 800 + 50 * i)}
            if i >= 9:
                storm["h005"] = (4000 + 200 * i, 4000 + 200 * i)
            if 6 <= i < 11:
                storm["h007"] = (3000, 3000)
            audit(
                store,
                hosts,
                start + timedelta(hours=i),
                storm=storm,
                unreachable=("h008",) if i == 4 else (),
            )


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
    assert ids == ["offender-0", "offender-1", "offender-2", "offender-3", "heatmap"], ids
    hosts = [f.get("data-host") for f in figures.figures[:4]]
    assert hosts == ["h002", "h007", "h005", "h003"], "most audits tripped (window or between) first"
    for fig in figures.figures:
        width, height = (int(v) for v in str(fig.get("data-drawn")).split("x"))
        assert width > 300 and height > 100, fig
        assert int(str(fig.get("data-marks"))) > 10, fig
    assert figures.inside["offender-0:#offender-0-resets_sent"] == 1, (
        "h002's intervals: bars over their spans"
    )
    assert figures.inside["offender-0:#offender-0-resets_sent-windows"] == 1, "h002's windows: dots on top"
    assert figures.inside["offender-3:#offender-3-resets_sent"] == 1, "h003: its storm between audits"
    assert figures.inside["offender-3:#offender-3-gaps"] == 1, "h003: the reboot, nothing counted, said"
    assert figures.inside["heatmap:#fleet-heatmap"] == 1
    assert not any(key.endswith((":path", ":polyline")) for key in figures.inside), (
        "no line joins two samples: nothing was measured in between"
    )
    assert 'id="quiet-between"' in dom.stdout and "h003" in dom.stdout.split('id="quiet-between"')[1][:400]

    shot = tmp_path / "report.png"
    result = browser(tmp_path, "--window-size=1200,3000", f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.stat().st_size > 20_000, result.stderr[-2000:]
    keep = os.environ.get("FLEETRST_KEEP_SCREENSHOT")
    if keep:  # to look at it: FLEETRST_KEEP_SCREENSHOT=/tmp/report.png pytest tests/render/test_html.py
        shutil.copy(shot, keep)
