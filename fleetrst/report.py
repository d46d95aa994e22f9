"""The fleet report and its renderers: table, JSON (a versioned schema), CSV. Pure: values in, text out.

Anything a host can influence (error text, later process names) passes through ``clean`` before it is
put in a table or CSV, so that a host cannot drive the operator's terminal with escape sequences.
JSON escapes control characters by itself.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from typing import Any

from .model import STATUS_ORDER, FleetReport, HostResult, Status, Trip

JSON_SCHEMA = "fleetrst.sweep"
JSON_VERSION = 1

# The rates every table shows, in order, with their column titles.
TABLE_RATES: tuple[tuple[str, str], ...] = (
    ("resets_received", "RST RECV/S"),
    ("resets_sent", "RST SENT/S"),
    ("estab_resets", "ESTAB RST/S"),
    ("listen_overflows", "LISTEN OVF/S"),
)
# The rates summed into the fleet totals, with their words.
TOTAL_RATES: tuple[tuple[str, str], ...] = (
    ("resets_received", "resets received/s"),
    ("resets_sent", "resets sent/s"),
    ("estab_resets", "established resets/s"),
    ("listen_overflows", "listen overflows/s"),
    ("listen_drops", "listen drops/s"),
)

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN, EXIT_USAGE = 0, 1, 2, 3, 64
EXIT_INTERRUPTED = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report it

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Neutralise control characters and bidi overrides: shown as ``\\xNN`` escapes, never acted on."""
    text = text.replace("\r\n", "\n").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )


def exit_code(report: FleetReport) -> int:
    """Nagios-style: 2 some critical, 1 some warning, 3 some host not measured (and none warned), 0 ok.

    A sweep stopped by SIGINT or SIGTERM exits 130 or 143, whatever the hosts that finished showed.
    """
    if report.interrupted_by:
        return EXIT_INTERRUPTED.get(report.interrupted_by, 130)
    statuses = {h.status for h in report.hosts}
    if "critical" in statuses:
        return EXIT_CRITICAL
    if "warning" in statuses:
        return EXIT_WARNING
    if statuses & {"unreachable", "error", "interrupted"}:
        return EXIT_UNKNOWN
    return EXIT_OK


def worst_first(hosts: Iterable[HostResult]) -> list[HostResult]:
    def key(h: HostResult) -> tuple[int, float, str]:
        peak = max((h.rates.per_second.get(m, 0.0) for m, _ in TABLE_RATES), default=0.0) if h.rates else 0.0
        return (STATUS_ORDER.index(h.status), -peak, h.host)

    return sorted(hosts, key=key)


def fleet_totals(report: FleetReport) -> dict[str, float]:
    totals = {metric: 0.0 for metric, _ in TOTAL_RATES}
    for h in report.hosts:
        if h.rates:
            for metric in totals:
                totals[metric] += h.rates.per_second.get(metric, 0.0)
    return totals


def _rate(h: HostResult, metric: str) -> str:
    if h.rates is None or metric not in h.rates.per_second:
        return "-"
    return f"{h.rates.per_second[metric]:.1f}"


def _tripped_text(tripped: Iterable[Trip]) -> str:
    return "; ".join(t.describe() for t in tripped)


def table_formats() -> tuple[str, ...]:
    from tabulate import tabulate_formats  # imported when a table is asked for: ~30 ms at start-up

    return tuple(sorted(tabulate_formats))


def _cause_text(h: HostResult) -> str:
    """The investigation's first cause, for the table (``closed_port``, or ``-`` when none found)."""
    if h.investigation is None:
        return ""
    causes = h.investigation.get("causes") or []
    if not causes:
        return "-"
    return clean(str(causes[0].get("cause", "?"))) + (f" +{len(causes) - 1}" if len(causes) > 1 else "")


def _top_text(h: HostResult) -> str:
    """The port and process behind the first cause: ``9400 aborting-server[1234]``."""
    top = h.investigation.get("top") if h.investigation is not None else None
    if not top:
        return ""
    text = str(top.get("port", ""))
    if top.get("command"):
        text += f" {clean(str(top['command']))}[{top.get('pid')}]"
    return text


def render_findings(report: FleetReport) -> str:
    """What the hosts' investigations show together, one line each (empty when nothing)."""
    return "".join(f"finding: {clean(str(f.get('summary', '')))}\n" for f in report.findings)


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
            _tripped_text(h.tripped),
            *([_cause_text(h), _top_text(h)] if investigated else []),
            clean(h.error or ""),
        ]
        for h in worst_first(report.hosts)
        if not (only_problems and h.status == "ok")
    ]
    align = ("left", "left", *("right" for _ in TABLE_RATES), *("left" for _ in [*extra_headers, 1, 2]))
    table = tabulate(rows, headers=headers, tablefmt=table_format, disable_numparse=True, colalign=align)
    return f"{table}\n{summary_line(report)}\n{render_findings(report)}"


def summary_line(report: FleetReport) -> str:
    stopped = f" | INTERRUPTED by {report.interrupted_by}" if report.interrupted_by else ""
    counts = [f"{report.count(s)} {s}" for s in STATUS_ORDER if report.count(s)]
    n = len(report.hosts)
    totals = fleet_totals(report)
    total_text = ", ".join(f"{totals[m]:.1f} {words}" for m, words in TOTAL_RATES)
    return (
        f"{n} host{'s' if n != 1 else ''}: {', '.join(counts) or 'none'} | fleet totals: {total_text}"
        f" | window {report.window_s:g}s, took {report.duration_s:.1f}s{stopped}"
    )


def host_json(h: HostResult) -> dict[str, Any]:
    return {
        "host": h.host,
        "address": h.address,
        "groups": list(h.groups),
        "status": h.status,
        "error": h.error,
        "error_kind": h.error_kind,
        "interval_s": _round(h.interval_s),
        "rates": {k: _round(v) for k, v in sorted(h.rates.per_second.items())} if h.rates else None,
        "gauges": dict(sorted(h.rates.gauges.items())) if h.rates else None,
        "baseline_rates": (
            {k: _round(v) for k, v in sorted(h.baseline.per_second.items())} if h.baseline else None
        ),
        "counters_wrapped": list(h.rates.wrapped) if h.rates else [],
        "counters_reset": list(h.rates.reset) if h.rates else [],
        "tripped": [
            {
                "metric": t.metric,
                "level": t.level,
                "value": _round(t.value),
                "limit": t.limit,
                "rule": t.rule,
                "baseline": _round(t.baseline),
            }
            for t in h.tripped
        ],
        "investigation": dict(h.investigation) if h.investigation is not None else None,
        "elapsed_s": _round(h.elapsed_s),
    }


def report_json(report: FleetReport) -> dict[str, Any]:
    statuses: tuple[Status, ...] = ("ok", "warning", "critical", "unreachable", "error", "interrupted")
    return {
        "schema": JSON_SCHEMA,
        "version": JSON_VERSION,
        "started_at": report.started_at,
        "duration_s": _round(report.duration_s),
        "window_s": report.window_s,
        "baseline_s": report.baseline_s,
        "pattern": report.pattern,
        "limit": report.limit,
        "inventories": list(report.inventories),
        "exit_code": exit_code(report),
        "interrupted_by": report.interrupted_by,
        "summary": {
            "hosts": len(report.hosts),
            **{s: report.count(s) for s in statuses},
            "totals": {k: _round(v) for k, v in fleet_totals(report).items()},
        },
        "findings": [dict(f) for f in report.findings],
        "hosts": [host_json(h) for h in worst_first(report.hosts)],
    }


def render_json(report: FleetReport) -> str:
    """Indented at the top, one line a host: readable, greppable, and fast (the C encoder runs only
    without ``indent``, and a fleet's hosts are most of the document)."""
    doc = report_json(report)
    hosts = doc.pop("hosts")
    head = json.dumps(doc, indent=2)
    body = ",\n".join("    " + json.dumps(h) for h in hosts)
    return head[: -len("\n}")] + ',\n  "hosts": [\n' + body + "\n  ]\n}\n"


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
                _tripped_text(h.tripped),
            ]
        )
    return out.getvalue()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
