"""Audits over time, read back from history: per-host trends, offenders, new offenders, recoveries.

Pure: rows in (``model.HostRow``, as ``fleetrst.history.store`` reads them back), values out (no
SQLite, no clock); the ``history`` and ``report`` commands and the HTML report render what this module
works out, and ``--rules netdata-history`` takes its baselines from :func:`median_baselines`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ..model import HostRow


def matches(row: HostRow, pattern: str | None) -> bool:
    """A host name or a group recorded with it, exactly or as a glob (``web*``); None: every host."""
    if not pattern or pattern == "all":
        return True
    return any(fnmatchcase(name, term) for term in pattern.split(",") for name in (row.host, *row.groups))


@dataclass(frozen=True)
class HostTrend:
    """One host's metric over the period."""

    host: str
    audits: int  # sweeps that included the host
    measured: int  # of them, sweeps that measured it
    tripped: int  # of them, sweeps where it warned or was critical
    minimum: float | None
    median: float | None
    maximum: float | None
    last: float | None
    last_status: str
    last_seen: str
    series: tuple[tuple[float, float | None], ...] = field(default=(), repr=False)  # (ts, value)


def host_trends(rows: Iterable[HostRow], metric: str) -> list[HostTrend]:
    """Per host: min / median / max / last of ``metric`` over its measured audits, and how many tripped.
    Most-tripped first, then by median, highest first."""
    by_host: dict[str, list[HostRow]] = defaultdict(list)
    for row in rows:
        by_host[row.host].append(row)
    trends: list[HostTrend] = []
    for host, host_rows in by_host.items():
        host_rows.sort(key=lambda r: (r.started_ts, r.sweep_id))
        values = [v for v in (r.rate(metric) for r in host_rows) if v is not None]
        last = host_rows[-1]
        trends.append(
            HostTrend(
                host=host,
                audits=len(host_rows),
                measured=len(values),
                tripped=sum(r.is_tripped for r in host_rows),
                minimum=min(values) if values else None,
                median=statistics.median(values) if values else None,
                maximum=max(values) if values else None,
                last=last.rate(metric),
                last_status=last.status,
                last_seen=last.started_at,
                series=tuple((r.started_ts, r.rate(metric)) for r in host_rows),
            )
        )
    trends.sort(key=lambda t: (-t.tripped, -(t.median or 0.0), t.host))
    return trends


def median_baselines(
    rows_by_host: Mapping[str, Sequence[Mapping[str, float]]],
) -> dict[str, dict[str, float]]:
    """Each host's median rate per metric over the audits given (the netdata-history baseline)."""
    result: dict[str, dict[str, float]] = {}
    for host, samples in rows_by_host.items():
        if not samples:
            continue
        metrics = {m for s in samples for m in s}
        result[host] = {m: float(statistics.median(s.get(m, 0.0) for s in samples)) for m in sorted(metrics)}
    return result


@dataclass(frozen=True)
class Offender:
    host: str
    tripped: int
    audits: int
    worst: str  # "critical" or "warning"
    peak_metric: str
    peak: float
    last: HostRow
    causes: tuple[str, ...] = ()  # from its latest audit that tripped


@dataclass(frozen=True)
class Change:
    """A host whose state changed between its previous audit and its latest one."""

    host: str
    latest: HostRow
    previous: HostRow | None  # None: the host had no earlier audit


@dataclass(frozen=True)
class FleetChanges:
    offenders: list[Offender]
    new_offenders: list[Change]
    recovered: list[Change]
    sweeps: int
    hosts: int
    latest_sweep: int | None


def _peak(rows: Iterable[HostRow]) -> tuple[str, float]:
    best = ("", 0.0)
    for row in rows:
        for trip in row.tripped:
            value = float(trip.get("value") or 0.0)
            if value > best[1]:
                best = (str(trip.get("metric")), value)
    return best


def fleet_changes(rows: Iterable[HostRow], period_start: float | None = None) -> FleetChanges:
    """Top offenders over the period (rows from ``period_start`` on), and, comparing each host of the
    latest sweep with that host's own previous audit (which may be older than the period): hosts that
    are new offenders (tripped now, not before, or never audited before) and hosts that recovered
    (tripped before, measured OK now).

    Comparing per host keeps sweeps of different patterns (a cron audit of ``all``, an ad-hoc sweep
    of one group) from making hosts look new or recovered just because they were not in a sweep.
    """
    by_host: dict[str, list[HostRow]] = defaultdict(list)
    sweep_ids: set[int] = set()
    for row in rows:
        by_host[row.host].append(row)
        sweep_ids.add(row.sweep_id)
    for host_rows in by_host.values():
        host_rows.sort(key=lambda r: (r.started_ts, r.sweep_id))
    latest_sweep = max(sweep_ids) if sweep_ids else None

    offenders: list[Offender] = []
    new: list[Change] = []
    recovered: list[Change] = []
    in_period_sweeps: set[int] = set()
    in_period_hosts = 0
    for host, host_rows in by_host.items():
        period = [r for r in host_rows if period_start is None or r.started_ts >= period_start]
        in_period_sweeps.update(r.sweep_id for r in period)
        in_period_hosts += bool(period)
        tripped = [r for r in period if r.is_tripped]
        if tripped:
            metric, peak = _peak(tripped)
            worst = "critical" if any(r.status == "critical" for r in tripped) else "warning"
            offenders.append(
                Offender(host, len(tripped), len(period), worst, metric, peak, period[-1], tripped[-1].causes)
            )
        latest = host_rows[-1]
        if latest.sweep_id != latest_sweep:
            continue
        previous = host_rows[-2] if len(host_rows) > 1 else None
        if latest.is_tripped and (previous is None or not previous.is_tripped):
            new.append(Change(host, latest, previous))
        elif latest.status == "ok" and previous is not None and previous.is_tripped:
            recovered.append(Change(host, latest, previous))
    offenders.sort(key=lambda o: (-o.tripped, o.worst != "critical", -o.peak, o.host))
    new.sort(key=lambda c: c.host)
    recovered.sort(key=lambda c: c.host)
    return FleetChanges(offenders, new, recovered, len(in_period_sweeps), in_period_hosts, latest_sweep)
