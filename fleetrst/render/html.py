"""The HTML audit report: one self-contained file, its charts hand-built SVG (``render.svg``).

Nothing is fetched when it opens: the charts are inline SVG, the style is inline, and a
Content-Security-Policy forbids loading anything else. A small inline script (allowed by its hash,
nothing else is) notes on each chart the size the browser drew it at and how many marks it holds, so
that a test can tell a chart was laid out, not only present.

What the charts show is what was measured, drawn as what it is: each interval between two audits (what
the kernel counted since the host's previous audit) is a bar over exactly that span, its height the
average per second; each audit's window is a dot on top; spans where nothing could be counted (a
reboot, counters that went backwards) are grey bands that say why; nothing joins two dots, because
nothing was read between them. Audits rolled up by ``--keep`` are bars over their hour or day.

Host names and error text come from inventories and hosts: they are HTML-escaped here (``svg.esc``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

from ..measure.interval import span
from ..measure.trends import FleetChanges, Offender, count_name
from ..model import HEADLINE_RATES, HostRow, RollupRow, SweepRow
from .svg import Bar, Cell, Dot, Gap, Series, esc, heatmap, timeline, when

CHART_RATES = HEADLINE_RATES
HEATMAP_MAX_HOSTS = 50
HEATMAP_MAX_CELLS = 300  # per host row: narrower intervals are merged (counts and seconds summed)
_GAP_REASONS = {
    "rebooted": "rebooted: the counters restarted",
    "counters_reset": "counters went backwards (reset, or the namespace was recreated)",
    "namespace_changed": "another network namespace",
    "uptime": "the host's clock went back",
}

_SCRIPT = """
document.addEventListener("DOMContentLoaded", function () {
  var drawn = 0;
  document.querySelectorAll("figure.chart").forEach(function (fig) {
    var svg = fig.querySelector("svg");
    if (!svg) { return; }
    var box = svg.getBoundingClientRect();
    fig.setAttribute("data-drawn", Math.round(box.width) + "x" + Math.round(box.height));
    fig.setAttribute("data-marks", String(svg.querySelectorAll("rect, circle").length));
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


def _status(status: str) -> str:
    return f'<span class="{esc(status)}">{esc(status.upper())}</span>'


def _counted(o: Offender) -> str:
    if not o.covered_s:
        return "-"
    received, sent = o.counted.get("resets_received", 0), o.counted.get("resets_sent", 0)
    return f"{received} recv, {sent} sent in {span(o.covered_s)}"


def _row_trouble(row: HostRow) -> str:
    parts = [row.tripped_text()] if row.tripped else []
    if row.since_tripped:
        parts.append("between audits: " + row.since_tripped_text())
    return "; ".join(parts)


def _trips(trips: Sequence[object], metric: str) -> bool:
    return any(isinstance(t, dict) and t.get("metric") == metric for t in trips)


def _offender_series(rows: Sequence[HostRow], rollups: Sequence[RollupRow]) -> tuple[list[Series], list[Gap]]:
    """One host's intervals (bars) and windows (dots) per headline rate, and the spans not counted."""
    series: list[Series] = []
    for metric in CHART_RATES:
        s = Series(metric)
        for r in rows:
            window = r.rate(metric)
            if window is not None:
                s.dots.append(
                    Dot(
                        r.started_ts,
                        window,
                        f"{metric} {window:.1f}/s in the window of the audit at {when(r.started_ts)}",
                        _trips(r.tripped, metric),
                    )
                )
            average = r.since_rate(metric)
            if average is not None and r.since_s:
                begin = r.since_from_ts if r.since_from_ts is not None else r.started_ts - r.since_s
                s.bars.append(
                    Bar(
                        begin,
                        r.started_ts,
                        average,
                        f"{metric} {average:.1f}/s on average, {r.since_count(metric)} counted, "
                        f"{when(begin)} to {when(r.started_ts)}",
                        _trips(r.since_tripped, metric),
                    )
                )
        for ru in rollups:
            if ru.interval_s:
                count = int(ru.counts.get(metric, 0))
                s.bars.append(
                    Bar(
                        ru.start_ts,
                        ru.start_ts + ru.span_s,
                        count / ru.interval_s,
                        f"{metric} {count / ru.interval_s:.1f}/s on average, {count} counted, the "
                        f"{ru.period} from {when(ru.start_ts)} ({ru.audits} audits rolled up)",
                        ru.interval_tripped > 0 and metric in ru.interval_peaks,
                    )
                )
        if any(b.value for b in s.bars) or any(d.value for d in s.dots):
            series.append(s)
    if not series:
        series.append(Series(CHART_RATES[1]))
    gaps = [
        Gap(
            prev.started_ts,
            r.started_ts,
            f"not counted, {when(prev.started_ts)} to {when(r.started_ts)}: {_GAP_REASONS[r.since_reason]}",
        )
        for prev, r in itertools.pairwise(rows)
        if r.since_reason in _GAP_REASONS
    ]
    return series, gaps


def _heat_spans(
    rows: Sequence[HostRow], rollups: Sequence[RollupRow], metric: str, min_width: float
) -> list[tuple[float, float, int, float, bool]]:
    """A host's counted spans for ``metric`` as (start, end, count, seconds, tripped), oldest first,
    neighbours narrower than ``min_width`` merged (counts and seconds summed: the average stays exact)."""
    name = count_name(metric)
    spans: list[tuple[float, float, int, float, bool]] = []
    if name is None:
        return spans
    for ru in rollups:
        if ru.interval_s:
            spans.append(
                (
                    ru.start_ts,
                    ru.start_ts + ru.span_s,
                    int(ru.counts.get(name, 0)),
                    ru.interval_s,
                    ru.interval_tripped > 0,
                )
            )
    for r in rows:
        count = r.since_count(name)
        if count is not None and r.since_s:
            begin = r.since_from_ts if r.since_from_ts is not None else r.started_ts - r.since_s
            spans.append((begin, r.started_ts, count, r.since_s, bool(r.since_tripped)))
    spans.sort()
    merged: list[tuple[float, float, int, float, bool]] = []
    for sp in spans:
        if merged:
            a0, a1, ac, asec, at = merged[-1]
            if abs(sp[0] - a1) < 1.0 and (a1 - a0) < min_width:
                merged[-1] = (a0, sp[1], ac + sp[2], asec + sp[3], at or sp[4])
                continue
        merged.append(sp)
    return merged


def _heatmap_svg(
    rows: Sequence[HostRow], rollups: Sequence[RollupRow], metric: str, start: float, end: float
) -> tuple[str, int, int]:
    """Hosts × time, each host's intervals coloured by their average of ``metric``; grey where nothing
    was counted. The hosts with the highest interval average first, at most HEATMAP_MAX_HOSTS."""
    by_host: dict[str, list[HostRow]] = {}
    for r in rows:
        by_host.setdefault(r.host, []).append(r)
    rolled: dict[str, list[RollupRow]] = {}
    for ru in rollups:
        rolled.setdefault(ru.host, []).append(ru)
    min_width = (end - start) / HEATMAP_MAX_CELLS
    spans = {
        h: _heat_spans(
            sorted(by_host.get(h, []), key=lambda r: r.started_ts), rolled.get(h, []), metric, min_width
        )
        for h in set(by_host) | set(rolled)
    }

    def rank(h: str) -> tuple[float, str]:
        return (-max((c / s for _, _, c, s, _ in spans[h] if s), default=0.0), h)

    hosts = sorted(spans, key=rank)[:HEATMAP_MAX_HOSTS]
    cells: list[list[tuple[float, float, Cell]]] = []
    for h in hosts:
        row = [(start, end, Cell(None, f"{h}: nothing counted"))]
        for s0, s1, count, seconds, tripped in spans[h]:
            average = count / seconds if seconds else 0.0
            title = f"{h}: {metric} {average:.1f}/s on average, {count} counted, {when(s0)} to {when(s1)}"
            row.append((s0, s1, Cell(average, title, tripped)))
        cells.append(row)
    return heatmap("fleet-heatmap", hosts, cells, start, end, f"{metric}/s"), len(hosts), len(spans)


def render_html(
    sweeps: Sequence[SweepRow],
    rows: Sequence[HostRow],
    changes: FleetChanges,
    metric: str,
    top: int,
    *,
    title_period: str,
    rollups: Sequence[RollupRow] = (),
) -> str:
    """The report for the audits ``sweeps`` and their host ``rows`` (the period), the rolled-up hours
    and days of it, and the ``changes``."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    parts: list[str] = []
    first, last = sweeps[0].started_at, sweeps[-1].started_at
    parts.append(f"<h1>fleetrst audit report — last {esc(title_period)}</h1>")
    rolled = f" (and {len(rollups)} rolled-up host-hours or days)" if rollups else ""
    parts.append(
        f'<p class="muted">{len(sweeps)} audits of {changes.hosts} hosts, {esc(first)} to {esc(last)}'
        f"{rolled}; generated {generated}</p>"
    )
    offenders = changes.offenders[:top]
    parts.append(f"<h2>Top offenders ({len(offenders)} of {len(changes.offenders)})</h2>")
    if offenders:
        parts.append(
            '<table id="offenders"><tr><th>host</th><th>tripped</th><th>between audits</th><th>worst</th>'
            "<th>peak</th><th>resets counted</th><th>last status</th><th>causes</th></tr>"
        )
        for o in offenders:
            peak = f"{esc(o.peak_metric)} {o.peak:.1f}/s" + (" on average" if o.peak_between else "")
            parts.append(
                f"<tr><td>{esc(o.host)}</td><td>{o.tripped}/{o.audits}</td><td>{o.interval_tripped}/{o.audits}</td>"
                f"<td>{_status(o.worst)}</td><td>{peak}</td><td>{esc(_counted(o))}</td>"
                f"<td>{_status(o.last.status) if o.last else '-'}</td>"
                f"<td>{esc(', '.join(o.causes)) or '-'}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No host warned or was critical, in a window or between audits.</p>")

    quiet = changes.quiet_between
    parts.append(
        f'<h2>Quiet at every audit, yet resetting in between ({len(quiet)})</h2><ul id="quiet-between">'
    )
    parts += [
        f"<li>{esc(o.host)}: {esc(o.peak_metric)} {o.peak:.1f}/s on average at worst, over an interval "
        f"threshold in {o.interval_tripped} of {o.audits} audits; {esc(_counted(o))}. The cause could not "
        "be seen live: run <code>fleetrst watch</code> on it, or audit more often.</li>"
        for o in quiet
    ] or ["<li>none</li>"]
    parts.append("</ul>")

    parts.append('<h2>New offenders in the latest audit</h2><ul id="new-offenders">')
    parts += [
        f"<li>{esc(c.host)} {_status(c.latest.status)} {esc(_row_trouble(c.latest))}"
        + (
            " (first audit of this host)"
            if c.previous is None
            else f" (was {_status(c.previous.status)} at {esc(c.previous.started_at)})"
        )
        + "</li>"
        for c in changes.new_offenders
    ] or ["<li>none</li>"]
    parts.append('</ul><h2>Recovered in the latest audit</h2><ul id="recovered">')
    parts += [
        f"<li>{esc(c.host)} {_status('ok')} (was {_status(c.previous.status if c.previous else '?')})</li>"
        for c in changes.recovered
    ] or ["<li>none</li>"]
    parts.append("</ul>")

    by_host: dict[str, list[HostRow]] = {}
    for r in rows:
        by_host.setdefault(r.host, []).append(r)
    rolled_by_host: dict[str, list[RollupRow]] = {}
    for ru in rollups:
        rolled_by_host.setdefault(ru.host, []).append(ru)
    starts = [s.started_ts for s in sweeps] + [ru.start_ts for ru in rollups]
    starts += [r.since_from_ts for r in rows if r.since_from_ts is not None]
    start, end = (
        min(starts),
        max([s.started_ts for s in sweeps] + [ru.start_ts + ru.span_s for ru in rollups]),
    )

    if offenders:
        parts.append("<h2>Offenders over time</h2>")
        for i, o in enumerate(offenders):
            host_rows = sorted(by_host.get(o.host, []), key=lambda r: (r.started_ts, r.sweep_id))
            series, gaps = _offender_series(host_rows, rolled_by_host.get(o.host, []))
            parts.append(
                f'<figure class="chart offender-chart" id="offender-{i}" data-host="{esc(o.host)}">'
                f"<figcaption>{esc(o.host)}: resets per second, each interval between audits as a bar over "
                f"its span (its average), each audit's window as a dot</figcaption>"
                f"{timeline(f'offender-{i}', series, gaps, start, end)}</figure>"
            )
    svg, shown, total = _heatmap_svg(rows, rollups, metric, start, end)
    parts.append(f"<h2>Fleet heat map: {esc(metric)} per second between audits</h2>")
    note = f" (the {shown} hosts with the highest average of {total})" if shown < total else ""
    parts.append(
        f'<figure class="chart" id="heatmap"><figcaption>hosts × time{esc(note)}: each interval between two '
        "audits coloured by its average; grey: not counted (before a host's first audit, a reboot, not "
        f"measured); red outline: over its interval threshold</figcaption>{svg}</figure>"
    )

    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>fleetrst audit report</title><style>{_STYLE}</style>"
        f"<script>{_SCRIPT}</script></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
