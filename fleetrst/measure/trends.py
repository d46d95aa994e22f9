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

from ..model import HostRow, RollupPeriod, RollupRow
from .counters import NAMED_RATES


def matches(row: HostRow | RollupRow, pattern: str | None) -> bool:
    """A host name or a group recorded with it, exactly or as a glob (``web*``); None: every host."""
    if not pattern or pattern == "all":
        return True
    return any(fnmatchcase(name, term) for term in pattern.split(",") for name in (row.host, *row.groups))


@dataclass(frozen=True)
class HostTrend:
    """One host's metric over the period: its window rates at each audit, and what the kernel counted
    between audits (the intervals since each previous audit that end in the period, rolled-up hours and
    days included)."""

    host: str
    audits: int  # sweeps that included the host
    measured: int  # of them, sweeps that measured it
    tripped: int  # of them, sweeps where it warned or was critical
    minimum: float | None  # window rates: over the audits kept in full
    median: float | None
    maximum: float | None  # over every audit, rolled up or not
    last: float | None
    last_status: str
    last_seen: str
    series: tuple[tuple[float, float | None], ...] = field(default=(), repr=False)  # (ts, value)
    counted: int | None = None  # events counted between audits; None: the metric has no counts
    covered_s: float = 0.0  # the time those intervals cover
    peak_average: float | None = None  # the highest average over one interval
    interval_tripped: int = 0  # audits whose interval tripped
    quiet_tripped: int = 0  # of them, with an OK window

    @property
    def average(self) -> float | None:
        """Events per second over the time the intervals cover."""
        return None if self.counted is None or not self.covered_s else self.counted / self.covered_s


def count_name(metric: str) -> str | None:
    """The name history keeps ``metric``'s counts under (the named rate), or None: not kept."""
    if metric in NAMED_RATES:
        return metric
    return next((friendly for friendly, kernel in NAMED_RATES.items() if kernel == metric), None)


def host_trends(rows: Iterable[HostRow], metric: str, rollups: Iterable[RollupRow] = ()) -> list[HostTrend]:
    """Per host: min / median / max / last of ``metric`` over its measured audits, how many tripped,
    and what was counted between audits. Most-tripped first (in the window or between audits), then by
    the events counted, then by median, highest first."""
    counted_as = count_name(metric)
    by_host: dict[str, list[HostRow]] = defaultdict(list)
    for row in rows:
        by_host[row.host].append(row)
    rolled: dict[str, list[RollupRow]] = defaultdict(list)
    for r in rollups:
        rolled[r.host].append(r)
    trends: list[HostTrend] = []
    for host in sorted(set(by_host) | set(rolled)):
        host_rows = sorted(by_host.get(host, []), key=lambda r: (r.started_ts, r.sweep_id))
        host_rollups = sorted(rolled.get(host, []), key=lambda r: r.start_ts)
        values = [v for v in (r.rate(metric) for r in host_rows) if v is not None]
        peaks = [r.peaks.get(metric, 0.0) for r in host_rollups if r.measured]
        usable = [r for r in host_rows if r.since_counts is not None]
        counted = None
        if counted_as is not None and (usable or host_rollups):
            counted = sum(r.since_count(counted_as) or 0 for r in usable)
            counted += sum(int(r.counts.get(counted_as, 0)) for r in host_rollups)
        averages = (
            [v for v in (r.since_rate(counted_as) for r in usable) if v is not None] if counted_as else []
        )
        averages += [
            r.interval_peaks.get(counted_as, 0.0) for r in host_rollups if counted_as and r.interval_s
        ]
        last = host_rows[-1] if host_rows else None
        trends.append(
            HostTrend(
                host=host,
                audits=len(host_rows) + sum(r.audits for r in host_rollups),
                measured=len(values) + sum(r.measured for r in host_rollups),
                tripped=sum(r.is_tripped for r in host_rows) + sum(r.tripped for r in host_rollups),
                minimum=min(values) if values else None,
                median=statistics.median(values) if values else None,
                maximum=max(values + peaks) if values or peaks else None,
                last=last.rate(metric) if last else None,
                last_status=last.status if last else "-",
                last_seen=last.started_at if last else "",
                series=tuple((r.started_ts, r.rate(metric)) for r in host_rows),
                counted=counted,
                covered_s=sum(r.since_s or 0.0 for r in usable) + sum(r.interval_s for r in host_rollups),
                peak_average=max(averages) if averages else None,
                interval_tripped=sum(r.is_interval_tripped for r in host_rows)
                + sum(r.interval_tripped for r in host_rollups),
                quiet_tripped=sum(r.quiet_but_tripped_between for r in host_rows)
                + sum(r.quiet_tripped for r in host_rollups),
            )
        )
    trends.sort(
        key=lambda t: (-(t.tripped + t.interval_tripped), -(t.counted or 0), -(t.median or 0.0), t.host)
    )
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
    """A host that tripped in the period: in its window, or between audits, or both."""

    host: str
    tripped: int  # audits whose window tripped
    audits: int
    worst: str  # "critical" or "warning", window or interval
    peak_metric: str
    peak: float  # the highest tripped rate (a window rate, else an interval average)
    last: HostRow | None
    causes: tuple[str, ...] = ()  # from its latest audit that tripped
    interval_tripped: int = 0  # audits whose interval (since the previous audit) tripped
    counted: Mapping[str, int] = field(default_factory=dict)  # named counts between audits, summed
    covered_s: float = 0.0  # the time those intervals cover
    peak_between: bool = False  # the peak is an interval average, not a window rate

    @property
    def quiet_at_every_audit(self) -> bool:
        """No window tripped, yet some interval did: it reset between the audits only."""
        return self.tripped == 0 and self.interval_tripped > 0


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

    @property
    def quiet_between(self) -> list[Offender]:
        """Hosts quiet at every audit of the period, yet over an interval threshold in between."""
        return [o for o in self.offenders if o.quiet_at_every_audit]


def _peak(rows: Iterable[HostRow]) -> tuple[str, float]:
    best = ("", 0.0)
    for row in rows:
        for trip in row.tripped:
            value = float(trip.get("value") or 0.0)
            if value > best[1]:
                best = (str(trip.get("metric")), value)
    return best


def _peak_between(rows: Iterable[HostRow], rollups: Iterable[RollupRow]) -> tuple[str, float]:
    best = ("", 0.0)
    for row in rows:
        for trip in row.since_tripped:
            value = float(trip.get("value") or 0.0)
            if value > best[1]:
                best = (str(trip.get("metric")), value)
    for r in rollups:
        if r.interval_tripped:
            for metric, value in r.interval_peaks.items():
                if value > best[1]:
                    best = (metric, value)
    return best


def _is_problem(row: HostRow) -> bool:
    return row.is_tripped or row.is_interval_tripped


def fleet_changes(
    rows: Iterable[HostRow], period_start: float | None = None, rollups: Iterable[RollupRow] = ()
) -> FleetChanges:
    """Top offenders over the period (rows from ``period_start`` on, and the rolled-up hours and days
    of it), and, comparing each host of the latest sweep with that host's own previous audit (which
    may be older than the period): hosts that are new offenders (tripped now, in the window or since
    the previous audit, and not before, or never audited before) and hosts that recovered (tripped
    before, OK now in both).

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
    rolled: dict[str, list[RollupRow]] = defaultdict(list)
    for rollup in rollups:
        rolled[rollup.host].append(rollup)
    latest_sweep = max(sweep_ids) if sweep_ids else None

    offenders: list[Offender] = []
    new: list[Change] = []
    recovered: list[Change] = []
    in_period_sweeps: set[int] = set()
    in_period_hosts = 0
    for host in sorted(set(by_host) | set(rolled)):
        host_rows = by_host.get(host, [])
        host_rollups = rolled.get(host, [])
        period = [r for r in host_rows if period_start is None or r.started_ts >= period_start]
        in_period_sweeps.update(r.sweep_id for r in period)
        in_period_hosts += bool(period or host_rollups)
        tripped = [r for r in period if r.is_tripped]
        between = [r for r in period if r.is_interval_tripped]
        rolled_tripped = sum(ru.tripped for ru in host_rollups)
        rolled_between = sum(ru.interval_tripped for ru in host_rollups)
        if tripped or between or rolled_tripped or rolled_between:
            metric, peak = _peak(tripped)
            peak_between = False
            if not tripped:
                metric, peak = _peak_between(between, host_rollups)
                peak_between = True
            for ru in host_rollups:  # a rolled-up window peak beats a kept one
                if ru.tripped:
                    for m, value in ru.peaks.items():
                        if value > peak and m in NAMED_RATES:
                            metric, peak, peak_between = m, value, False
            critical = any(r.status == "critical" for r in tripped) or any(ru.critical for ru in host_rollups)
            critical = critical or any(t.get("level") == "critical" for r in between for t in r.since_tripped)
            counted: dict[str, int] = {}
            covered = 0.0
            for r in period:
                if r.since_counts is not None:
                    covered += r.since_s or 0.0
                    for k, v in r.since_counts.items():
                        counted[k] = counted.get(k, 0) + int(v)
            for ru in host_rollups:
                covered += ru.interval_s
                for k, v in ru.counts.items():
                    counted[k] = counted.get(k, 0) + int(v)
            causes = next((r.causes for r in reversed(tripped) if r.causes), ())
            offenders.append(
                Offender(
                    host=host,
                    tripped=len(tripped) + rolled_tripped,
                    audits=len(period) + sum(ru.audits for ru in host_rollups),
                    worst="critical" if critical else "warning",
                    peak_metric=metric,
                    peak=peak,
                    last=period[-1] if period else None,
                    causes=causes,
                    interval_tripped=len(between) + rolled_between,
                    counted=counted,
                    covered_s=covered,
                    peak_between=peak_between,
                )
            )
        if not host_rows:
            continue
        latest = host_rows[-1]
        if latest.sweep_id != latest_sweep:
            continue
        previous = host_rows[-2] if len(host_rows) > 1 else None
        if _is_problem(latest) and (previous is None or not _is_problem(previous)):
            new.append(Change(host, latest, previous))
        elif (
            latest.status == "ok"
            and not _is_problem(latest)
            and previous is not None
            and _is_problem(previous)
        ):
            recovered.append(Change(host, latest, previous))
    offenders.sort(key=lambda o: (-(o.tripped + o.interval_tripped), o.worst != "critical", -o.peak, o.host))
    new.sort(key=lambda c: c.host)
    recovered.sort(key=lambda c: c.host)
    return FleetChanges(offenders, new, recovered, len(in_period_sweeps), in_period_hosts, latest_sweep)


# --- rollups: a host's audits per hour or per day, once they age past --keep --------------------------

PERIOD_S: dict[RollupPeriod, float] = {"hour": 3600.0, "day": 86400.0}


def period_start(ts: float, period: RollupPeriod) -> float:
    """The start of the UTC hour or day ``ts`` falls in."""
    size = PERIOD_S[period]
    return ts - ts % size


def rollup_rows(rows: Iterable[HostRow], period: RollupPeriod) -> list[RollupRow]:
    """Each host's audits per ``period``: how many, how many tripped (in the window, between audits,
    between audits with a quiet window), the named counts summed over the usable intervals, and the
    highest window rate and interval average per named rate. An audit, and its interval whole, belongs
    to the period its sweep started in."""
    result: dict[tuple[str, float], RollupRow] = {}
    for row in sorted(rows, key=lambda r: (r.started_ts, r.sweep_id)):
        start = period_start(row.started_ts, period)
        one = RollupRow(
            host=row.host,
            period=period,
            start_ts=start,
            audits=1,
            measured=int(row.rates is not None),
            tripped=int(row.is_tripped),
            critical=int(row.status == "critical"),
            interval_tripped=int(row.is_interval_tripped),
            quiet_tripped=int(row.quiet_but_tripped_between),
            interval_s=(row.since_s or 0.0) if row.since_counts is not None else 0.0,
            counts={k: int(v) for k, v in (row.since_counts or {}).items() if v},
            peaks={m: float(v) for m, v in (row.rates or {}).items() if m in NAMED_RATES and v},
            interval_peaks={
                m: rate for m in (row.since_counts or {}) if m in NAMED_RATES and (rate := row.since_rate(m))
            },
            groups=row.groups,
        )
        key = (row.host, start)
        result[key] = result[key].merged(one) if key in result else one
    return list(result.values())


def rollup_rollups(rollups: Iterable[RollupRow], period: RollupPeriod) -> list[RollupRow]:
    """Finer rollups (hours) merged into coarser ones (days)."""
    result: dict[tuple[str, float], RollupRow] = {}
    for r in sorted(rollups, key=lambda r: (r.host, r.start_ts)):
        start = period_start(r.start_ts, period)
        coarse = RollupRow(
            host=r.host,
            period=period,
            start_ts=start,
            audits=r.audits,
            measured=r.measured,
            tripped=r.tripped,
            critical=r.critical,
            interval_tripped=r.interval_tripped,
            quiet_tripped=r.quiet_tripped,
            interval_s=r.interval_s,
            counts=dict(r.counts),
            peaks=dict(r.peaks),
            interval_peaks=dict(r.interval_peaks),
            groups=r.groups,
        )
        key = (r.host, start)
        result[key] = result[key].merged(coarse) if key in result else coarse
    return list(result.values())
