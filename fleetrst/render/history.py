"""The ``history`` and ``report`` commands' text: per-host trends, offenders, new offenders, recoveries,
and the watch's recorded events (``history --events``).

Pure: trends and rows in, text out (the command reads the store and writes the text).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from ..measure.interval import span
from ..measure.trends import FleetChanges, HostTrend
from ..model import HostRow, SweepRow
from ..units import format_duration, seconds
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


# --- the watch's events (history --events) ----------------------------------------------------------------

# The kinds a watch records, in the order the counts name them.
EVENT_KINDS = ("raised", "cleared", "lost", "back", "investigated")


class HistoryEvent(Protocol):
    """What the renderer reads of a recorded watch event (:class:`fleetrst.history.store.RecordedEvent`,
    which this layer does not import). Its text came from the hosts: every string is cleaned here."""

    @property
    def ts(self) -> float: ...
    @property
    def event(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def groups(self) -> Sequence[str]: ...
    @property
    def metric(self) -> str | None: ...
    @property
    def level(self) -> str | None: ...
    @property
    def previous(self) -> str | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def limit(self) -> float | None: ...
    @property
    def baseline(self) -> float | None: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def error_kind(self) -> str | None: ...
    @property
    def down_s(self) -> float | None: ...
    @property
    def cause(self) -> str | None: ...
    @property
    def summary(self) -> str | None: ...
    @property
    def causes(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def triggers(self) -> Sequence[Mapping[str, Any]]: ...


def _number(value: object) -> float | None:
    """A number for JSON: rounded to 3 places; None for what is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(value, 3)


def _iso(ts: float, sep: str = "T", timespec: str = "milliseconds") -> str | None:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat(sep, timespec).replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def event_time(ts: float) -> str:
    """When, as the history's tables show it: ``2026-11-29 16:15:24Z`` (UTC)."""
    return _iso(ts, " ", "seconds") or f"{ts:g}"


def event_level(e: HistoryEvent) -> str:
    """The level the event left the alarm at: raised to warning or critical, cleared to ok; an
    investigation, its worst trigger's; ``-`` for a host lost or back."""
    if e.event == "cleared":
        return "ok"
    if e.event in ("raised", "investigated") and e.level:
        return clean(e.level)
    return "-"


def _alarm(e: HistoryEvent) -> str:
    """``resets_sent 312.5/s (limit 250)``, ``... (limit 50, spike rule, baseline 3.1/s)``."""
    text = clean(e.metric or "?") + (f" {e.value:.1f}/s" if e.value is not None else "")
    terms = [f"limit {e.limit:g}"] if e.limit is not None else []
    if e.rule and e.rule != "threshold":
        terms.append(f"{clean(e.rule)} rule")
    if e.baseline is not None:
        terms.append(f"baseline {e.baseline:.1f}/s")
    return text + (f" ({', '.join(terms)})" if terms else "")


def event_detail(e: HistoryEvent) -> str:
    """What happened, in one line: the alarm and its figures, the error, how long the host was down,
    or what the investigation found (its top cause and summary) and the alarms that started it."""
    if e.event == "raised":
        was = f"; was {clean(e.previous)}" if e.previous in ("warning", "critical") else ""
        return _alarm(e) + was
    if e.event == "cleared":
        return _alarm(e) + (f"; was {clean(e.previous)}" if e.previous else "")
    if e.event == "lost":
        kind = f" ({clean(e.error_kind)})" if e.error_kind else ""
        return clean(e.error or "no reason recorded") + kind
    if e.event == "back":
        return f"after {seconds(e.down_s)} down" if e.down_s is not None else "-"
    if e.event == "investigated":
        if e.error is not None:
            what = e.error
        elif e.cause:
            what = f"{e.cause}: {e.summary or ''}"
        else:
            what = e.summary or "no cause found"
        started = ", ".join(str(t.get("metric")) for t in e.triggers)
        return clean(what) + (f" (raised: {clean(started)})" if started else "")
    return clean(e.error or e.summary or "-")


def event_counts(events: Sequence[HistoryEvent]) -> str:
    """``2 raised, 2 cleared, 1 lost, 1 back, 1 investigated`` (the kinds there are, in that order)."""
    counts = Counter(e.event for e in events)
    kinds = [*EVENT_KINDS, *sorted(k for k in counts if k not in EVENT_KINDS)]
    return ", ".join(f"{counts[k]} {clean(k)}" for k in kinds if counts[k])


def events_json(events: Sequence[HistoryEvent]) -> list[dict[str, Any]]:
    """``history --events -o json``: each event with the keys of ``fleetrst watch``'s JSON lines (every
    key always there, null where it does not apply), ``causes`` (what the history keeps of an
    investigation: each cause's name, summary, port and next step) in place of ``investigation``."""
    out: list[dict[str, Any]] = []
    for e in events:
        investigated = e.event == "investigated"
        out.append(
            {
                "event": e.event,
                "time": _iso(e.ts),
                "host": e.host,
                "groups": list(e.groups),
                "metric": e.metric,
                "level": e.level,
                "previous": e.previous,
                "value": _number(e.value),
                "limit": _number(e.limit),
                "baseline": _number(e.baseline),
                "rule": e.rule,
                "error": e.error,
                "error_kind": e.error_kind,
                "down_s": _number(e.down_s),
                "cause": e.cause if investigated else None,
                "summary": e.summary if investigated else None,
                "triggers": [dict(t) for t in e.triggers] if investigated else None,
                "causes": [dict(c) for c in e.causes] if investigated and e.error is None else None,
            }
        )
    return out


def render_events(
    events: Sequence[HistoryEvent], *, last: int | None, pattern: str | None, since_s: float, where: str
) -> str:
    """``fleetrst history --events``: the period's events (``last``: only the latest so many of them
    shown), one line an event, oldest first: when (UTC), the host, the event, the level it left the
    alarm at, and what happened."""
    from tabulate import tabulate

    shown = events[-last:] if last is not None else events
    total, hosts = len(events), len({e.host for e in events})
    what = f"{plural(hosts, 'host')} matching {clean(repr(pattern))}" if pattern else plural(hosts, "host")
    latest = f"; the last {len(shown)}" if len(shown) < total else ""
    table = tabulate(
        [[event_time(e.ts), clean(e.host), clean(e.event), event_level(e), event_detail(e)] for e in shown],
        headers=["TIME", "HOST", "EVENT", "LEVEL", "WHAT"],
        disable_numparse=True,
    )
    return (
        f"{total} watch {plural(total, 'event')} of {hosts} {what} in the last {format_duration(since_s)} "
        f"({event_counts(events)}){latest}, oldest first ({clean(where)})\n{table}\n"
    )


def events_hint(events: Sequence[HistoryEvent], since_s: float, command: str) -> str:
    """Under the trends table: the watch's events of the same hosts and period, and the ``command``
    that shows them."""
    n = len(events)
    return (
        f"{n} watch {plural(n, 'event')} of these hosts in the last {format_duration(since_s)} "
        f"({event_counts(events)}): {clean(command)}\n"
    )
