"""What every renderer shares: making host text safe to show, the fleet's order and totals.

Anything a host or an inventory can influence (names, error text, process names, log lines) passes
through :func:`clean` before it is put in a table, a report or CSV, so that a host cannot drive the
operator's terminal with escape sequences. JSON escapes control characters by itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..model import HEADLINE_RATES, STATUS_ORDER, TRIPPED, FleetReport, HostResult

# The rates every table shows, in order, with their column titles.
TABLE_RATES: tuple[tuple[str, str], ...] = (
    ("resets_received", "RST RECV/S"),
    ("resets_sent", "RST SENT/S"),
    ("estab_resets", "ESTAB RST/S"),
    ("listen_overflows", "LISTEN OVF/S"),
)
# The headline rates summed into the fleet totals, with their words.
_TOTAL_WORDS = {
    "resets_received": "resets received/s",
    "resets_sent": "resets sent/s",
    "estab_resets": "established resets/s",
    "listen_overflows": "listen overflows/s",
    "listen_drops": "listen drops/s",
}
TOTAL_RATES: tuple[tuple[str, str], ...] = tuple((m, _TOTAL_WORDS[m]) for m in HEADLINE_RATES)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Neutralise control characters and bidi overrides: shown as ``\\xNN`` escapes, never acted on."""
    text = text.replace("\r\n", "\n").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )


def worst_first(hosts: Iterable[HostResult]) -> list[HostResult]:
    """Worst status first, a trip since the last audit counting like one in the window; then the
    highest rate."""

    def key(h: HostResult) -> tuple[int, int, float, str]:
        peak = max((h.rates.per_second.get(m, 0.0) for m, _ in TABLE_RATES), default=0.0) if h.rates else 0.0
        rank = min(STATUS_ORDER.index(h.status), STATUS_ORDER.index(h.interval_level))
        rank = min(rank, STATUS_ORDER.index(h.namespace_level))  # a container that trips, too
        return (rank, STATUS_ORDER.index(h.status), -peak, h.host)

    return sorted(hosts, key=key)


def fleet_totals(report: FleetReport) -> dict[str, float]:
    totals = {metric: 0.0 for metric in HEADLINE_RATES}
    for h in report.hosts:
        if h.rates:
            for metric in totals:
                totals[metric] += h.rates.per_second.get(metric, 0.0)
    return totals


def summary_line(report: FleetReport) -> str:
    stopped = f" | INTERRUPTED by {report.interrupted_by}" if report.interrupted_by else ""
    counts = [f"{report.count(s)} {s}" for s in STATUS_ORDER if report.count(s)]
    between = sum(h.interval_level != "ok" for h in report.hosts)
    if between:
        counts.append(f"{between} tripped since the last audit")
    containers = [n.status for h in report.hosts for n in h.namespaces or () if n.status in TRIPPED]
    if containers:  # a container that trips on a host whose own row is OK
        counts.append(f"{len(containers)} container{'s' if len(containers) != 1 else ''} tripped")
    n = len(report.hosts)
    totals = fleet_totals(report)
    total_text = ", ".join(f"{totals[m]:.1f} {words}" for m, words in TOTAL_RATES)
    return (
        f"{n} host{'s' if n != 1 else ''}: {', '.join(counts) or 'none'} | fleet totals: {total_text}"
        f" | window {report.window_s:g}s, took {report.duration_s:.1f}s{stopped}"
    )


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
