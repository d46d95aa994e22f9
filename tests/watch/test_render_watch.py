"""What the watch shows: the event line, the live table (drawn by rich into text here) and /metrics
(rendered by prometheus_client itself, then parsed back with its own parser)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, UnknownMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from rich.console import Console

from fleetrst.measure.alarms import AlarmState, WatchEvent
from fleetrst.model import Rates, Snapshot
from fleetrst.render.watch import (
    EVENT_SCHEMA,
    HostView,
    LiveFrame,
    ViewState,
    event_json,
    live_view,
    metric_families,
    sort_views,
)

NOW = 1_795_000_000.0


def view(
    host: str,
    state: str = "up",
    level: str = "ok",
    *,
    sent: float = 0.0,
    received: float = 0.0,
    alarms: Sequence[AlarmState] = (),
    error: str | None = None,
    since: float = NOW - 30,
    groups: tuple[str, ...] = ("fleet",),
) -> HostView:
    up = state == "up"
    return HostView(
        host,
        groups,
        "10.0.0.1",
        state,  # type: ignore[arg-type]
        level,  # type: ignore[arg-type]
        tuple(alarms),
        Rates(10.0, {"resets_sent": sent, "resets_received": received, "OutRsts": sent}) if up else None,
        Snapshot({"OutRsts": 1234, "AttemptFails": 99}, {"ListenOverflows": 7}, 5000.0, "b") if up else None,
        since,
        error,
        12 if up else 0,
        NOW - 1 if up else None,
    )


STORM = view(
    "h002",
    level="critical",
    sent=312.5,
    received=311.0,
    since=NOW - 5,
    alarms=[AlarmState("resets_sent", "critical", NOW - 5, 312.5, 250.0)],
    groups=("fleet", "web"),
)
VIEWS = [
    view("h001"),
    STORM,
    view("h003", "lost", error="connection refused by 10.231.0.4:22", since=NOW - 12),
    view("h004", "connecting", since=None),  # type: ignore[arg-type]
    view("web1", level="warning", sent=60.0),
]


def test_an_event_is_one_json_line_with_every_key_whatever_the_event() -> None:
    raised = WatchEvent(
        "raised", "h002", NOW, ("fleet",), "resets_sent", "critical", "ok", 312.456, 250.0, None, "threshold"
    )
    lost = WatchEvent("lost", "h003", NOW, (), error="connection refused", error_kind="refused")
    back = WatchEvent("back", "h003", NOW + 12, (), down_s=12.04)
    docs = [json.loads(event_json(e)) for e in (raised, lost, back)]
    assert all("\n" not in event_json(e) for e in (raised, lost, back))
    assert len({tuple(d) for d in docs}) == 1, "the same keys in every line"
    assert docs[0] == {
        "v": EVENT_SCHEMA,
        "event": "raised",
        "time": "2026-11-18T11:06:40.000Z",
        "host": "h002",
        "groups": ["fleet"],
        "metric": "resets_sent",
        "level": "critical",
        "previous": "ok",
        "value": 312.456,
        "limit": 250.0,
        "baseline": None,
        "rule": "threshold",
        "error": None,
        "error_kind": None,
        "down_s": None,
        "cause": None,
        "summary": None,
        "triggers": None,
        "investigation": None,
    }
    assert docs[1]["error_kind"] == "refused" and docs[1]["metric"] is None
    assert docs[2]["down_s"] == 12.04


def test_worst_first_then_by_name_and_the_other_orders() -> None:
    assert [v.host for v in sort_views(VIEWS)] == ["h002", "web1", "h003", "h004", "h001"]
    assert [v.host for v in sort_views(VIEWS, "host")] == ["h001", "h002", "h003", "h004", "web1"]
    assert [v.host for v in sort_views(VIEWS, "sent")][:2] == ["h002", "web1"]


def _draw(frame: LiveFrame, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None, force_terminal=False)
    console.print(live_view(frame))
    return console.export_text()


def test_the_live_table_shows_states_rates_since_and_causes_worst_first() -> None:
    text = _draw(LiveFrame(VIEWS, NOW, 10.0, NOW - 120, height=40))
    lines = text.splitlines()
    assert lines[0].startswith("fleetrst watch · 5 hosts: 1 critical, 1 warning, 1 lost, 1 connecting, 1 ok")
    assert "every 10s, watching for 120s" in lines[0]
    assert "fleet totals: 311.0 resets received/s, 372.5 resets sent/s" in text, "up hosts only"
    table = [line.split() for line in lines if line[:4] in ("h001", "h002", "h003", "h004", "web1")]
    assert [row[0] for row in table] == ["h002", "web1", "h003", "h004", "h001"]
    storm = next(line for line in lines if line.startswith("h002"))
    assert (
        "critical" in storm
        and "312.5" in storm
        and "resets_sent 312.5/s > 250" in storm
        and "(5s ago)" in storm
    )
    lost = next(line for line in lines if line.startswith("h003"))
    assert "lost" in lost and "connection refused by 10.231.0.4:22" in lost and lost.count(" - ") >= 1
    assert "sort: worst (s)" in text and "quit (q)" in text


def test_the_filter_problems_only_and_a_short_terminal_show_what_they_say() -> None:
    text = _draw(LiveFrame(VIEWS, NOW, 10.0, NOW, ViewState(filter="web"), height=40))
    assert [line.split()[0] for line in text.splitlines() if line[:4] in ("h002", "web1", "h001")] == [
        "h002",
        "web1",
    ], "web matches a group of h002 and the name web1"
    text = _draw(LiveFrame(VIEWS, NOW, 10.0, NOW, ViewState(problems_only=True), height=40))
    assert "h001" not in text
    text = _draw(LiveFrame(VIEWS, NOW, 10.0, NOW, height=10))
    assert "more hosts below" in text
    text = _draw(LiveFrame(VIEWS, NOW, 10.0, NOW, ViewState(editing=True, filter="h0"), height=40))
    assert "filter: h0▏ (Enter to keep, Esc to clear)" in text


def test_host_text_cannot_drive_the_terminal() -> None:
    evil = view("h\x1b[2Jx", "lost", error="boom\x1b]0;owned\x07")
    text = _draw(LiveFrame([evil], NOW, 10.0, NOW, height=20))
    assert "\x1b" not in text and "\\x1b[2Jx" in text


class _Families(Collector):
    def __init__(self, views: Sequence[HostView]) -> None:
        self.views = views

    def collect(self):  # type: ignore[no-untyped-def]
        kinds = {"untyped": UnknownMetricFamily, "gauge": GaugeMetricFamily, "counter": CounterMetricFamily}
        for family in metric_families(self.views, every_s=10.0, now=NOW, samples_total=42):
            metric = kinds[family.kind](family.name, family.help, labels=list(family.labels))
            for values, value in family.samples:
                metric.add_metric(list(values), value)
            yield metric


def _scrape(views: Sequence[HostView]) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(views))
    text = generate_latest(registry).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metrics_use_node_exporters_names_and_say_which_host_and_groups() -> None:
    scraped = _scrape(VIEWS)
    rsts = scraped["node_netstat_Tcp_OutRsts"]
    assert rsts[(("groups", "fleet,web"), ("host", "h002"))] == 1234.0
    assert scraped["node_netstat_TcpExt_ListenOverflows"][(("groups", "fleet"), ("host", "h001"))] == 7.0
    assert {dict(k)["host"] for k in rsts} == {"h001", "h002", "web1"}, "lost and connecting hosts: none"
    up = {dict(k)["host"]: v for k, v in scraped["fleetrst_host_up"].items()}
    assert up == {"h001": 1.0, "h002": 1.0, "h003": 0.0, "h004": 0.0, "web1": 1.0}
    assert (
        scraped["fleetrst_host_resets_sent_per_second"][(("groups", "fleet,web"), ("host", "h002"))] == 312.5
    )
    levels = scraped["fleetrst_alarm_level"]
    assert levels[(("groups", "fleet,web"), ("host", "h002"), ("metric", "resets_sent"))] == 2.0
    assert scraped["fleetrst_watch_samples_total"][()] == 42.0
    status = {dict(k)["host"]: (dict(k)["status"], v) for k, v in scraped["fleetrst_host_status"].items()}
    assert status["h003"] == ("lost", 3.0) and status["web1"] == ("warning", 1.0)


def test_metrics_say_their_counters_come_from_the_watchs_memory() -> None:
    families = {f.name: f for f in metric_families(VIEWS, every_s=10.0, now=NOW, samples_total=0)}
    assert families["node_netstat_Tcp_OutRsts"].kind == "untyped"
    assert "held by fleetrst watch" in families["node_netstat_Tcp_OutRsts"].help
    ages = dict(families["fleetrst_host_sample_age_seconds"].samples)
    assert ages[("h001", "fleet")] == 1.0
