"""The readable per-host report of ``fleetrst investigate``. Pure: the fleet report in, text out.

Everything a host could have written (process names, log lines, error text) passes through
``report.clean`` before it is shown, so that a host cannot drive the operator's terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..measure.interval import span
from ..model import FleetReport, HostResult
from .fleet import interval_trip_text
from .text import clean, summary_line, worst_first

if TYPE_CHECKING:
    from ..investigate.result import Investigation, Process


def _procs(items: Iterable[Process] | None) -> str:
    return ", ".join(f"{clean(p.command)} (pid {p.pid})" for p in items or ()) or "-"


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
    lines.extend(_since_last_lines(h))
    inv = h.investigation
    if inv is None:
        if not h.error:
            lines.append("   not investigated")
        return "\n".join(lines) + "\n"
    lines.extend(_investigation_lines(inv))
    return "\n".join(lines) + "\n"


def _since_last_lines(h: HostResult) -> list[str]:
    """Since the host's previous audit: the resets counted, what tripped, and the note that the cause
    of a storm between audits could not be seen live."""
    s = h.interval
    if s is None:
        return []
    counted = ", ".join(
        f"{name} {s.counts.get(name, 0)} ({s.rates.get(name, 0.0):.1f}/s)"
        for name in ("resets_received", "resets_sent", "estab_resets", "listen_overflows")
        if name in s.counts
    )
    lines = [
        f"   since the last audit ({span(s.interval_s)}, from {s.from_at}): {counted or 'nothing counted'}"
    ]
    lines += [f"   tripped since the last audit: {interval_trip_text(t, s)}" for t in s.tripped]
    if s.note:
        lines.append(f"   note: {clean(s.note)}")
    return lines


def _investigation_lines(inv: Investigation) -> list[str]:
    lines: list[str] = []
    if inv.causes:
        lines.append("   likely causes:")
        for c in inv.causes:
            lines.append(f"   - {c.cause}: {clean(c.summary)}")
            shown = ", ".join(f"{k} {v:.1f}/s" for k, v in c.evidence.rates.items() if v)
            if shown:
                lines.append(f"       rates: {shown}")
            if c.evidence.sockets:
                lines.append(
                    "       seen: " + clean(", ".join(f"{k} {v}" for k, v in c.evidence.sockets.items()))
                )
            lines.append(f"       next: {clean(c.next_step)}")
    else:
        lines.append("   likely causes: none found")
    if inv.states:
        lines.append("   sockets: " + ", ".join(f"{k} {v}" for k, v in inv.states.items()))
    for tp in inv.top_ports:
        local = ", ".join(f"{p.port}×{p.count}" for p in tp.local)
        peer = ", ".join(f"{p.port}×{p.count}" for p in tp.peer)
        lines.append(f"   {tp.state} ({tp.count}): local ports {local or '-'}; peer ports {peer or '-'}")
    if inv.listeners:
        lines.append("   listeners (accept queue / backlog):")
        for lf in inv.listeners[:10]:
            fill = " FULL" if lf.full else ""
            lines.append(
                f"     {clean(lf.address)}:{lf.port}  {lf.queue}/{lf.backlog}{fill}  {_procs(lf.processes)}"
            )
    if inv.processes:
        lines.append(
            "   processes: "
            + ", ".join(f"{clean(p.command)} (pid {p.pid}, port {p.port})" for p in inv.processes[:10])
        )
    capture = inv.capture
    if capture is not None:
        if capture.error:
            lines.append(f"   capture: {clean(capture.error)}")
        else:
            lines.append(f"   capture ({capture.duration_s:g}s): {capture.packets} RST segments")
            for f in capture.flows[:10]:
                local = "*" if f.local_port is None else str(f.local_port)
                many = f" ({f.ports} ports)" if f.ports else ""
                who = f"  {_procs(f.processes)}" if f.processes else ""
                lines.append(
                    f"     {f.count:>6}  {f.direction:<8} local port {local:<6} "
                    f"peer {clean(f.peer)}{many}{who}"
                )
        if capture.pcap:
            lines.append(f"   pcap: {clean(capture.pcap)} ({capture.pcap_bytes} bytes)")
    ctx = inv.context
    bits = []
    if ctx.loadavg is not None:
        bits.append("load " + " ".join(f"{v:g}" for v in ctx.loadavg))
    if ctx.mem_available_kib is not None:
        bits.append(f"mem available {ctx.mem_available_kib // 1024} MiB")
    if ctx.tcp_mem_used_pages is not None and ctx.tcp_mem_pages is not None and len(ctx.tcp_mem_pages) == 3:
        bits.append(f"tcp mem {ctx.tcp_mem_used_pages} pages (pressure at {ctx.tcp_mem_pages[1]})")
    if ctx.orphans is not None:
        bits.append(f"orphans {ctx.orphans}")
    if bits:
        lines.append("   context: " + ", ".join(bits))
    if ctx.sysctls:
        lines.append("   sysctls: " + clean(", ".join(f"{k}={v}" for k, v in sorted(ctx.sysctls.items()))))
    if inv.logs is not None and inv.logs.lines:
        lines.append("   log lines:")
        lines.extend(f"     {clean(ln)[:200]}" for ln in inv.logs.lines[-10:])
    for what in inv.unseen:
        lines.append(f"   not seen: {clean(what)}")
    for err in inv.errors:
        lines.append(f"   problem: {clean(err)}")
    return lines


def render_findings(report: FleetReport) -> str:
    if not report.findings:
        return ""
    lines = ["fleet findings:"]
    for f in report.findings:
        lines.append(f"- {clean(f.summary)}")
        if f.next_step:
            lines.append(f"  next: {clean(f.next_step)}")
    return "\n".join(lines) + "\n"


def render_investigation_report(report: FleetReport) -> str:
    parts = [render_host(h) for h in worst_first(report.hosts)]
    findings = render_findings(report)
    return "\n".join(parts) + ("\n" + findings if findings else "") + "\n" + summary_line(report) + "\n"
