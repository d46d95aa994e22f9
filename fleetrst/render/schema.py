"""The versioned JSON documents: ``-o json`` (schema ``fleetrst.sweep``) and ``-o jsonl`` (schema
``fleetrst.host``, one host a line). Pure: the fleet report in, text out. The README documents both.
"""

from __future__ import annotations

import json
from typing import Any

from ..model import STATUSES, FleetReport, HostResult
from .text import fleet_totals, rounded, worst_first

JSON_SCHEMA = "fleetrst.sweep"
JSON_VERSION = 1
JSONL_SCHEMA = "fleetrst.host"
JSONL_VERSION = 1


def host_json(h: HostResult) -> dict[str, Any]:
    return {
        "host": h.host,
        "address": h.address,
        "groups": list(h.groups),
        "status": h.status,
        "error": h.error,
        "error_kind": h.error_kind,
        "interval_s": rounded(h.interval_s),
        "rates": {k: rounded(v) for k, v in sorted(h.rates.per_second.items())} if h.rates else None,
        "gauges": dict(sorted(h.rates.gauges.items())) if h.rates else None,
        "baseline_rates": (
            {k: rounded(v) for k, v in sorted(h.baseline.per_second.items())} if h.baseline else None
        ),
        "counters_wrapped": list(h.rates.wrapped) if h.rates else [],
        "counters_reset": list(h.rates.reset) if h.rates else [],
        "tripped": [
            {
                "metric": t.metric,
                "level": t.level,
                "value": rounded(t.value),
                "limit": t.limit,
                "rule": t.rule,
                "baseline": rounded(t.baseline),
            }
            for t in h.tripped
        ],
        "investigation": dict(h.investigation) if h.investigation is not None else None,
        "elapsed_s": rounded(h.elapsed_s),
    }


def report_json(report: FleetReport) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA,
        "version": JSON_VERSION,
        "started_at": report.started_at,
        "duration_s": rounded(report.duration_s),
        "window_s": report.window_s,
        "baseline_s": report.baseline_s,
        "pattern": report.pattern,
        "limit": report.limit,
        "inventories": list(report.inventories),
        "exit_code": report.exit_code,
        "interrupted_by": report.interrupted_by,
        "summary": {
            "hosts": len(report.hosts),
            **{s: report.count(s) for s in STATUSES},
            "totals": {k: rounded(v) for k, v in fleet_totals(report).items()},
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


def render_jsonl(report: FleetReport) -> str:
    """One JSON object a line, one line a host (worst first), each with its sweep's start and window:
    each line stands alone in a log pipeline."""
    lines = []
    for h in worst_first(report.hosts):
        doc = {
            "schema": JSONL_SCHEMA,
            "version": JSONL_VERSION,
            "started_at": report.started_at,
            "window_s": report.window_s,
            "pattern": report.pattern,
            **host_json(h),
        }
        lines.append(json.dumps(doc, separators=(",", ":")))
    return "".join(line + "\n" for line in lines)
