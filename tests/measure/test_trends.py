"""Reading audits back: trends per host, offenders, new offenders and recoveries."""

from __future__ import annotations

from fleetrst.measure.trends import fleet_changes, host_trends, median_baselines
from fleetrst.model import HostRow


def row(sweep: int, name: str, status: str = "ok", sent: float | None = 0.0) -> HostRow:
    tripped = (
        ({"metric": "resets_sent", "level": status, "value": sent},)
        if status in ("warning", "critical")
        else ()
    )
    return HostRow(
        sweep_id=sweep,
        started_at=f"2026-11-20T10:{sweep:02d}:00+00:00",
        started_ts=1_000.0 + 60 * sweep,
        host=name,
        groups=("web",) if name < "h003" else ("db",),
        status=status,
        error=None,
        rates=None if sent is None else {"resets_sent": sent} if sent else {},
        tripped=tripped,
    )


def test_trend_is_min_median_max_last_and_audits_tripped() -> None:
    rows = [
        row(1, "h001", sent=2.0),
        row(2, "h001", "warning", 80.0),
        row(3, "h001", sent=4.0),
        row(3, "h002", "unreachable", None),
    ]
    by_host = {t.host: t for t in host_trends(rows, "resets_sent")}
    t = by_host["h001"]
    assert (t.minimum, t.median, t.maximum, t.last, t.tripped, t.audits) == (2.0, 4.0, 80.0, 4.0, 1, 3)
    u = by_host["h002"]
    assert (u.measured, u.median, u.last, u.last_status) == (0, None, None, "unreachable")


def test_a_host_that_starts_resetting_in_the_third_audit_is_a_new_offender() -> None:
    rows = [row(s, h) for s in (1, 2) for h in ("h001", "h002", "h003")]
    rows += [row(3, "h001"), row(3, "h002", "warning", 120.0), row(3, "h003")]
    changes = fleet_changes(rows)
    assert [c.host for c in changes.new_offenders] == ["h002"]
    assert changes.new_offenders[0].previous is not None and changes.new_offenders[0].previous.status == "ok"
    assert changes.recovered == []
    assert [o.host for o in changes.offenders] == ["h002"] and changes.offenders[0].peak == 120.0


def test_recovered_hosts_and_steady_offenders_are_told_apart() -> None:
    rows = [
        row(1, "h001", "critical", 300.0),
        row(1, "h002", "warning", 60.0),
        row(2, "h001", "warning", 70.0),
        row(2, "h002"),
    ]
    changes = fleet_changes(rows)
    assert changes.new_offenders == [], "h001 was already offending: not new"
    assert [c.host for c in changes.recovered] == ["h002"]
    assert [o.host for o in changes.offenders] == ["h001", "h002"], "most audits tripped first"
    assert changes.offenders[0].worst == "critical"


def test_a_host_missing_from_the_latest_sweep_is_neither_new_nor_recovered() -> None:
    rows = [row(1, "h001", "warning", 60.0), row(1, "h002"), row(2, "h002")]  # sweep 2 was only h002
    changes = fleet_changes(rows)
    assert changes.recovered == [] and changes.new_offenders == []


def test_the_period_limits_offenders_but_not_the_previous_audit() -> None:
    rows = [row(1, "h001", "warning", 60.0), row(2, "h001")]
    changes = fleet_changes(rows, period_start=rows[1].started_ts)
    assert changes.offenders == [] and [c.host for c in changes.recovered] == ["h001"]


def test_median_baselines() -> None:
    assert median_baselines(
        {"a": [{"resets_sent": 1.0}, {"resets_sent": 9.0}, {"resets_sent": 2.0}], "b": []}
    ) == {"a": {"resets_sent": 2.0}}
