"""Every output carries since_last: the table (a SINCE LAST column, the trips between audits, a note
for a host that is quiet now), CSV, JSON and JSON lines, Prometheus (the kernel's counters as
``_total`` counters), Nagios and the investigation's text."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from fleetrst.measure.interval import DEFAULT_INTERVAL_THRESHOLDS, counts_since, judge_interval
from fleetrst.model import HostResult, RecordedSnapshot, SinceLast, SinceLastMissing, Snapshot
from fleetrst.render.fleet import render_csv, render_table
from fleetrst.render.investigation import render_host
from fleetrst.render.monitoring import render_nagios, render_prometheus
from fleetrst.render.schema import JSON_VERSION, JSONL_VERSION, render_json, render_jsonl
from tests.helpers import host, report

BOOT = "0e3f2b4c-5d6a-4b7c-8d9e-0f1a2b3c4d5e"


def snap(fails: int, rsts: int, uptime: float) -> Snapshot:
    return Snapshot(
        {"AttemptFails": fails, "OutRsts": rsts, "CurrEstab": 4}, {"ListenOverflows": 2}, uptime, BOOT
    )


def between(h: HostResult, fails: int, rsts: int) -> HostResult:
    """``h`` with ``fails``/``rsts`` counted over 300 s since its previous audit, judged."""
    before = RecordedSnapshot(3, "2026-11-20T09:55:00+00:00", snap(1000, 2000, 5000.0))
    after = snap(1000 + fails, 2000 + rsts, 5300.0)
    since = counts_since(before, after)
    assert isinstance(since, SinceLast)
    return replace(h, snapshot=after, since_last=judge_interval(since, DEFAULT_INTERVAL_THRESHOLDS, h.status))


def fleet() -> list[HostResult]:
    return [
        between(host("h001"), 3, 3),  # quiet now and between
        between(host("h002"), 12_300, 12_310),  # quiet now, a storm between audits (41/s)
        between(host("h003", "warning", sent=120.0), 90_000, 90_000),  # storming now, and 300/s between
        replace(host("h004"), since_last=SinceLastMissing("rebooted", "rebooted since the audit of ...")),
        replace(host("h005", "unreachable"), since_last=SinceLastMissing("not_measured", "not measured")),
    ]


def test_the_table_counts_each_host_since_its_last_audit_and_flags_the_tripped_between_only() -> None:
    text = render_table(report(fleet()))
    lines = text.splitlines()
    assert "SINCE LAST" in lines[0]
    order = [line.split()[0] for line in lines[2:7]]
    assert order == ["h003", "h002", "h005", "h001", "h004"], (
        "a trip between audits ranks as one in the window"
    )
    row = next(line for line in lines if line.startswith("h002 "))
    assert row.split()[1] == "OK" and "5 min: 12300 recv, 12310 sent" in row
    assert "between audits: resets_received 41.0/s on average over 5 min > 10" in row
    assert "- (rebooted)" in next(line for line in lines if line.startswith("h004 "))
    assert "2 tripped since the last audit" in text
    note = next(line for line in lines if line.startswith("h002: "))
    assert "quiet now" in note and "could not be seen live" in note and "fleetrst watch" in note
    quiet = render_table(report(fleet()), only_problems=True)
    assert "h002 " in quiet and "h001 " not in quiet, "-q keeps a host that tripped between audits"


def test_csv_has_the_counts_since_the_last_audit() -> None:
    rows = {r["host"]: r for r in csv.DictReader(io.StringIO(render_csv(report(fleet()))))}
    assert rows["h002"]["since_last_resets_sent"] == "12310" and rows["h002"]["since_last_s"] == "300.000"
    assert rows["h002"]["since_last_from"] == "2026-11-20T09:55:00+00:00"
    assert rows["h002"]["since_last_tripped"].startswith("resets_received 41.0/s on average")
    assert rows["h004"]["since_last_missing"] == "rebooted" and rows["h004"]["since_last_resets_sent"] == ""


def test_json_carries_since_last_or_why_not() -> None:
    doc = json.loads(render_json(report(fleet())))
    assert doc["version"] == JSON_VERSION == 2
    assert doc["summary"]["tripped_since_last"] == 2
    hosts = {h["host"]: h for h in doc["hosts"]}
    s = hosts["h002"]["since_last"]
    assert hosts["h002"]["since_last_missing"] is None
    assert s["from"] == "2026-11-20T09:55:00+00:00" and s["from_sweep"] == 3 and s["interval_s"] == 300.0
    assert s["counts"]["OutRsts"] == s["counts"]["resets_sent"] == 12_310
    assert s["rates"]["resets_sent"] == round(12_310 / 300, 3)
    assert [t["metric"] for t in s["tripped"]] == ["resets_received", "resets_sent"]
    assert "could not be seen live" in s["note"]
    assert hosts["h004"]["since_last"] is None
    assert hosts["h004"]["since_last_missing"] == {
        "reason": "rebooted",
        "detail": "rebooted since the audit of ...",
    }
    plain = json.loads(render_json(report([host("h9")])))["hosts"][0]
    assert plain["since_last"] is None and plain["since_last_missing"]["reason"] == "no_history"
    assert doc["exit_code"] == 2, "h003 warns in its window, its average since the last audit is critical"


def test_json_lines_carry_it_too() -> None:
    lines = [json.loads(line) for line in render_jsonl(report(fleet())).splitlines()]
    assert all(d["version"] == JSONL_VERSION == 2 for d in lines)
    assert next(d for d in lines if d["host"] == "h002")["since_last"]["counts"]["resets_received"] == 12_300


def test_prometheus_has_the_kernel_counters_as_counters_and_the_interval() -> None:
    text = render_prometheus(report(fleet()))
    families = {f.name: f for f in text_string_to_metric_families(text)}
    sent = families["fleetrst_host_resets_sent"]
    assert sent.type == "counter"
    values = {s.labels["host"]: s.value for s in sent.samples if s.name == "fleetrst_host_resets_sent_total"}
    assert values["h002"] == 2000 + 12_310, "the counter as the kernel counted it, for increase()"
    assert "h004" not in values and "h005" not in values, "no sample without a last sample"
    seconds = {s.labels["host"]: s.value for s in families["fleetrst_host_since_last_seconds"].samples}
    assert seconds == {"h001": 300.0, "h002": 300.0, "h003": 300.0}
    status = {s.labels["host"]: s.value for s in families["fleetrst_host_since_last_status"].samples}
    assert status == {"h001": 0.0, "h002": 1.0, "h003": 2.0}, "h003: 300/s on average is critical (> 250)"
    assert "# TYPE fleetrst_host_resets_sent_total counter" in text


def test_nagios_names_the_host_tripped_between_only_and_its_averages_in_perfdata() -> None:
    line = render_nagios(report(fleet()))
    assert line.startswith("FLEETRST CRITICAL - "), "h003's average since its last audit is critical"
    assert "2 tripped since the last audit: h003, h002 (OK in its window)" in line
    assert "'h002 resets_sent since last'=41.033;10;;0" in line


def test_the_investigation_text_says_the_interval_and_why_nothing_was_seen_live() -> None:
    text = render_host(fleet()[1])
    assert (
        "since the last audit (5 min, from 2026-11-20T09:55:00+00:00): resets_received 12300 (41.0/s)" in text
    )
    assert "tripped since the last audit: resets_received 41.0/s on average over 5 min > 10" in text
    assert "note: quiet now;" in text and "fleetrst watch" in text
