"""Netdata's reset alarms over a stream of samples (``fleetrst watch``'s judge): raised, held, cleared.

The samples are a real captured host (``tests/fixtures/proc/idle``) whose counters are advanced by
chosen rates, on the host's own uptime clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.alarms import HostAlarms
from fleetrst.measure.counters import parse_boot_id, parse_netstat, parse_snmp, parse_uptime
from fleetrst.measure.rules import DEFAULT_THRESHOLDS
from fleetrst.model import Snapshot, Threshold

PROC = Path(__file__).parents[1] / "fixtures" / "proc" / "idle" / "before"
EVERY = 10.0


def _real() -> Snapshot:
    return Snapshot(
        tcp=parse_snmp((PROC / "snmp").read_text()),
        tcpext=parse_netstat((PROC / "netstat").read_text()),
        uptime_s=parse_uptime((PROC / "uptime").read_text()),
        boot_id=parse_boot_id((PROC / "boot_id").read_text()),
    )


BASE = _real()


class Host:
    """A host whose counters advance by the rates set on it, one sample every EVERY seconds."""

    def __init__(self, uptime: float = 1000.0) -> None:
        self.snap = replace(BASE, uptime_s=uptime)
        self.rates: dict[str, float] = {}

    def tick(self, seconds: float = EVERY) -> Snapshot:
        tcp, tcpext = dict(self.snap.tcp), dict(self.snap.tcpext)
        for counter, rate in self.rates.items():
            table = tcp if counter in tcp else tcpext
            table[counter] += round(rate * seconds)
        self.snap = Snapshot(tcp, tcpext, self.snap.uptime_s + seconds, self.snap.boot_id)
        return self.snap


def run(alarms: HostAlarms, host: Host, rounds: int, start: float = 0.0) -> Iterator[tuple[float, list[str]]]:
    for i in range(rounds):
        at = start + i * EVERY
        events = alarms.add(host.tick(), at)
        yield at, [f"{e.event} {e.metric} {e.level}" for e in events]


def watch(thresholds: Mapping[str, Threshold] = DEFAULT_THRESHOLDS) -> HostAlarms:
    return HostAlarms("h1", thresholds, EVERY)


def test_a_storm_after_a_quiet_minute_is_raised_held_while_above_its_baseline_then_cleared() -> None:
    alarms, host = watch(), Host()
    assert all(not ev for _, ev in run(alarms, host, 8)), "a quiet host raises nothing"
    host.rates = {"OutRsts": 60.0}
    [(_, events)] = list(run(alarms, host, 1, start=80))
    assert events == ["raised resets_sent warning"], "60/s > 10 × max(5, 0) = 50 after a quiet minute"
    state = alarms.states["resets_sent"]
    assert (state.rule, state.limit, state.baseline, state.since) == ("spike", 50.0, 0.0, 80.0)
    # Growing: the baseline rises behind it, and a raised alarm holds while above 1 × max(5, baseline).
    for i in range(6):
        host.rates = {"OutRsts": 80.0 + 20 * i}
        assert next(run(alarms, host, 1, start=90 + 10 * i))[1] == []
        assert alarms.states["resets_sent"].level == "warning"
        assert alarms.states["resets_sent"].limit < alarms.states["resets_sent"].value
    host.rates = {}
    [(_, events)] = list(run(alarms, host, 1, start=150))
    assert events == ["cleared resets_sent ok"]
    assert alarms.level == "ok"


def test_a_steady_storm_clears_once_the_baseline_has_caught_up_as_netdatas_spike_alarm_does() -> None:
    alarms, host = watch(), Host()
    list(run(alarms, host, 8))
    host.rates = {"OutRsts": 60.0}
    events = [(at, ev) for at, ev in run(alarms, host, 10, start=80) if ev]
    assert events[0] == (80.0, ["raised resets_sent warning"])
    # The storm's first interval ends at 80; at 140 the minute ending 10 s earlier (70 to 130) is all
    # storm: 60/s is then not above 1 × 60/s.
    assert events[1] == (140.0, ["cleared resets_sent ok"]), events


def test_a_rate_that_a_fresh_sweep_would_flag_is_not_raised_when_it_is_the_hosts_normal() -> None:
    """A host that always sends 40 RSTs/s (a load balancer's health checks) has a baseline of 40: the
    spike limit is 400/s, so 60/s is normal for it."""
    alarms, host = watch(), Host()
    host.rates = {"OutRsts": 40.0}
    list(run(alarms, host, 8))
    host.rates = {"OutRsts": 60.0}
    assert all(not ev for _, ev in run(alarms, host, 3, start=80))
    host.rates = {"OutRsts": 450.0}
    events = next(ev for _, ev in run(alarms, host, 1, start=110))
    assert events == ["raised resets_sent critical"], "the fixed critical (250/s) applies as in sweep"


def test_no_spike_alarm_before_a_baseline_but_the_critical_threshold_applies_at_once() -> None:
    alarms, host = watch(), Host()
    host.rates = {"AttemptFails": 100.0}
    first = [ev for _, ev in run(alarms, host, 3)]
    assert first == [[], [], []], "no baseline yet: 100/s is not judged by the spike rule"
    host.rates = {"AttemptFails": 300.0}
    assert [ev for _, ev in run(alarms, host, 1, start=30)] == [["raised resets_received critical"]]


def test_a_host_up_less_than_a_minute_is_not_judged_by_the_spike_rule() -> None:
    alarms, host = watch(), Host(uptime=0.0)
    host.rates = {"OutRsts": 0.0}
    list(run(alarms, host, 3))  # uptime 10..30 s
    host.rates = {"OutRsts": 100.0}
    assert all(not ev for _, ev in run(alarms, host, 3, start=30)), "uptime ≤ 60 s: Netdata's guard"


def test_listen_overflows_are_judged_on_the_minute_with_netdatas_critical_hysteresis() -> None:
    alarms, host = watch(), Host()
    host.rates = {"ListenOverflows": 8.0, "ListenDrops": 8.0}
    events = [e for _, ev in run(alarms, host, 2) for e in ev]
    assert "raised listen_overflows critical" in events
    host.rates = {"ListenOverflows": 0.0, "ListenDrops": 0.0}
    # The minute's average falls from 8/s: it stays critical while above 1 (the warning level) ...
    levels = []
    for _ in run(alarms, host, 7, start=20):
        levels.append(alarms.states["listen_overflows"].level)
    assert levels[0] == "critical" and "warning" not in levels, levels
    assert levels[-1] == "ok", "cleared once the minute's average is under 1/s"


def test_a_reboot_starts_the_series_again_without_a_negative_rate() -> None:
    alarms, host = watch(), Host()
    list(run(alarms, host, 8))
    host.snap = replace(host.snap, boot_id="00000000-0000-0000-0000-000000000000", uptime_s=5.0)
    for counter in ("OutRsts", "AttemptFails"):
        host.snap.tcp[counter] = 0  # type: ignore[index]
    assert alarms.add(host.snap, 100.0) == []
    assert alarms.rates is None, "one sample after the reboot: no rate yet"
    assert alarms.add(host.tick(), 110.0) == []
    assert alarms.rates is not None and alarms.rates.per_second["resets_sent"] >= 0


def test_an_inventory_threshold_switched_off_raises_nothing() -> None:
    thresholds = {**DEFAULT_THRESHOLDS, "resets_sent": Threshold(None, None)}
    alarms, host = watch(thresholds), Host()
    list(run(alarms, host, 8))
    host.rates = {"OutRsts": 1000.0}
    assert all(not ev for _, ev in run(alarms, host, 3, start=80))


@given(st.lists(st.floats(min_value=0, max_value=2000), min_size=1, max_size=40))
def test_events_alternate_and_match_the_states(rates: list[float]) -> None:
    """Whatever the rates: a metric is cleared only after it was raised, an event's level is the state
    it leaves, and the host's level is the worst state."""
    alarms, host = watch(), Host()
    last: dict[str, str] = {}
    for i, rate in enumerate(rates):
        host.rates = {"OutRsts": rate, "ListenOverflows": rate / 100}
        for e in alarms.add(host.tick(), i * EVERY):
            assert e.level == alarms.states[e.metric].level
            assert e.previous == last.get(e.metric, "ok") != e.level
            assert (e.event == "cleared") == (e.level == "ok")
            last[e.metric] = e.level
    worst = max(
        (s.level for s in alarms.states.values()), key=["ok", "warning", "critical"].index, default="ok"
    )
    assert alarms.level == worst
