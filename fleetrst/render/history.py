"""The ``history`` and ``report`` commands' text: per-host trends, offenders, new offenders, recoveries.

Pure: trends and rows in, text out (the command reads the store and writes the text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..measure.interval import span
from ..measure.trends import FleetChanges, HostTrend
from ..model import HostRow, SweepRow
from ..units import format_duration
from .text import clean


def plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def when(iso: str) -> str:
    """An ISO 8601 UTC time as the tables show it: ``2026-11-21 06:36:16Z``."""
    return iso.replace("T", " ").replace("+00:00", "Z")


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def trends_json(trends: Sequence[HostTrend], metric: str) -> list[dict[str, Any]]:
    return [
        {
            "host": t.host,
            "metric": metric,
            "audits": t.audits,
            "measured": t.measured,
            "tripped": t.tripped,
            "min": t.minimum,
            "median": t.median,
            "max": t.maximum,
            "last": t.last,
            "last_status": t.last_status,
            "last_audit": t.last_seen,
            "between_audits": {
                "counted": t.counted,
                "covered_s": round(t.covered_s, 3),
                "average": None if t.average is None else round(t.average, 3),
                "peak_average": None if t.peak_average is None else round(t.peak_average, 3),
                "tripped": t.interval_tripped,
                "quiet_tripped": t.quiet_tripped,
            },
        }
        for t in trends
    ]


def render_trends(
    trends: Sequence[HostTrend], *, metric: str, pattern: str | None, audits: int, since_s: float, where: str
) -> str:
    """``fleetrst history``: one row a host: the metric's min, median, max and last window rate over
    the period, then what was counted between audits (the total, its average over the time the
    intervals cover, the highest one-interval average) and how many intervals tripped."""
    from tabulate import tabulate

    what = f"hosts matching {pattern!r}" if pattern else "hosts"
    table = tabulate(
        [
            [
                clean(t.host),
                t.audits,
                f"{t.tripped}",
                _rate(t.minimum),
                _rate(t.median),
                _rate(t.maximum),
                _rate(t.last),
                _count(t.counted),
                _rate(t.average),
                _rate(t.peak_average),
                f"{t.interval_tripped}",
                t.last_status.upper(),
                when(t.last_seen),
            ]
            for t in trends
        ],
        headers=[
            "HOST",
            "AUDITS",
            "TRIPPED",
            "MIN/S",
            "MEDIAN/S",
            "MAX/S",
            "LAST/S",
            "COUNTED",
            "AVG/S",
            "PEAK AVG/S",
            "TRIPPED BETWEEN",
            "LAST STATUS",
            "LAST AUDIT",
        ],
        disable_numparse=True,
        colalign=(
            "left",
            *("right",) * 10,
            "left",
            "left",
        ),
    )
    quiet = ", ".join(clean(t.host) for t in trends if t.tripped == 0 and t.quiet_tripped)
    note = f"quiet at every audit, yet over an interval threshold in between: {quiet}\n" if quiet else ""
    return (
        f"{metric} per second in the window (MIN..LAST) and counted between audits (COUNTED, AVG/S over the "
        f"time covered, PEAK AVG/S of one interval), {len(trends)} "
        f"{what.replace('hosts', plural(len(trends), 'host'))}, {audits} {plural(audits, 'audit')} in the "
        f"last {format_duration(since_s)} ({where})\n{table}\n{note}"
    )


def render_changes(
    sweeps: Sequence[SweepRow], changes: FleetChanges, *, top: int, since_s: float, where: str
) -> str:
    """``fleetrst report``: the period's audits, top offenders, new offenders and recoveries."""
    from tabulate import tabulate

    period = format_duration(since_s)
    out: list[str] = [
        f"{len(sweeps)} {plural(len(sweeps), 'audit')} of {changes.hosts} {plural(changes.hosts, 'host')} "
        f"in the last {period}, {when(sweeps[0].started_at)} to {when(sweeps[-1].started_at)} ({where})",
        "",
    ]
    offenders = changes.offenders[:top]
    if offenders:
        out.append(f"Top offenders ({len(offenders)} of {len(changes.offenders)}):")
        out.append(
            tabulate(
                [
                    [
                        clean(o.host),
                        f"{o.tripped}/{o.audits}",
                        f"{o.interval_tripped}/{o.audits}",
                        o.worst.upper(),
                        f"{o.peak_metric} {o.peak:.1f}/s" + (" avg" if o.peak_between else ""),
                        counted_text(o.counted, o.covered_s),
                        o.last.status.upper() if o.last else "-",
                        clean(", ".join(o.causes)) or "-",
                    ]
                    for o in offenders
                ],
                headers=[
                    "HOST",
                    "TRIPPED",
                    "BETWEEN",
                    "WORST",
                    "PEAK",
                    "RESETS COUNTED",
                    "LAST STATUS",
                    "CAUSES",
                ],
                disable_numparse=True,
            )
        )
    else:
        out.append("Top offenders: none (no host warned or was critical, in a window or between audits)")
    out.append("")
    quiet = changes.quiet_between
    out.append(f"Quiet at every audit, yet resetting in between ({len(quiet)}):")
    out += [
        f"  {clean(o.host)}  {o.peak_metric} {o.peak:.1f}/s on average at worst, over an interval "
        f"threshold in {o.interval_tripped} of {o.audits} audits; {counted_text(o.counted, o.covered_s)}; "
        "the cause could not be seen live: run `fleetrst watch` on it, or audit more often"
        for o in quiet
    ] or ["  none"]
    out.append("")
    latest = next((s for s in sweeps if s.id == changes.latest_sweep), sweeps[-1])
    out.append(f"New offenders in the latest audit ({when(latest.started_at)}):")
    out += [
        f"  {clean(c.host)}  {c.latest.status.upper()}  {row_trouble(c.latest)}"
        + (
            "  (first audit of this host)"
            if c.previous is None
            else f"  (was {c.previous.status.upper()} at {when(c.previous.started_at)})"
        )
        for c in changes.new_offenders
    ] or ["  none"]
    out.append("Recovered in the latest audit:")
    out += [f"  {clean(c.host)}  OK  (was {was_text(c.previous)})" for c in changes.recovered] or ["  none"]
    return "\n".join(out) + "\n"


def row_trouble(row: HostRow) -> str:
    """What a recorded audit of a host tripped: in its window, then since its previous audit."""
    parts = [row.tripped_text()] if row.tripped else []
    if row.since_tripped:
        parts.append(f"between audits: {row.since_tripped_text()}")
    return "; ".join(parts)


def was_text(row: HostRow | None) -> str:
    """A recovered host's previous audit: ``WARNING: resets_sent 60.0/s``, or ``OK in its window;
    between audits: resets_sent 19.5/s on average``."""
    if row is None:
        return "?"
    if not row.tripped and row.since_tripped:
        return f"{row.status.upper()} in its window; between audits: {row.since_tripped_text()}"
    trouble = row_trouble(row)
    return row.status.upper() + (f": {trouble}" if trouble else "")


def counted_text(counted: Mapping[str, int], covered_s: float) -> str:
    """``24600 recv, 24610 sent in 2.0 h`` (``-`` when no interval was usable)."""
    if not covered_s:
        return "-"
    return (
        f"{counted.get('resets_received', 0)} recv, {counted.get('resets_sent', 0)} sent in {span(covered_s)}"
    )
