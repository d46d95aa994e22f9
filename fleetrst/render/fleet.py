"""The fleet table (any tabulate format) and CSV. Pure: the fleet report in, text out."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from ..measure.interval import span
from ..model import FleetReport, HostResult, SinceLast, SinceLastMissing, Trip
from .text import TABLE_RATES, clean, summary_line, worst_first

# What a SINCE LAST cell says when there is no interval.
MISSING_WORDS = {
    "first_audit": "first audit",
    "rebooted": "rebooted",
    "namespace_changed": "new namespace",
    "counters_reset": "counters reset",
    "uptime": "clock went back",
    "not_measured": "",
    "config": "bad thresholds",
}


def _rate(h: HostResult, metric: str) -> str:
    if h.rates is None or metric not in h.rates.per_second:
        return "-"
    return f"{h.rates.per_second[metric]:.1f}"


def tripped_text(tripped: Iterable[Trip]) -> str:
    return "; ".join(t.describe() for t in tripped)


def interval_trip_text(t: Trip, since: SinceLast) -> str:
    level = " (critical)" if t.level == "critical" else ""
    return f"{t.metric} {t.value:.1f}/s on average over {span(since.interval_s)} > {t.limit:g}{level}"


def host_tripped_text(h: HostResult) -> str:
    """The window's trips, then those of the averages since the last audit (``between audits:``)."""
    parts = [tripped_text(h.tripped)] if h.tripped else []
    since = h.interval
    if since is not None and since.tripped:
        between = "; ".join(interval_trip_text(t, since) for t in since.tripped)
        parts.append("between audits: " + between)
    return "; ".join(parts)


def since_last_text(h: HostResult) -> str:
    """The SINCE LAST cell: the resets counted since the host's previous audit, or why none."""
    s = h.since_last
    if isinstance(s, SinceLast):
        received, sent = s.counts.get("resets_received"), s.counts.get("resets_sent")
        counted = ", ".join(
            f"{n} {word}" for n, word in ((received, "recv"), (sent, "sent")) if n is not None
        )
        return f"{span(s.interval_s)}: {counted or 'counted'}"
    if isinstance(s, SinceLastMissing):
        words = MISSING_WORDS.get(s.reason, s.reason)
        return f"- ({words})" if words else ""
    return ""


def interval_notes(report: FleetReport) -> str:
    """One line per host that tripped since its last audit while its window was quiet."""
    return "".join(
        f"{clean(h.host)}: {clean(h.interval.note)}\n"
        for h in worst_first(report.hosts)
        if h.interval is not None and h.interval.note
    )


def table_formats() -> tuple[str, ...]:
    from tabulate import tabulate_formats  # imported when a table is asked for: ~30 ms at start-up

    return tuple(sorted(tabulate_formats))


def _cause_text(h: HostResult) -> str:
    """The investigation's first cause, for the table (``closed_port``, or ``-`` when none found)."""
    if h.investigation is None:
        return ""
    causes = h.investigation.causes
    if not causes:
        return "-"
    return clean(causes[0].cause) + (f" +{len(causes) - 1}" if len(causes) > 1 else "")


def _top_text(h: HostResult) -> str:
    """What the first cause points at: a port and its process (``9400 aborting-server[1234]``), or the
    peer that resets this host (``10.233.0.14:5432``); empty when it names nothing."""
    top = h.investigation.top if h.investigation is not None else None
    if top is None:
        return ""
    words = []
    if top.port is not None:
        words.append(str(top.port))
    elif top.peer:
        words.append(clean(top.peer))
    if top.command:
        words.append(f"{clean(top.command)}[{top.pid}]")
    return " ".join(words)


# A host's namespaces (containers) all get a row when it has at most this many; beyond, only those
# that are not OK, and one row that counts the rest.
NAMESPACE_ROWS = 10
_NS_ORDER = {"critical": 0, "warning": 1, "error": 2, "ok": 3}


def namespace_rows(h: HostResult, headers: list[str], *, only_problems: bool = False) -> list[list[str]]:
    """The rows ``host › container`` under a host's row, worst first (the order they come in)."""
    namespaces = list(h.namespaces or ())
    few = len(namespaces) <= NAMESPACE_ROWS and not only_problems
    shown = [n for n in namespaces if few or n.status in ("warning", "critical")]
    if not only_problems:
        shown += [n for n in namespaces if n.status == "error" and n not in shown]
    shown.sort(key=lambda n: _NS_ORDER[n.status])
    rows = []
    for n in shown:
        row = [""] * len(headers)
        row[0] = f"{clean(h.host)} › {clean(n.name)}"
        row[1] = n.status.upper()
        for i, (metric, _) in enumerate(TABLE_RATES, start=2):
            row[i] = f"{n.rates.per_second[metric]:.1f}" if n.rates and metric in n.rates.per_second else "-"
        row[headers.index("TRIPPED")] = tripped_text(n.tripped)
        row[-1] = clean(n.error or "")
        rows.append(row)
    rest = len(namespaces) - len(shown)
    if rest and not only_problems:
        row = [""] * len(headers)
        row[0] = f"{clean(h.host)} › {rest} more namespace{'s' if rest != 1 else ''}"
        row[1] = "OK"
        rows.append(row)
    return rows


def with_namespace_rows(
    rows: list[list[str]], report: FleetReport, headers: list[str], *, only_problems: bool = False
) -> list[list[str]]:
    """The table's rows with each host's namespace rows under it."""
    by_name = {clean(h.host): h for h in report.hosts if h.namespaces}
    if not by_name:
        return rows
    out: list[list[str]] = []
    for row in rows:
        out.append(row)
        if (h := by_name.get(row[0])) is not None:
            out += namespace_rows(h, headers, only_problems=only_problems)
    return out


def namespace_notes(report: FleetReport) -> str:
    """What could not be seen of the hosts' namespaces, one line per reason, naming the hosts."""
    hosts_by_note: dict[str, list[str]] = {}
    for h in worst_first(report.hosts):
        for note in h.namespaces_unseen:
            hosts_by_note.setdefault(note, []).append(clean(h.host))
    lines = []
    for note, hosts in hosts_by_note.items():
        shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
        lines.append(f"{shown}: {clean(note)}\n")
    return "".join(lines)


def render_findings(report: FleetReport) -> str:
    """What the hosts' investigations show together, one line each (empty when nothing)."""
    return "".join(f"finding: {clean(f.summary)}\n" for f in report.findings)


def render_table(report: FleetReport, table_format: str = "simple", *, only_problems: bool = False) -> str:
    """The fleet table, worst first, and the summary line; ``only_problems`` leaves out OK hosts.

    CAUSE and TOP PORT/PROCESS appear when some host was investigated.
    """
    from tabulate import tabulate

    investigated = any(h.investigation is not None for h in report.hosts)
    extra_headers = ["CAUSE", "TOP PORT/PROCESS"] if investigated else []
    # SINCE LAST: the resets counted since each host's previous audit, once some host has one.
    between = any(h.interval is not None for h in report.hosts)
    since_headers = ["SINCE LAST"] if between else []
    headers = [
        "HOST",
        "STATUS",
        *(title for _, title in TABLE_RATES),
        *since_headers,
        "TRIPPED",
        *extra_headers,
        "ERROR",
    ]
    rows = [
        [
            clean(h.host),
            h.status.upper(),
            *(_rate(h, metric) for metric, _ in TABLE_RATES),
            *([since_last_text(h)] if between else []),
            host_tripped_text(h),
            *([_cause_text(h), _top_text(h)] if investigated else []),
            clean(h.error or ""),
        ]
        for h in worst_first(report.hosts)
        if not (only_problems and h.all_clear)
    ]
    rows = with_namespace_rows(rows, report, headers, only_problems=only_problems)
    align = (
        "left",
        "left",
        *("right" for _ in TABLE_RATES),
        *("left" for _ in [*since_headers, *extra_headers, 1, 2]),
    )
    table = tabulate(rows, headers=headers, tablefmt=table_format, disable_numparse=True, colalign=align)
    notes = f"{interval_notes(report)}{namespace_notes(report)}{render_findings(report)}"
    return f"{table}\n{summary_line(report)}\n{notes}"


CSV_COLUMNS = (
    "host",
    "address",
    "groups",
    "status",
    "error_kind",
    "error",
    "interval_s",
    "resets_received",
    "resets_sent",
    "estab_resets",
    "listen_overflows",
    "listen_drops",
    "tripped",
    # since the host's previous audit: its start, the interval, the named counts, what tripped, or why
    # there is no interval
    "since_last_from",
    "since_last_s",
    "since_last_resets_received",
    "since_last_resets_sent",
    "since_last_estab_resets",
    "since_last_listen_overflows",
    "since_last_listen_drops",
    "since_last_tripped",
    "since_last_missing",
)


def render_csv(report: FleetReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for h in worst_first(report.hosts):
        rates = h.rates.per_second if h.rates else {}
        writer.writerow(
            [
                clean(h.host),
                clean(h.address),
                ";".join(h.groups),
                h.status,
                h.error_kind or "",
                clean(h.error or ""),
                "" if h.interval_s is None else f"{h.interval_s:.3f}",
                *("" if m not in rates else f"{rates[m]:.3f}" for m in CSV_COLUMNS[7:12]),
                tripped_text(h.tripped),
                *_since_last_cells(h),
            ]
        )
    return out.getvalue()


def _since_last_cells(h: HostResult) -> list[str]:
    s = h.since_last
    if isinstance(s, SinceLast):
        return [
            s.from_at,
            f"{s.interval_s:.3f}",
            *("" if m not in s.counts else str(s.counts[m]) for m in CSV_COLUMNS[7:12]),
            "; ".join(interval_trip_text(t, s) for t in s.tripped),
            "",
        ]
    reason = s.reason if isinstance(s, SinceLastMissing) else "no_history"
    return ["", "", "", "", "", "", "", "", reason]
