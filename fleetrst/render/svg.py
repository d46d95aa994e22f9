"""Charts as hand-built SVG: a time axis, bars that cover a span, dots, a heat map. No dependency.

Pure: numbers in, SVG text out. The charts draw only what was measured: an interval between two
audits is a bar over exactly its span (its height the average per second over it), a window sample is
a dot at its audit, and nothing joins them: no line implies values that were never read. Every mark
has a ``<title>`` (the browser shows it on hover). Text is escaped here.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Colours for the headline rates (a colour-blind-safe set: Okabe and Ito's).
COLOURS = {
    "resets_received": "#0072B2",
    "resets_sent": "#D55E00",
    "estab_resets": "#009E73",
    "listen_overflows": "#CC79A7",
    "listen_drops": "#E69F00",
}
TRIPPED = "#b00020"
UNKNOWN = "#d9d9d9"

# A sequential scale (light to dark) for the heat map, by a few stops.
_HEAT = ((255, 247, 236), (253, 212, 158), (252, 141, 89), (215, 48, 31), (127, 0, 0))


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_max(value: float) -> float:
    """A round upper bound for an axis: 1, 2, 2.5, 5 times a power of ten."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power:
            return step * power
    return 10 * power


def time_ticks(start: float, end: float, count: int = 6) -> list[tuple[float, str]]:
    """Round UTC times between ``start`` and ``end``, labelled the way the span calls for."""
    spanned = max(end - start, 1.0)
    steps = [1, 2, 5, 10, 15, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600]
    steps += [86400, 2 * 86400, 7 * 86400, 30 * 86400]
    step = next((s for s in steps if spanned / s <= count), steps[-1])
    first = float(math.ceil(start / step) * step)
    fmt = "%H:%M:%S" if step < 60 else "%H:%M" if spanned <= 86400 else "%m-%d %H:%M"
    fmt = "%Y-%m-%d" if spanned > 7 * 86400 else fmt
    ticks: list[tuple[float, str]] = []
    t = first
    while t <= end:
        ticks.append((t, datetime.fromtimestamp(t, UTC).strftime(fmt)))
        t += step
    return ticks


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass(frozen=True)
class Bar:
    """A span with an average rate: one interval between audits (or a rolled-up hour or day)."""

    start: float
    end: float
    value: float
    title: str
    tripped: bool = False


@dataclass(frozen=True)
class Dot:
    """A window sample at an audit."""

    at: float
    value: float
    title: str
    tripped: bool = False


@dataclass(frozen=True)
class Gap:
    """A span where nothing could be counted (a reboot, a reset counter), said as such."""

    start: float
    end: float
    title: str


@dataclass
class Series:
    metric: str
    bars: list[Bar] = field(default_factory=list)
    dots: list[Dot] = field(default_factory=list)


def timeline(
    chart_id: str,
    series: Sequence[Series],
    gaps: Sequence[Gap],
    start: float,
    end: float,
    *,
    width: int = 900,
    height: int = 260,
) -> str:
    """Bars over the spans they cover, dots for the windows on top, grey bands where nothing was
    counted; a time axis (UTC) and a rate axis from 0."""
    left, right, top, bottom = 56, 12, 30, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    end = max(end, start + 1.0)
    peak = max([b.value for s in series for b in s.bars] + [d.value for s in series for d in s.dots] + [0.0])
    y_max = nice_max(peak)

    def x(t: float) -> float:
        return left + (t - start) / (end - start) * plot_w

    def y(v: float) -> float:
        return top + plot_h - v / y_max * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" font-family="system-ui, sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fcfcfc" stroke="#ccc"/>',
    ]
    for i in range(5):  # horizontal grid and the rate axis
        v = y_max * i / 4
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e6e6e6"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#555">{_num(v)}</text>'
        )
    out.append(
        f'<text x="14" y="{top + plot_h / 2:.0f}" transform="rotate(-90 14 {top + plot_h / 2:.0f})" '
        'text-anchor="middle" fill="#555">per second</text>'
    )
    axis_y = top + plot_h
    for t, label in time_ticks(start, end):
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#888"/>'
            f'<text x="{x(t):.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#555">{esc(label)}</text>'
        )
    out.append(f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end" fill="#777">time (UTC)</text>')
    if gaps:
        out.append(f'<g id="{esc(chart_id)}-gaps">')
        for g in gaps:
            out.append(
                f'<rect x="{x(g.start):.1f}" y="{top}" width="{max(1.0, x(g.end) - x(g.start)):.1f}" '
                f'height="{plot_h}" fill="{UNKNOWN}" opacity="0.6"><title>{esc(g.title)}</title></rect>'
            )
        out.append("</g>")
    for s in series:  # the intervals: bars over their spans
        colour = COLOURS.get(s.metric, "#555")
        out.append(f'<g id="{esc(chart_id)}-{esc(s.metric)}" class="intervals">')
        for b in s.bars:
            x0, x1 = x(b.start), x(b.end)
            stroke = f' stroke="{TRIPPED}" stroke-width="1.5"' if b.tripped else ""
            out.append(
                f'<rect x="{x0:.1f}" y="{y(b.value):.1f}" width="{max(1.0, x1 - x0):.1f}" '
                f'height="{max(0.0, y(0) - y(b.value)):.1f}" fill="{colour}" fill-opacity="0.35"{stroke}>'
                f"<title>{esc(b.title)}</title></rect>"
            )
        out.append("</g>")
    for s in series:  # the windows: dots on top
        colour = COLOURS.get(s.metric, "#555")
        out.append(f'<g id="{esc(chart_id)}-{esc(s.metric)}-windows" class="windows">')
        for d in s.dots:
            ring = (
                f' stroke="{TRIPPED}" stroke-width="2.5"' if d.tripped else ' stroke="#fff" stroke-width="1"'
            )
            out.append(
                f'<circle cx="{x(d.at):.1f}" cy="{y(d.value):.1f}" r="4" fill="{colour}"{ring}>'
                f"<title>{esc(d.title)}</title></circle>"
            )
        out.append("</g>")
    legend_x = left
    for s in series:
        colour = COLOURS.get(s.metric, "#555")
        out.append(
            f'<rect x="{legend_x}" y="8" width="12" height="10" fill="{colour}" fill-opacity="0.35" '
            f'stroke="{colour}"/><circle cx="{legend_x + 20}" cy="13" r="4" fill="{colour}"/>'
            f'<text x="{legend_x + 28}" y="17" fill="#333">{esc(s.metric)}</text>'
        )
        legend_x += 40 + 7 * len(s.metric)
    out.append(
        f'<text x="{width - right}" y="17" text-anchor="end" fill="#555">bars: average between audits; '
        f"dots: the window; red: tripped; grey: not counted</text>"
    )
    out.append("</svg>")
    return "".join(out)


def heat_colour(value: float, vmax: float) -> str:
    """A colour for ``value`` on a log scale from 0 to ``vmax`` (light: quiet, dark: storm)."""
    if vmax <= 0:
        fraction = 0.0
    else:
        fraction = math.log1p(max(0.0, value)) / math.log1p(vmax)
    fraction = min(1.0, max(0.0, fraction)) * (len(_HEAT) - 1)
    i = min(int(fraction), len(_HEAT) - 2)
    f = fraction - i
    r, g, b = (round(a + (c - a) * f) for a, c in zip(_HEAT[i], _HEAT[i + 1], strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class Cell:
    value: float | None  # None: not counted
    title: str
    tripped: bool = False


def heatmap(
    chart_id: str,
    hosts: Sequence[str],
    rows: Sequence[Sequence[tuple[float, float, Cell]]],
    start: float,
    end: float,
    unit: str,
    *,
    width: int = 900,
) -> str:
    """Hosts × time: each host's spans ``(start, end, cell)`` drawn in order over its row, a cell's
    colour its value, grey when unknown, outlined red when it tripped; a colour key."""
    label_w = min(220, 14 + 7 * max((len(h) for h in hosts), default=4))
    top, bottom, key_w = 8, 40, 110
    row_h = 16
    plot_w = width - label_w - key_w - 10
    key_h = max(60, row_h * len(hosts))
    height = top + key_h + bottom
    end = max(end, start + 1.0)
    values = [c.value for row in rows for _, _, c in row if c.value is not None]
    vmax = max([*values, 0.0])

    def x(t: float) -> float:
        return label_w + (min(max(t, start), end) - start) / (end - start) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" font-family="system-ui, sans-serif" font-size="11">',
        f'<g id="{esc(chart_id)}">',
    ]
    for r, host in enumerate(hosts):
        y0 = top + r * row_h
        out.append(f'<text x="{label_w - 6}" y="{y0 + 12}" text-anchor="end" fill="#333">{esc(host)}</text>')
        for c0, c1, cell in rows[r]:
            fill = UNKNOWN if cell.value is None else heat_colour(cell.value, vmax)
            stroke = f' stroke="{TRIPPED}" stroke-width="1.5"' if cell.tripped else ""
            out.append(
                f'<rect x="{x(c0):.1f}" y="{y0 + 1}" width="{max(1.0, x(c1) - x(c0)):.1f}" '
                f'height="{row_h - 2}" fill="{fill}"{stroke}><title>{esc(cell.title)}</title></rect>'
            )
    out.append("</g>")
    axis_y = top + row_h * max(1, len(hosts))
    for t, label in time_ticks(start, end):
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#888"/>'
            f'<text x="{x(t):.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#555">{esc(label)}</text>'
        )
    out.append(
        f'<text x="{label_w + plot_w}" y="{axis_y + 32}" text-anchor="end" fill="#777">time (UTC)</text>'
    )
    key_x = width - key_w + 10
    steps = 20
    for i in range(steps):
        v = vmax * (1 - i / steps)
        out.append(
            f'<rect x="{key_x}" y="{top + i * key_h / steps:.1f}" width="12" '
            f'height="{key_h / steps + 0.5:.1f}" fill="{heat_colour(v, vmax)}"/>'
        )
    out.append(
        f'<text x="{key_x + 16}" y="{top + 10}" fill="#555">{_num(vmax)}</text>'
        f'<text x="{key_x + 16}" y="{top + key_h}" fill="#555">0</text>'
        f'<text x="{key_x + 16}" y="{top + key_h / 2 + 4:.0f}" fill="#555">{esc(unit)}</text>'
    )
    out.append("</svg>")
    return "".join(out)
