"""The fleet table (any tabulate format) and CSV. Pure: the fleet report in, text out."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from ..model import FleetReport, HostResult, Trip
from .text import TABLE_RATES, clean, summary_line, worst_first


def _rate(h: HostResult, metric: str) -> str:
    if h.rates is None or metric not in h.rates.per_second:
        return "-"
    return f"{h.rates.per_second[metric]:.1f}"


def tripped_text(tripped: Iterable[Trip]) -> str:
    return "; ".join(t.describe() for t in tripped)


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
    headers = ["HOST", "STATUS", *(title for _, title in TABLE_RATES), "TRIPPED", *extra_headers, "ERROR"]
    rows = [
        [
            clean(h.host),
            h.status.upper(),
            *(_rate(h, metric) for metric, _ in TABLE_RATES),
            tripped_text(h.tripped),
            *([_cause_text(h), _top_text(h)] if investigated else []),
            clean(h.error or ""),
        ]
        for h in worst_first(report.hosts)
        if not (only_problems and h.status == "ok")
    ]
    align = ("left", "left", *("right" for _ in TABLE_RATES), *("left" for _ in [*extra_headers, 1, 2]))
    table = tabulate(rows, headers=headers, tablefmt=table_format, disable_numparse=True, colalign=align)
    return f"{table}\n{summary_line(report)}\n{render_findings(report)}"


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
            ]
        )
    return out.getvalue()
