"""The ``history`` and ``report`` commands' text: per-host trends, offenders, new offenders, recoveries.

Pure: trends and rows in, text out (the command reads the store and writes the text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..measure.trends import FleetChanges, HostTrend
from ..model import SweepRow
from ..units import format_duration
from .text import clean


def plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def when(iso: str) -> str:
    """An ISO 8601 UTC time as the tables show it: ``2026-11-21 06:36:16Z``."""
    return iso.replace("T", " ").replace("+00:00", "Z")


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
        }
        for t in trends
    ]


def render_trends(
    trends: Sequence[HostTrend], *, metric: str, pattern: str | None, audits: int, since_s: float, where: str
) -> str:
    """``fleetrst history``: one row a host, the metric's min, median, max and last over the period."""
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
            "LAST STATUS",
            "LAST AUDIT",
        ],
        disable_numparse=True,
        colalign=("left", "right", "right", "right", "right", "right", "right", "left", "left"),
    )
    return (
        f"{metric} per second, {len(trends)} {what.replace('hosts', plural(len(trends), 'host'))}, "
        f"{audits} {plural(audits, 'audit')} in the last {format_duration(since_s)} ({where})\n{table}\n"
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
                        o.worst.upper(),
                        f"{o.peak_metric} {o.peak:.1f}/s",
                        o.last.status.upper(),
                        clean(", ".join(o.causes)) or "-",
                    ]
                    for o in offenders
                ],
                headers=["HOST", "TRIPPED", "WORST", "PEAK", "LAST STATUS", "CAUSES"],
                disable_numparse=True,
            )
        )
    else:
        out.append("Top offenders: none (no host warned or was critical)")
    out.append("")
    latest = next((s for s in sweeps if s.id == changes.latest_sweep), sweeps[-1])
    out.append(f"New offenders in the latest audit ({when(latest.started_at)}):")
    out += [
        f"  {clean(c.host)}  {c.latest.status.upper()}  {c.latest.tripped_text()}"
        + (
            "  (first audit of this host)"
            if c.previous is None
            else f"  (was {c.previous.status.upper()} at {when(c.previous.started_at)})"
        )
        for c in changes.new_offenders
    ] or ["  none"]
    out.append("Recovered in the latest audit:")
    out += [
        f"  {clean(c.host)}  OK  (was {c.previous.status.upper() if c.previous else '?'}"
        f"{': ' + c.previous.tripped_text() if c.previous else ''})"
        for c in changes.recovered
    ] or ["  none"]
    return "\n".join(out) + "\n"
