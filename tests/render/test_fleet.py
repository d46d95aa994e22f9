"""The fleet report's renderers and exit codes, on results measured from real /proc captures."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.counters import measure_rates
from fleetrst.measure.probe import parse_probe_output
from fleetrst.measure.rules import DEFAULT_THRESHOLDS, judge
from fleetrst.model import FleetReport, HostResult, Rates, Status
from fleetrst.render.fleet import render_csv, render_table
from fleetrst.render.schema import JSON_VERSION, render_json
from fleetrst.render.text import clean, worst_first

FIXTURES = Path(__file__).parents[1] / "fixtures" / "proc"


def _real_rates(name: str) -> Rates:
    """Rates from a real probe output captured inside a namespace (see fixtures/proc/CAPTURED.md)."""
    snapshots = parse_probe_output((FIXTURES / name).read_text())
    return measure_rates(snapshots[0], snapshots[-1])


def _result(host: str, status: Status, rates: Rates | None = None, error: str | None = None) -> HostResult:
    tripped = judge(rates, DEFAULT_THRESHOLDS).tripped if rates else ()
    return HostResult(
        host=host,
        address=f"{host}.example",
        groups=("fleet",),
        status=status,
        error=error,
        error_kind="refused" if error else None,
        rates=rates,
        tripped=tripped,
    )


def _report(*hosts: HostResult) -> FleetReport:
    return FleetReport(hosts=hosts, started_at="2026-11-21T06:00:00+00:00", duration_s=2.5, window_s=2.0)


@pytest.fixture(scope="module")
def storm_rates() -> Rates:
    return _real_rates("probe/closed-port.out")


@pytest.fixture(scope="module")
def idle_rates() -> Rates:
    return _real_rates("probe/idle.out")


def test_exit_codes_follow_nagios(storm_rates: Rates, idle_rates: Rates) -> None:
    ok = _result("a", "ok", idle_rates)
    warn = _result("b", "warning", storm_rates)
    down = _result("c", "unreachable", error="connection refused by c:22")
    crit = _result("d", "critical", storm_rates)
    assert _report(ok).exit_code == 0
    assert _report(ok, warn).exit_code == 1
    assert _report(ok, down).exit_code == 3
    assert _report(ok, warn, down).exit_code == 1, "a warning wins over unknown"
    assert _report(ok, warn, down, crit).exit_code == 2
    assert _report().exit_code == 0


def test_table_lists_worst_first_with_the_real_rates(storm_rates: Rates, idle_rates: Rates) -> None:
    report = _report(
        _result("quiet", "ok", idle_rates),
        _result("down", "unreachable", error="refused"),
        _result("storm", "warning", storm_rates),
    )
    text = render_table(report)
    lines = text.splitlines()
    order = [line.split()[0] for line in lines[2:5]]
    assert order == ["storm", "down", "quiet"]
    storm_line = lines[2]
    assert f"{storm_rates.per_second['resets_received']:.1f}" in storm_line
    assert f"{storm_rates.per_second['resets_sent']:.1f}" in storm_line
    assert lines[-1].startswith("3 hosts: 1 warning, 1 unreachable, 1 ok")


def test_table_accepts_any_tabulate_format(idle_rates: Rates) -> None:
    report = _report(_result("quiet", "ok", idle_rates))
    assert "| quiet" in render_table(report, "github")
    assert "+-" in render_table(report, "grid")


def test_json_has_the_documented_schema(storm_rates: Rates) -> None:
    report = _report(_result("storm", "warning", storm_rates), _result("down", "unreachable", error="x"))
    doc = json.loads(render_json(report))
    assert doc["schema"] == "fleetrst.sweep" and doc["version"] == JSON_VERSION
    assert doc["exit_code"] == 1
    assert doc["summary"]["hosts"] == 2 and doc["summary"]["warning"] == 1
    host = doc["hosts"][0]
    for key in (
        "host",
        "address",
        "groups",
        "status",
        "error",
        "interval_s",
        "rates",
        "tripped",
        "investigation",
    ):
        assert key in host
    for named in (
        "resets_received",
        "resets_sent",
        "estab_resets",
        "listen_overflows",
        "listen_drops",
        "AttemptFails",
        "OutRsts",
        "InSegs",
    ):
        assert named in host["rates"]
    assert host["tripped"][0]["metric"] in ("resets_received", "resets_sent")
    down = doc["hosts"][1]
    assert down["rates"] is None and down["error"] == "x" and down["interval_s"] is None


def test_csv_has_a_row_per_host(storm_rates: Rates, idle_rates: Rates) -> None:
    report = _report(_result("a", "ok", idle_rates), _result("b", "warning", storm_rates))
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [r["host"] for r in rows] == ["b", "a"]
    assert float(rows[0]["resets_sent"]) == pytest.approx(storm_rates.per_second["resets_sent"], abs=0.001)


def test_escape_sequences_from_a_host_never_reach_the_terminal() -> None:
    evil = "oops\x1b]0;pwned\x07\x1b[2J\r\nnext\u202eline"
    report = _report(_result("evil", "error", error=evil))
    for text in (render_table(report), render_csv(report)):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "\r" not in text
    assert "\\x1b" in render_table(report)


@given(st.text())
def test_clean_leaves_no_control_characters(text: str) -> None:
    out = clean(text)
    assert not any((ord(c) < 0x20) or (0x7F <= ord(c) <= 0x9F) for c in out)


def test_worst_first_orders_by_status_then_rate(storm_rates: Rates, idle_rates: Rates) -> None:
    hosts = [_result("b", "ok", idle_rates), _result("a", "ok", storm_rates), _result("c", "critical")]
    assert [h.host for h in worst_first(hosts)] == ["c", "a", "b"]
