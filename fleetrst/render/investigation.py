"""The readable per-host report of ``fleetrst investigate``. Pure: the fleet report in, text out.

Everything a host could have written (process names, log lines, error text) passes through
``report.clean`` before it is shown, so that a host cannot drive the operator's terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import FleetReport, HostResult
from .text import clean, summary_line, worst_first


def _procs(items: Any) -> str:
    return ", ".join(f"{clean(str(p.get('command')))} (pid {p.get('pid')})" for p in items or ()) or "-"


def render_host(h: HostResult) -> str:
    lines = [f"== {clean(h.host)} ({clean(h.address)}): {h.status.upper()}"]
    if h.error:
        lines.append(f"   error: {clean(h.error)}")
    if h.rates:
        r = h.rates.per_second
        lines.append(
            "   rates/s: "
            + ", ".join(
                f"{name} {r.get(name, 0.0):.1f}"
                for name in (
                    "resets_received",
                    "resets_sent",
                    "estab_resets",
                    "listen_overflows",
                    "aborts_on_data",
                    "aborts_on_memory",
                )
            )
        )
    for t in h.tripped:
        lines.append(f"   tripped: {t.describe()}")
    inv = h.investigation
    if inv is None:
        if not h.error:
            lines.append("   not investigated")
        return "\n".join(lines) + "\n"
    lines.extend(_investigation_lines(inv))
    return "\n".join(lines) + "\n"


def _investigation_lines(inv: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    causes = inv.get("causes") or []
    if causes:
        lines.append("   likely causes:")
        for c in causes:
            lines.append(f"   - {c['cause']}: {clean(str(c['summary']))}")
            rates = c.get("evidence", {}).get("rates", {})
            shown = ", ".join(f"{k} {v:.1f}/s" for k, v in rates.items() if v)
            if shown:
                lines.append(f"       rates: {shown}")
            sockets = c.get("evidence", {}).get("sockets", {})
            if sockets:
                lines.append("       seen: " + clean(", ".join(f"{k} {v}" for k, v in sockets.items())))
            lines.append(f"       next: {clean(str(c['next_step']))}")
    else:
        lines.append("   likely causes: none found")
    states = inv.get("states") or {}
    if states:
        lines.append("   sockets: " + ", ".join(f"{k} {v}" for k, v in states.items()))
    for tp in inv.get("top_ports") or []:
        local = ", ".join(f"{p['port']}×{p['count']}" for p in tp["local"])
        peer = ", ".join(f"{p['port']}×{p['count']}" for p in tp["peer"])
        lines.append(
            f"   {tp['state']} ({tp['count']}): local ports {local or '-'}; peer ports {peer or '-'}"
        )
    listeners = inv.get("listeners") or []
    if listeners:
        lines.append("   listeners (accept queue / backlog):")
        for lf in listeners[:10]:
            fill = " FULL" if lf["backlog"] and lf["queue"] >= lf["backlog"] else ""
            lines.append(
                f"     {clean(lf['address'])}:{lf['port']}  {lf['queue']}/{lf['backlog']}{fill}  "
                f"{_procs(lf['processes'])}"
            )
    procs = inv.get("processes") or []
    if procs:
        lines.append(
            "   processes: "
            + ", ".join(f"{clean(str(p['command']))} (pid {p['pid']}, port {p['port']})" for p in procs[:10])
        )
    capture = inv.get("capture")
    if capture is not None:
        if capture.get("error"):
            lines.append(f"   capture: {clean(str(capture['error']))}")
        else:
            lines.append(f"   capture ({capture['duration_s']:g}s): {capture['packets']} RST segments")
            for f in capture.get("flows", [])[:10]:
                local = "*" if f["local_port"] is None else str(f["local_port"])
                many = f" ({f['ports']} ports)" if f.get("ports") else ""
                who = f"  {_procs(f['processes'])}" if f.get("processes") else ""
                lines.append(
                    f"     {f['count']:>6}  {f['direction']:<8} local port {local:<6} peer "
                    f"{clean(str(f['peer']))}{many}{who}"
                )
        if capture.get("pcap"):
            lines.append(f"   pcap: {clean(str(capture['pcap']))} ({capture['pcap_bytes']} bytes)")
    ctx = inv.get("context") or {}
    bits = []
    if "loadavg" in ctx:
        bits.append("load " + " ".join(f"{v:g}" for v in ctx["loadavg"]))
    if "mem_available_kib" in ctx:
        bits.append(f"mem available {ctx['mem_available_kib'] // 1024} MiB")
    if "tcp_mem_used_pages" in ctx and "tcp_mem_pages" in ctx:
        bits.append(f"tcp mem {ctx['tcp_mem_used_pages']} pages (pressure at {ctx['tcp_mem_pages'][1]})")
    if "orphans" in ctx:
        bits.append(f"orphans {ctx['orphans']}")
    if bits:
        lines.append("   context: " + ", ".join(bits))
    sysctls = ctx.get("sysctls") or {}
    if sysctls:
        lines.append("   sysctls: " + clean(", ".join(f"{k}={v}" for k, v in sorted(sysctls.items()))))
    logs = inv.get("logs")
    if logs and logs.get("lines"):
        lines.append("   log lines:")
        lines.extend(f"     {clean(str(ln))[:200]}" for ln in logs["lines"][-10:])
    for what in inv.get("unseen") or []:
        lines.append(f"   not seen: {clean(str(what))}")
    for err in inv.get("errors") or []:
        lines.append(f"   problem: {clean(str(err))}")
    return lines


def render_findings(report: FleetReport) -> str:
    if not report.findings:
        return ""
    lines = ["fleet findings:"]
    for f in report.findings:
        lines.append(f"- {clean(str(f.get('summary', '')))}")
        if f.get("next_step"):
            lines.append(f"  next: {clean(str(f['next_step']))}")
    return "\n".join(lines) + "\n"


def render_investigation_report(report: FleetReport) -> str:
    parts = [render_host(h) for h in worst_first(report.hosts)]
    findings = render_findings(report)
    return "\n".join(parts) + ("\n" + findings if findings else "") + "\n" + summary_line(report) + "\n"
