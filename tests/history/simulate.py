"""Audits of simulated hosts recorded through the same path as ``fleetrst sweep``'s: each host's
counters grow as its resets happen, each audit takes their last sample, counts since the host's
previous recorded audit (``since_last``, judged), and is stored, with retention when given.

For the store, report and HTML tests: hundreds of audits, months apart if need be, in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from fleetrst.history.retention import Retention
from fleetrst.history.store import HistoryStore
from fleetrst.measure.counters import measure_rates, parse_boot_id, parse_netstat, parse_snmp, parse_uptime
from fleetrst.measure.interval import DEFAULT_INTERVAL_THRESHOLDS, since_last_of
from fleetrst.measure.rules import DEFAULT_THRESHOLDS, judge
from fleetrst.model import FleetReport, HostResult, Snapshot

PROC = Path(__file__).parents[1] / "fixtures" / "proc" / "host-idle" / "before"


def _captured() -> Snapshot:
    """A real host's counters (``tests/fixtures/proc/host-idle``, captured with its script)."""
    return Snapshot(
        tcp=parse_snmp((PROC / "snmp").read_text()),
        tcpext=parse_netstat((PROC / "netstat").read_text()),
        uptime_s=parse_uptime((PROC / "uptime").read_text()),
        boot_id=parse_boot_id((PROC / "boot_id").read_text()),
    )


CAPTURED = _captured()
BOOT = CAPTURED.boot_id


@dataclass
class SimHost:
    name: str
    groups: tuple[str, ...] = ("fleet",)
    boot: str = BOOT
    uptime: float = 100_000.0
    tcp: dict[str, int] = field(default_factory=dict)
    tcpext: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tcp:
            self.tcp = dict(CAPTURED.tcp)
        if not self.tcpext:
            self.tcpext = dict(CAPTURED.tcpext)

    def snapshot(self) -> Snapshot:
        return Snapshot(dict(self.tcp), dict(self.tcpext), self.uptime, self.boot)

    def happen(self, seconds: float, received: int = 0, sent: int = 0, traffic: int = 1000) -> None:
        """``seconds`` pass on the host: ``received``/``sent`` resets, some ordinary traffic."""
        self.uptime += seconds
        self.tcp["AttemptFails"] += received
        self.tcp["OutRsts"] += sent
        self.tcp["InSegs"] += traffic
        self.tcp["OutSegs"] += traffic
        self.tcp["ActiveOpens"] += received + traffic // 100
        self.tcpext["TCPHPHits"] += traffic // 10


def audit(
    store: HistoryStore,
    hosts: list[SimHost],
    at: datetime,
    *,
    window_s: float = 10.0,
    storm: dict[str, tuple[int, int]] | None = None,
    unreachable: tuple[str, ...] = (),
    retention: Retention | None = None,
) -> FleetReport:
    """One audit at ``at``: each host's window (``storm[name]`` = resets received, sent in it), then
    its since_last and the record, as the audit command does."""
    results: list[HostResult] = []
    for h in hosts:
        if h.name in unreachable:
            results.append(
                HostResult(
                    h.name, "10.0.0.1", h.groups, "unreachable", error="no route", error_kind="timeout"
                )
            )
            continue
        first = h.snapshot()
        received, sent = (storm or {}).get(h.name, (0, 0))
        h.happen(window_s, received, sent, traffic=50)
        last = h.snapshot()
        rates = measure_rates(first, last)
        verdict = judge(rates, DEFAULT_THRESHOLDS)
        results.append(
            HostResult(
                h.name,
                "10.0.0.1",
                h.groups,
                verdict.level,
                rates=rates,
                tripped=verdict.tripped,
                snapshot=last,
                elapsed_s=window_s,
            )
        )
    previous = store.last_samples(r.host for r in results if r.snapshot is not None)
    results = [
        replace(r, since_last=since_last_of(r, previous.get(r.host), DEFAULT_INTERVAL_THRESHOLDS))
        for r in results
    ]
    report = FleetReport(
        hosts=tuple(results),
        started_at=at.isoformat(timespec="seconds"),
        duration_s=window_s + 0.5,
        window_s=window_s,
    )
    store.record(report, report.exit_code, retention=retention)
    return report
