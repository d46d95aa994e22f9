"""The versioned JSON documents: ``-o json`` (schema ``fleetrst.sweep``) and ``-o jsonl`` (schema
``fleetrst.host``, one host a line). Pure: the fleet report in, text out. The README documents both.

The one place where a host's ``Investigation`` and the fleet's ``Finding``s become JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..model import (
    STATUSES,
    TRIPPED,
    FleetReport,
    HostResult,
    NameIndex,
    NamespaceResult,
    Packed,
    SinceLast,
    SinceLastMissing,
    Trip,
    picker,
)
from .text import fleet_totals, rounded, worst_first

if TYPE_CHECKING:
    from ..investigate.result import (
        Capture,
        CauseResult,
        Context,
        Finding,
        Investigation,
        Listener,
        Process,
        ProcessRef,
    )

JSON_SCHEMA = "fleetrst.sweep"
# 2: since_last and since_last_missing per host; summary.tripped_since_last; namespaces and
# namespaces_unseen per host, summary.namespaces_tripped (--containers)
JSON_VERSION = 2
JSONL_SCHEMA = "fleetrst.host"
JSONL_VERSION = 2  # 2: since_last and since_last_missing; namespaces and namespaces_unseen

# A host's since_last when no history was read at all.
NO_HISTORY = {
    "reason": "no_history",
    "detail": "no history was read (--no-history, or a command that does not record audits)",
}


def trip_json(t: Trip) -> dict[str, Any]:
    return {
        "metric": t.metric,
        "level": t.level,
        "value": rounded(t.value),
        "limit": t.limit,
        "rule": t.rule,
        "baseline": rounded(t.baseline),
    }


def since_last_json(h: HostResult) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The host's ``since_last`` and ``since_last_missing``: one of them is null."""
    s = h.since_last
    if isinstance(s, SinceLast):
        return {
            "from": s.from_at,
            "from_sweep": s.from_sweep,
            "interval_s": rounded(s.interval_s),
            "counts": dict(sorted(s.counts.items())),
            "rates": {k: rounded(v) for k, v in sorted(s.rates.items())},
            "tripped": [trip_json(t) for t in s.tripped],
            "note": s.note,
        }, None
    if isinstance(s, SinceLastMissing):
        return None, {"reason": s.reason, "detail": s.detail}
    return None, dict(NO_HISTORY)


# a layout's names in name order, the positions that put its values in that order, and the JSON
# object of them as a %-format (``{"Name": %r, ...}``: %r is the encoder's own float.__repr__)
_SortedOrder = tuple[tuple[str, ...], Callable[[Sequence[float]], Sequence[float]], str]
_ORDERS: dict[NameIndex, _SortedOrder] = {}


def _sorted_order(names: NameIndex) -> _SortedOrder:
    found = _ORDERS.get(names)
    if found is None:
        positions = sorted(range(len(names.names)), key=names.names.__getitem__)
        ordered = tuple(names.names[i] for i in positions)
        if len(_ORDERS) >= 64:  # a fleet has a handful of kernels
            _ORDERS.clear()
        text = "{" + ", ".join(json.dumps(n).replace("%", "%%") + ": %r" for n in ordered) + "}"
        found = _ORDERS[names] = (ordered, picker(positions), text)
    return found


def rounded_by_name(rates: Mapping[str, float]) -> dict[str, float | None]:
    """``{name: rounded(rate)}`` in name order, as a host's JSON gives its rates. Packed rates (a
    sweep's) are put in order by positions worked out once per layout: the same dict."""
    if isinstance(rates, Packed):
        names, pick, _ = _sorted_order(rates.names)
        return dict(zip(names, _rounded_all(pick(list(rates.values()))), strict=True))
    return {k: rounded(v) for k, v in sorted(rates.items())}


def _rates_text(rates: Packed[float]) -> str | None:
    """``json.dumps(rounded_by_name(rates))`` for packed rates, without the dict: one %-format a layout
    (its keys' text made once), each value's text the encoder's own (``float.__repr__``). None where
    a value is not finite (the encoder writes ``NaN``, not repr's ``nan``): that host takes the dict."""
    _, pick, text = _sorted_order(rates.names)
    values = _rounded_all(pick(list(rates.values())))
    if not math.isfinite(sum(values)):
        return None
    return text % tuple(values)


def _rounded_all(values: Sequence[float]) -> list[float]:
    """Each value ``rounded``: a zero as it is (``round(±0.0, 3)`` is itself, sign and all), which
    most of a host's rates are, and which ``round``'s correctly rounded decimal conversion is slow at."""
    return [v if v == 0 else round(v, 3) for v in values]


def _host_head(h: HostResult) -> dict[str, Any]:
    return {
        "host": h.host,
        "address": h.address,
        "groups": list(h.groups),
        "status": h.status,
        "error": h.error,
        "error_kind": h.error_kind,
        "interval_s": rounded(h.interval_s),
    }


def _host_tail(h: HostResult) -> dict[str, Any]:
    since_last, since_last_missing = since_last_json(h)
    return {
        "gauges": dict(sorted(h.rates.gauges.items())) if h.rates else None,
        "baseline_rates": rounded_by_name(h.baseline.per_second) if h.baseline else None,
        "counters_wrapped": list(h.rates.wrapped) if h.rates else [],
        "counters_reset": list(h.rates.reset) if h.rates else [],
        "tripped": [trip_json(t) for t in h.tripped],
        "since_last": since_last,
        "since_last_missing": since_last_missing,
        "investigation": investigation_json(h.investigation) if h.investigation is not None else None,
        "elapsed_s": rounded(h.elapsed_s),
        "namespaces": None if h.namespaces is None else [namespace_json(n) for n in h.namespaces],
        "namespaces_unseen": list(h.namespaces_unseen),
    }


def host_json(h: HostResult) -> dict[str, Any]:
    return {
        **_host_head(h),
        "rates": rounded_by_name(h.rates.per_second) if h.rates else None,
        **_host_tail(h),
    }


def host_json_text(h: HostResult) -> str:
    """``json.dumps(host_json(h))``, character for character. A sweep's host has packed rates, its
    JSON's longest part (a value for each of the kernel's ~150 counters): their text is made by
    :func:`_rates_text` and put between the encoder's text of the keys before and after them."""
    rates = h.rates.per_second if h.rates else None
    text = _rates_text(rates) if isinstance(rates, Packed) else None
    if text is None:
        return json.dumps(host_json(h))
    return f'{json.dumps(_host_head(h))[:-1]}, "rates": {text}, {json.dumps(_host_tail(h))[1:]}'


def namespace_json(n: NamespaceResult) -> dict[str, Any]:
    """One of a host's other network namespaces (a container, a pod, an ``ip netns``)."""
    return {
        "name": n.name,
        "runtime": n.runtime,
        "key": n.key,
        "inode": n.inode,
        "pid": n.pid,
        "start_ticks": n.start_ticks,
        "processes": n.processes,
        "binds": list(n.binds),
        "status": n.status,
        "error": n.error,
        "interval_s": rounded(n.rates.interval_s) if n.rates else None,
        "rates": {k: rounded(v) for k, v in sorted(n.rates.per_second.items())} if n.rates else None,
        "tripped": [trip_json(t) for t in n.tripped],
    }


def _process(p: Process) -> dict[str, Any]:
    return {"pid": p.pid, "command": p.command}


def _process_ref(p: ProcessRef) -> dict[str, Any]:
    return {"pid": p.pid, "command": p.command, "port": p.port}


def _cause(c: CauseResult) -> dict[str, Any]:
    return {
        "cause": c.cause,
        "summary": c.summary,
        "port": c.port,
        "processes": [_process_ref(p) for p in c.processes],
        "evidence": {"rates": dict(c.evidence.rates), "sockets": dict(c.evidence.sockets)},
        "next_step": c.next_step,
    }


def _listener(lf: Listener) -> dict[str, Any]:
    return {
        "address": lf.address,
        "port": lf.port,
        "queue": lf.queue,
        "backlog": lf.backlog,
        "fill": lf.fill,
        "processes": [_process(p) for p in lf.processes],
    }


def _capture(c: Capture) -> dict[str, Any]:
    flows = []
    for f in c.flows:
        flow: dict[str, Any] = {
            "direction": f.direction,
            "local_port": f.local_port,
            "peer": f.peer,
            "count": f.count,
        }
        if f.ports is not None:  # the flow stands for many ports
            flow["ports"] = f.ports
        if f.processes is not None:  # the local port's owners are known
            flow["processes"] = [_process(p) for p in f.processes]
        flows.append(flow)
    return {
        "duration_s": c.duration_s,
        "max_packets": c.max_packets,
        "packets": c.packets,
        "dropped": c.dropped,
        "flows": flows,
        "error": c.error,
        "pcap": c.pcap,
        "pcap_bytes": c.pcap_bytes,
    }


def _context(c: Context) -> dict[str, Any]:
    """Only what the host said: a field it did not say is left out (the whole object is ``{}`` when the
    runbook did not run)."""
    values: dict[str, Any] = {
        "loadavg": None if c.loadavg is None else list(c.loadavg),
        "tcp_inuse": c.tcp_inuse,
        "orphans": c.orphans,
        "time_wait": c.time_wait,
        "tcp_mem_used_pages": c.tcp_mem_used_pages,
        "tcp_mem_pages": None if c.tcp_mem_pages is None else list(c.tcp_mem_pages),
        "mem_total_kib": c.mem_total_kib,
        "mem_available_kib": c.mem_available_kib,
        "sysctls": None if c.sysctls is None else dict(c.sysctls),
        "login_user": c.login_user,
    }
    return {k: v for k, v in values.items() if v is not None}


def investigation_json(inv: Investigation) -> dict[str, Any]:
    """A host's ``investigation`` object, as README.md documents it (``version`` 1)."""
    top = inv.top
    return {
        "version": inv.version,
        "causes": [_cause(c) for c in inv.causes],
        "top": (
            None
            if top is None
            else {"port": top.port, "peer": top.peer, "pid": top.pid, "command": top.command, "why": top.why}
        ),
        "processes": [_process_ref(p) for p in inv.processes],
        "states": dict(inv.states),
        "sockets_seen": inv.sockets_seen,
        "top_ports": [
            {
                "state": tp.state,
                "count": tp.count,
                "local": [{"port": p.port, "count": p.count} for p in tp.local],
                "peer": [{"port": p.port, "count": p.count} for p in tp.peer],
            }
            for tp in inv.top_ports
        ],
        "stuck_peers": dict(inv.stuck_peers),
        "listeners": [_listener(lf) for lf in inv.listeners],
        "capture": None if inv.capture is None else _capture(inv.capture),
        "context": _context(inv.context),
        "logs": None
        if inv.logs is None
        else {"sources": list(inv.logs.sources), "lines": list(inv.logs.lines)},
        "become": {
            "requested": inv.become.requested,
            "user": inv.become.user,
            "ok": inv.become.ok,
            "error": inv.become.error,
        },
        "privileged": inv.privileged,
        "unseen": list(inv.unseen),
        "errors": list(inv.errors),
        "elapsed_s": inv.elapsed_s,
    }


def finding_json(f: Finding) -> dict[str, Any]:
    """One of the top-level ``findings``: what several hosts' investigations show together."""
    return {
        "kind": f.kind,
        "peer": f.peer,
        "hosts": list(f.hosts),
        "count": f.count,
        "seen_in": list(f.seen_in),
        "summary": f.summary,
        "next_step": f.next_step,
    }


def report_head_json(report: FleetReport) -> dict[str, Any]:
    """The report's JSON without its ``hosts``: those are written one at a time (:func:`json_chunks`)."""
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
            "tripped_since_last": sum(h.interval_level != "ok" for h in report.hosts),
            "namespaces_tripped": sum(n.status in TRIPPED for h in report.hosts for n in h.namespaces or ()),
            "totals": {k: rounded(v) for k, v in fleet_totals(report).items()},
        },
        "findings": [finding_json(f) for f in report.findings],
    }


def report_json(report: FleetReport) -> dict[str, Any]:
    return {**report_head_json(report), "hosts": [host_json(h) for h in worst_first(report.hosts)]}


def json_chunks(report: FleetReport) -> Iterator[str]:
    """:func:`render_json`'s text in pieces, a host's JSON made only when its line is written: a fleet
    of thousands is never held as JSON objects all at once (they were most of a sweep's peak memory)."""
    head = json.dumps(report_head_json(report), indent=2)
    yield head[: -len("\n}")] + ',\n  "hosts": [\n'
    for number, h in enumerate(worst_first(report.hosts)):
        yield (",\n    " if number else "    ") + host_json_text(h)
    yield "\n  ]\n}\n"


def render_json(report: FleetReport) -> str:
    """Indented at the top, one line a host: readable, greppable, and fast (the C encoder runs only
    without ``indent``, and a fleet's hosts are most of the document)."""
    return "".join(json_chunks(report))


def jsonl_chunks(report: FleetReport) -> Iterator[str]:
    """:func:`render_jsonl`'s lines, each made when it is written."""
    for h in worst_first(report.hosts):
        doc = {
            "schema": JSONL_SCHEMA,
            "version": JSONL_VERSION,
            "started_at": report.started_at,
            "window_s": report.window_s,
            "pattern": report.pattern,
            **host_json(h),
        }
        yield json.dumps(doc, separators=(",", ":")) + "\n"


def render_jsonl(report: FleetReport) -> str:
    """One JSON object a line, one line a host (worst first), each with its sweep's start and window:
    each line stands alone in a log pipeline."""
    return "".join(jsonl_chunks(report))
