"""Retention: history that stays small, in the same transaction as each write.

Each audit is kept in full for ``keep`` (30 days by default). Then its hosts' results are rolled up per
host and hour (``model.RollupRow``: audits, trips, counts since the previous audit, peaks) and the
audit is deleted; hourly rollups older than ``keep_hourly`` are merged into daily ones, and daily
ones older than ``keep_daily`` are deleted. At any moment an audit is in exactly one place (in full, in
an hour, or in a day), so totals over any period add up without counting anything twice. Ages are
counted back from the audit being written (its own start), not from a clock.

All of it runs inside the write's transaction: a crash or ``kill -9`` at any moment leaves either the
old audits or their rollups, never neither.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..measure.trends import rollup_rollups, rollup_rows
from ..model import HostRow, RollupPeriod, RollupRow

DAY_S = 86400.0
DEFAULT_KEEP_S = 30 * DAY_S
DEFAULT_KEEP_HOURLY_S = 90 * DAY_S
DEFAULT_KEEP_DAILY_S = 730 * DAY_S


@dataclass(frozen=True)
class Retention:
    """How long audits are kept in full, as hourly rollups, as daily rollups (0: not at all)."""

    keep_s: float = DEFAULT_KEEP_S
    keep_hourly_s: float = DEFAULT_KEEP_HOURLY_S
    keep_daily_s: float = DEFAULT_KEEP_DAILY_S

    def first_rollup(self) -> RollupPeriod | None:
        """Where an audit goes when it leaves ``keep``: hours, days, or nowhere."""
        if self.keep_hourly_s > self.keep_s:
            return "hour"
        if self.keep_daily_s > self.keep_s:
            return "day"
        return None


@dataclass
class Pruned:
    """What one write removed and rolled up."""

    sweeps: int = 0
    host_results: int = 0
    hourly_merged: int = 0  # hourly rollups merged into days
    rollups_deleted: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.sweeps or self.hourly_merged or self.rollups_deleted)


def rollup_values(r: RollupRow) -> tuple[object, ...]:
    return (
        r.host,
        r.period,
        r.start_ts,
        json.dumps(list(r.groups)),
        r.audits,
        r.measured,
        r.tripped,
        r.critical,
        r.interval_tripped,
        r.quiet_tripped,
        r.interval_s,
        json.dumps(dict(r.counts), sort_keys=True),
        json.dumps({k: round(v, 3) for k, v in sorted(r.peaks.items())}),
        json.dumps({k: round(v, 3) for k, v in sorted(r.interval_peaks.items())}),
    )


ROLLUP_COLUMNS = (
    "host, period, start_ts, groups, audits, measured, tripped, critical, interval_tripped, quiet_tripped,"
    " interval_s, counts, peaks, interval_peaks"
)


def rollup_from_values(values: tuple[object, ...]) -> RollupRow:
    (host, period, start_ts, groups, audits, measured, tripped, critical, interval_tripped, quiet_tripped) = (
        values[:10]
    )
    interval_s, counts, peaks, interval_peaks = values[10:]
    return RollupRow(
        host=str(host),
        period="hour" if period == "hour" else "day",
        start_ts=float(start_ts),  # type: ignore[arg-type]
        audits=int(audits),  # type: ignore[call-overload]
        measured=int(measured),  # type: ignore[call-overload]
        tripped=int(tripped),  # type: ignore[call-overload]
        critical=int(critical),  # type: ignore[call-overload]
        interval_tripped=int(interval_tripped),  # type: ignore[call-overload]
        quiet_tripped=int(quiet_tripped),  # type: ignore[call-overload]
        interval_s=float(interval_s),  # type: ignore[arg-type]
        counts=json.loads(str(counts)),
        peaks=json.loads(str(peaks)),
        interval_peaks=json.loads(str(interval_peaks)),
        groups=tuple(json.loads(str(groups))),
    )


def _merge_into(db: sqlite3.Connection, rollups: Iterable[RollupRow]) -> None:
    """Add ``rollups`` to the table, merged with what it already holds for the same host and period."""
    for r in rollups:
        found = db.execute(
            f"SELECT {ROLLUP_COLUMNS} FROM rollups WHERE host = ? AND period = ? AND start_ts = ?",
            (r.host, r.period, r.start_ts),
        ).fetchone()
        merged = rollup_from_values(found).merged(r) if found else r
        db.execute(
            f"INSERT OR REPLACE INTO rollups ({ROLLUP_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            rollup_values(merged),
        )


def prune(
    db: sqlite3.Connection,
    now_ts: float,
    retention: Retention,
    read_rows: Callable[[Sequence[int]], list[HostRow]],
) -> Pruned:
    """Roll up and delete what aged out at ``now_ts``. Call it inside the write's transaction.

    ``read_rows(sweep_ids)`` returns the host rows of those sweeps (the store's own reader).
    """
    pruned = Pruned()
    cut = now_ts - retention.keep_s
    old = [row[0] for row in db.execute("SELECT id FROM sweeps WHERE started_ts < ?", (cut,))]
    if old:
        target = retention.first_rollup()
        rows = read_rows(old)
        if target is not None:
            _merge_into(db, rollup_rows(rows, target))
        pruned.host_results = len(rows)
        for start in range(0, len(old), 500):
            chunk = old[start : start + 500]
            db.execute(f"DELETE FROM sweeps WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        pruned.sweeps = len(old)

    hour_cut = now_ts - retention.keep_hourly_s
    hours = [
        rollup_from_values(v)
        for v in db.execute(
            f"SELECT {ROLLUP_COLUMNS} FROM rollups WHERE period = 'hour' AND start_ts < ?", (hour_cut,)
        )
    ]
    if hours:
        if retention.keep_daily_s > retention.keep_hourly_s:
            _merge_into(db, rollup_rollups(hours, "day"))
            pruned.hourly_merged = len(hours)
        else:
            pruned.rollups_deleted += len(hours)
        db.execute("DELETE FROM rollups WHERE period = 'hour' AND start_ts < ?", (hour_cut,))

    cursor = db.execute(
        "DELETE FROM rollups WHERE period = 'day' AND start_ts < ?", (now_ts - retention.keep_daily_s,)
    )
    pruned.rollups_deleted += max(0, cursor.rowcount)
    return pruned
