"""The HTML audit report: one self-contained file, charts drawn by matplotlib as inline SVG.

Nothing is fetched when it opens: the charts are inline SVG (the heat map's cells an inline PNG), the
style is inline, and a Content-Security-Policy forbids loading anything else. A small inline script
(allowed by its hash, nothing else is) notes on each chart the size the browser drew it at, so that
a test can tell a chart was laid out, not only present.

Host names and error text come from inventories and hosts: they are HTML-escaped here, and matplotlib
escapes its own SVG text.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..measure.trends import FleetChanges
from ..model import HEADLINE_RATES, HostRow, SweepRow

CHART_RATES = HEADLINE_RATES
HEATMAP_MAX_HOSTS = 50

_SCRIPT = """
document.addEventListener("DOMContentLoaded", function () {
  var drawn = 0;
  document.querySelectorAll("figure.chart").forEach(function (fig) {
    var svg = fig.querySelector("svg");
    if (!svg) { return; }
    var box = svg.getBoundingClientRect();
    fig.setAttribute("data-drawn", Math.round(box.width) + "x" + Math.round(box.height));
    fig.setAttribute("data-marks", String(svg.querySelectorAll("path, image").length));
    if (box.width > 0 && box.height > 0) { drawn += 1; }
  });
  document.body.setAttribute("data-charts-drawn", String(drawn));
});
"""

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .25em .8em; text-align: left; }
th { border-bottom: 2px solid #ccc; } tr:nth-child(even) td { background: #f6f6f6; }
.critical { color: #b00020; font-weight: 600; } .warning { color: #a15c00; font-weight: 600; }
.ok { color: #1b7a1b; } .muted { color: #777; }
figure.chart { margin: 1em 0; } figure.chart svg { max-width: 100%; height: auto; }
figcaption { font-weight: 600; }
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _offender_chart(index: int, host: str, rows: Sequence[HostRow]) -> str:
    import matplotlib
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"fleetrst-offender-{index}"}):
        fig = Figure(figsize=(9, 2.8))
        ax = fig.add_subplot()
        times = [r.started_ts / 86400.0 for r in rows]  # matplotlib's dates: days since 1970
        for metric in CHART_RATES:
            values = [r.rate(metric) for r in rows]
            if not any(v for v in values if v is not None):
                continue
            (line,) = ax.plot(
                times, [math.nan if v is None else v for v in values], marker="o", markersize=3, label=metric
            )
            line.set_gid(f"offender-{index}-{metric}")
        tripped = [(t, r) for t, r in zip(times, rows, strict=True) if r.is_tripped]
        if tripped:
            peaks = [max((r.rate(m) or 0.0) for m in CHART_RATES) for _, r in tripped]
            marks = ax.scatter(
                [t for t, _ in tripped],
                peaks,
                s=60,
                facecolors="none",
                edgecolors="#b00020",
                label="tripped",
                zorder=3,
            )
            marks.set_gid(f"offender-{index}-tripped")
        ax.set_ylabel("per second")
        ax.set_ylim(bottom=0)
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small", ncols=3)
        return _svg(fig)


def _heatmap(sweeps: Sequence[SweepRow], rows: Sequence[HostRow], metric: str) -> tuple[str, int, int]:
    import matplotlib
    from matplotlib.colors import SymLogNorm
    from matplotlib.figure import Figure

    columns = {s.id: i for i, s in enumerate(sweeps)}
    peak: dict[str, float] = {}
    for r in rows:
        peak[r.host] = max(peak.get(r.host, 0.0), r.rate(metric) or 0.0)
    hosts = sorted(peak, key=lambda h: (-peak[h], h))[:HEATMAP_MAX_HOSTS]
    index = {h: i for i, h in enumerate(hosts)}
    grid = [[math.nan] * len(sweeps) for _ in hosts]
    for r in rows:
        if r.host in index and r.sweep_id in columns and r.rates is not None:
            grid[index[r.host]][columns[r.sweep_id]] = r.rate(metric) or 0.0
    vmax = max([v for row in grid for v in row if not math.isnan(v)], default=0.0) or 1.0
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "fleetrst-heatmap"}):
        fig = Figure(figsize=(9, 1.2 + 0.28 * len(hosts)))
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["magma_r"].copy()
        cmap.set_bad("#d9d9d9")  # not measured in that audit
        image = ax.imshow(
            grid,
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            norm=SymLogNorm(linthresh=1.0, vmin=0.0, vmax=vmax),
        )
        image.set_gid("fleet-heatmap")
        ax.set_yticks(range(len(hosts)), labels=hosts, fontsize="small")
        step = max(1, len(sweeps) // 8)
        ticks = list(range(0, len(sweeps), step))
        ax.set_xticks(
            ticks,
            labels=[_dt(sweeps[i].started_ts).strftime("%m-%d %H:%M") for i in ticks],
            fontsize="small",
            rotation=30,
            ha="right",
        )
        ax.set_xlabel("audit (UTC)")
        bar = fig.colorbar(image, ax=ax, pad=0.02)
        bar.set_label(f"{metric} per second")
        return _svg(fig), len(hosts), len(peak)


def _status(status: str) -> str:
    return f'<span class="{_esc(status)}">{_esc(status.upper())}</span>'


def render_html(
    sweeps: Sequence[SweepRow],
    rows: Sequence[HostRow],
    changes: FleetChanges,
    metric: str,
    top: int,
    *,
    title_period: str,
) -> str:
    """The report for the audits ``sweeps`` and their host ``rows`` (the period), with ``changes``."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    parts: list[str] = []
    first, last = sweeps[0].started_at, sweeps[-1].started_at
    parts.append(f"<h1>fleetrst audit report — last {_esc(title_period)}</h1>")
    parts.append(
        f'<p class="muted">{len(sweeps)} audits of {changes.hosts} hosts, {_esc(first)} to {_esc(last)}; '
        f"generated {generated}</p>"
    )
    offenders = changes.offenders[:top]
    parts.append(f"<h2>Top offenders ({len(offenders)} of {len(changes.offenders)})</h2>")
    if offenders:
        parts.append(
            '<table id="offenders"><tr><th>host</th><th>tripped</th><th>worst</th><th>peak</th>'
            "<th>last status</th><th>causes</th></tr>"
        )
        for o in offenders:
            parts.append(
                f"<tr><td>{_esc(o.host)}</td><td>{o.tripped}/{o.audits}</td><td>{_status(o.worst)}</td>"
                f"<td>{_esc(o.peak_metric)} {o.peak:.1f}/s</td><td>{_status(o.last.status)}</td>"
                f"<td>{_esc(', '.join(o.causes)) or '-'}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No host warned or was critical.</p>")

    parts.append('<h2>New offenders in the latest audit</h2><ul id="new-offenders">')
    parts += [
        f"<li>{_esc(c.host)} {_status(c.latest.status)} {_esc(c.latest.tripped_text())}"
        + (
            " (first audit of this host)"
            if c.previous is None
            else f" (was {_status(c.previous.status)} at {_esc(c.previous.started_at)})"
        )
        + "</li>"
        for c in changes.new_offenders
    ] or ["<li>none</li>"]
    parts.append('</ul><h2>Recovered in the latest audit</h2><ul id="recovered">')
    parts += [
        f"<li>{_esc(c.host)} {_status('ok')} (was {_status(c.previous.status if c.previous else '?')})</li>"
        for c in changes.recovered
    ] or ["<li>none</li>"]
    parts.append("</ul>")

    if offenders:
        parts.append("<h2>Offenders over time</h2>")
        by_host: dict[str, list[HostRow]] = {}
        for r in rows:
            by_host.setdefault(r.host, []).append(r)
        for i, o in enumerate(offenders):
            host_rows = sorted(by_host.get(o.host, []), key=lambda r: (r.started_ts, r.sweep_id))
            parts.append(
                f'<figure class="chart offender-chart" id="offender-{i}" data-host="{_esc(o.host)}">'
                f"<figcaption>{_esc(o.host)}: reset rates per audit (circles: audits that tripped)"
                f"</figcaption>{_offender_chart(i, o.host, host_rows)}</figure>"
            )
    svg, shown, total = _heatmap(sweeps, rows, metric)
    parts.append(f"<h2>Fleet heat map: {_esc(metric)} per second</h2>")
    note = f" (the {shown} hosts with the highest peak of {total})" if shown < total else ""
    parts.append(
        f'<figure class="chart" id="heatmap"><figcaption>hosts × audits{_esc(note)}; grey: not measured'
        f"</figcaption>{svg}</figure>"
    )

    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>fleetrst audit report</title><style>{_STYLE}</style>"
        f"<script>{_SCRIPT}</script></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
